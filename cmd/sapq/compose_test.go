package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeFile is the part of the compose specification docker-compose.yml
// uses; decoding with KnownFields refuses any other key, a misspelt one
// included.
type composeFile struct {
	Name     string                    `yaml:"name"`
	XSapq    any                       `yaml:"x-sapq"`
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

type composeService struct {
	Image      string `yaml:"image"`
	PullPolicy string `yaml:"pull_policy"`
	Build      *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Deploy *struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Profiles        []string `yaml:"profiles"`
	ReadOnly        bool     `yaml:"read_only"`
	Restart         string   `yaml:"restart"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(repoFile(t, "docker-compose.yml")))
	dec.KnownFields(true)
	var f composeFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f
}

// docker-compose.yml: Redis with AOF and noeviction, the simulator, two
// workers, the MCP front and the console from one image built once, with
// healthchecks, and secrets from files; every sapq service booted here as
// the compose file starts it.
func TestComposeFile(t *testing.T) {
	f := loadCompose(t)
	known := knownEnv(t)
	var builders []string
	sapqImage := ""
	for name, s := range f.Services {
		if s.Build != nil {
			builders = append(builders, name)
			sapqImage = s.Image
			if s.Build.Context != "." || s.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("%s builds %+v, want context . and deploy/Dockerfile", name, *s.Build)
			}
		}
	}
	if len(builders) != 1 || sapqImage == "" {
		t.Fatalf("services that build an image: %v; want exactly one, naming its image", builders)
	}
	want := map[string]bool{"redis": true, "sapsim": true, "worker": true, "mcp": true, "ui": true}
	for name := range want {
		if _, ok := f.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
	if w := f.Services["worker"]; w.Deploy == nil || w.Deploy.Replicas != 2 {
		t.Errorf("worker deploy %+v: want 2 replicas", w.Deploy)
	}
	for name, sec := range f.Secrets {
		if sec.File == "" {
			t.Errorf("secret %s is not from a file", name)
		} else if _, err := os.Stat(filepath.Join(repoRoot, sec.File)); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
	}

	for _, name := range keys(f.Services) {
		s := f.Services[name]
		for dep, d := range s.DependsOn {
			if other, ok := f.Services[dep]; !ok || d.Condition == "service_healthy" && other.Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		if s.Healthcheck == nil && len(s.Profiles) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s beyond loopback", name, p)
			}
		}
		if name == "redis" {
			if !strings.HasPrefix(s.Image, "redis:7") {
				t.Errorf("redis image %s: want redis:7.x", s.Image)
			}
			t.Run(name, func(t *testing.T) { checkRedisArgs(t, "compose redis", s.Command) })
			continue
		}
		if s.Image != sapqImage {
			t.Errorf("%s runs image %q, want the one image built once, %q", name, s.Image, sapqImage)
			continue
		}
		if s.PullPolicy != "never" {
			t.Errorf("%s: pull_policy %q, want never: the image is built here, and a registry's %q is someone else's", name, s.PullPolicy, s.Image)
		}
		t.Run(name, func(t *testing.T) { boot(t, composeContainer(t, f, name, s), known) })
	}
}

// composeContainer is how compose runs a sapq service.
func composeContainer(t *testing.T, f composeFile, name string, s composeService) container {
	t.Helper()
	c := container{name: name, image: s.Image, env: s.Environment, files: map[string]string{}, ports: map[string]int{}}
	argv := s.Command
	if len(s.Entrypoint) > 0 {
		if s.Entrypoint[0] != imageBinary {
			t.Fatalf("%s: entrypoint %v does not run %s", name, s.Entrypoint, imageBinary)
		}
		argv = append(append([]string{}, s.Entrypoint[1:]...), s.Command...)
	}
	c.argv = argv
	for _, sec := range s.Secrets {
		def, ok := f.Secrets[sec]
		if !ok {
			t.Fatalf("%s mounts secret %s, which is not defined", name, sec)
		}
		c.files["/run/secrets/"+sec] = string(repoFile(t, def.File))
	}
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		port, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil {
			t.Fatalf("%s: port %q", name, p)
		}
		c.ports[parts[len(parts)-1]] = port
	}
	if hc := s.Healthcheck; hc != nil {
		// ["CMD", "/usr/local/bin/sapq", "probe", URL]: the image has no
		// shell, so CMD-SHELL and curl are out.
		if len(hc.Test) != 4 || hc.Test[0] != "CMD" || hc.Test[1] != imageBinary || hc.Test[2] != "probe" {
			t.Fatalf("%s: healthcheck %v, want [CMD %s probe URL]", name, hc.Test, imageBinary)
		}
		u, err := url.Parse(hc.Test[3])
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
			t.Fatalf("%s: healthcheck URL %q: want http://127.0.0.1:port/path", name, hc.Test[3])
		}
		port, _ := strconv.Atoi(u.Port())
		c.probes = append(c.probes, httpProbe{what: "healthcheck", port: port, path: u.Path})
	}
	return c
}
