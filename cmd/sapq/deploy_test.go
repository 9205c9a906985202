package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sapq/sapq/sap/sim"
	"github.com/sapq/sapq/tasks/ledger"
)

// No container engine runs where the tests do, so these tests read the
// deployment files (docker-compose.yml, deploy/) and boot every container's
// process in the test instead: the command line and environment a container
// would get, with its Redis, SAP and secret files swapped for the test's
// and its listen addresses moved to free loopback ports. A subcommand or
// flag that does not exist, a SAPQ_* value that does not parse, a probe
// path the process does not serve, a port it does not listen on or a
// secret file it cannot find fails them, as it would fail the deployment.

const repoRoot = "../.."

func repoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// knownEnv is every SAPQ_* variable the binary reads, found in its source:
// every read goes through env, secret (NAME and NAME_FILE) or the
// envDefaults methods, with the name as a literal.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			if !regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`).MatchString(name) {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				switch fn.Name {
				case "env":
					names["SAPQ_"+name] = true
				case "secret":
					names["SAPQ_"+name] = true
					names["SAPQ_"+name+"_FILE"] = true
				}
			case *ast.SelectorExpr:
				if fn.Sel.Name == "int" || fn.Sel.Name == "duration" || fn.Sel.Name == "bool" {
					names["SAPQ_"+name] = true
				}
			}
			return true
		})
	}
	for _, must := range []string{"SAPQ_REDIS_URL", "SAPQ_SAP_PASSWORD_FILE", "SAPQ_MCP_TOKENS_FILE", "SAPQ_CONCURRENCY"} {
		if !names[must] {
			t.Fatalf("the source scan missed %s (found %v): knownEnv no longer sees how variables are read", must, names)
		}
	}
	return names
}

// secretLike names a variable that must never hold a secret inline.
func secretLike(name string) bool {
	return !strings.HasSuffix(name, "_FILE") && (strings.Contains(name, "PASSWORD") || strings.Contains(name, "TOKEN"))
}

// container is a process as a deployment file describes it.
type container struct {
	name  string
	image string
	argv  []string // after the entrypoint: the subcommand and its flags
	env   map[string]string
	files map[string]string // mounted secret files: path -> content
	// ports are where others reach it: container ports (Kubernetes) or
	// published ports (compose), which it must listen on on every interface.
	ports map[string]int // name (or the number) -> port
	// probes are GETs of path on port, answered 2xx when healthy.
	probes []httpProbe
	// outsideOnly: every port is probed from outside the container (a
	// kubelet), so loopback binds are wrong for probe ports too.
	outsideOnly bool
}

type httpProbe struct {
	what string
	port int
	path string
}

// bootedContainer is a container's process running in the test.
type bootedContainer struct {
	addrs map[int]string // container port -> local address
}

// boot runs a sapq container's process with its Redis, SAP and secrets
// swapped for the test's, and returns where its ports are.
func boot(t *testing.T, c container, known map[string]bool) bootedContainer {
	t.Helper()
	if len(c.argv) == 0 {
		t.Fatalf("%s: no subcommand", c.name)
	}
	var run runner
	for _, cmd := range commands {
		if cmd.name == c.argv[0] {
			run = cmd.run
		}
	}
	if run == nil {
		t.Fatalf("%s: sapq has no subcommand %q", c.name, c.argv[0])
	}
	for name, v := range c.env {
		if strings.HasPrefix(name, "SAPQ_") && !known[name] {
			t.Errorf("%s: sets %s, which sapq does not read", c.name, name)
		}
		if secretLike(name) {
			t.Errorf("%s: %s holds a secret inline; mount a file and set %s_FILE", c.name, name, name)
		}
		if name == "SAPQ_REDIS_URL" {
			if _, err := parseRedisURL(v); err != nil {
				t.Errorf("%s: SAPQ_REDIS_URL: %v", c.name, err)
			}
		}
	}
	// The environment is the container's alone.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "SAPQ_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	env := map[string]string{}
	for k, v := range c.env {
		env[k] = v
	}
	dir := t.TempDir()
	for name, v := range env {
		if !strings.HasSuffix(name, "_FILE") {
			continue
		}
		content, ok := c.files[v]
		if !ok {
			t.Fatalf("%s: %s=%s, but no secret is mounted there (mounted: %v)", c.name, name, v, keys(c.files))
		}
		local := filepath.Join(dir, strings.ToLower(name))
		if err := os.WriteFile(local, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		env[name] = local
	}
	if _, ok := env["SAPQ_REDIS_URL"]; ok || c.argv[0] != "sapsim" {
		_, db := redisSrv.NewDB(t)
		env["SAPQ_REDIS_URL"] = fmt.Sprintf("redis://%s/%d", redisSrv.Addr, db)
	}
	if _, ok := env["SAPQ_SAP_URL"]; ok {
		password := ""
		if path := env["SAPQ_SAP_PASSWORD_FILE"]; path != "" {
			b, _ := os.ReadFile(path)
			password = strings.TrimRight(string(b), "\r\n")
		}
		s := sim.New(sim.Options{User: env["SAPQ_SAP_USER"], Password: password, Client: env["SAPQ_SAP_CLIENT"], Logger: testLog(t)})
		hs := httptest.NewServer(s)
		t.Cleanup(hs.Close)
		env["SAPQ_SAP_URL"] = hs.URL
	}

	// Listen addresses: a value of the args or the environment that is
	// [host]:port for one of the container's ports.
	probePorts := map[int]bool{}
	for _, p := range c.probes {
		probePorts[p.port] = true
	}
	outside := map[int]bool{}
	for _, p := range c.ports {
		outside[p] = true
	}
	b := bootedContainer{addrs: map[int]string{}}
	listenRE := regexp.MustCompile(`^(|0\.0\.0\.0|\[::\]|127\.0\.0\.1|localhost):(\d+)$`)
	rewrite := func(where, v string) string {
		m := listenRE.FindStringSubmatch(v)
		if m == nil {
			return v
		}
		port, _ := strconv.Atoi(m[2])
		if !outside[port] && !probePorts[port] {
			return v
		}
		loopback := m[1] == "127.0.0.1" || m[1] == "localhost"
		if loopback && (outside[port] || c.outsideOnly) {
			t.Errorf("%s: %s binds port %d to loopback, out of reach of whoever connects to it from outside the container", c.name, where, port)
		}
		if b.addrs[port] == "" {
			b.addrs[port] = freeAddr(t)
		}
		return b.addrs[port]
	}
	args := slices.Clone(c.argv[1:])
	for i, a := range args {
		if flagName, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "-") {
			args[i] = flagName + "=" + rewrite(flagName, v)
		} else {
			args[i] = rewrite("argument "+a, a)
		}
	}
	for k, v := range env {
		env[k] = rewrite(k, v)
	}
	for port := range outside {
		if b.addrs[port] == "" {
			t.Errorf("%s: port %d is declared but the process is not told to listen there (no --addr or SAPQ_*_ADDR with :%d)", c.name, port, port)
		}
	}
	for port := range probePorts {
		if b.addrs[port] == "" {
			t.Fatalf("%s: probes port %d, where the process does not listen", c.name, port)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}

	if len(b.addrs) == 0 {
		// A one-shot command (sapq jobs): it runs to the end.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out bytes.Buffer
		if err := run(ctx, args, &out); err != nil {
			t.Fatalf("%s: sapq %s: %v\n%s", c.name, strings.Join(c.argv, " "), err, out.String())
		}
		return b
	}
	p := startCommand(t, run, args...)
	for _, pr := range c.probes {
		awaitAnswer(t, p, c.name+" "+pr.what, "http://"+b.addrs[pr.port]+pr.path)
	}
	return b
}

// awaitAnswer waits until url answers 200, failing the test if p exits or
// it does not within 30s.
func awaitAnswer(t *testing.T, p *proc, what, url string) {
	t.Helper()
	c := httpClient(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(url)
		status := ""
		if err == nil {
			b := make([]byte, 512)
			n, _ := resp.Body.Read(b)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			status = fmt.Sprintf("%s %s", resp.Status, b[:n])
		}
		if gone, perr := p.exited(); gone {
			t.Fatalf("%s: the process exited: %v", what, perr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: GET %s did not answer 200 within 30s: %v %s", what, url, err, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkRedisArgs starts the local redis-server with a Redis container's
// arguments and checks that they parse and give what sapq requires
// (ledger.CheckRedis: noeviction) and expects (AOF).
func checkRedisArgs(t *testing.T, what string, args []string) {
	t.Helper()
	if len(args) > 0 && args[0] == "redis-server" {
		args = args[1:]
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, append(slices.Clone(args), "--bind", "127.0.0.1", "--port", port, "--dir", t.TempDir(), "--daemonize", "no", "--save", "")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s: redis-server %v exited: %v\n%s", what, args, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: redis-server %v did not answer:\n%s", what, args, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := ledger.CheckRedis(context.Background(), rdb, false, testLog(t)); err != nil {
		t.Errorf("%s: sapq refuses this Redis: %v", what, err)
	}
	cfg, err := rdb.ConfigGet(context.Background(), "appendonly").Result()
	if err != nil || cfg["appendonly"] != "yes" {
		t.Errorf("%s: appendonly = %q (%v), want yes: the ledger is the record of what was posted", what, cfg["appendonly"], err)
	}
}

// The image: built in stages, statically, into a runtime image without a
// libc, with an entrypoint the other files rely on; and a .dockerignore
// that keeps what the build needs.
func TestDockerfileBuildsOneStaticImage(t *testing.T) {
	var froms []string
	var entrypoint, buildCmd string
	sc := bufio.NewScanner(bytes.NewReader(repoFile(t, "deploy/Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "FROM "):
			froms = append(froms, strings.Fields(line)[1])
		case strings.HasPrefix(line, "ENTRYPOINT "):
			entrypoint = strings.TrimSpace(strings.TrimPrefix(line, "ENTRYPOINT"))
		case strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build"):
			buildCmd = line
		}
	}
	if len(froms) < 2 {
		t.Fatalf("FROM lines %v: want a build stage and a runtime stage", froms)
	}
	runtime := froms[len(froms)-1]
	if !strings.HasPrefix(runtime, "gcr.io/distroless/static") && runtime != "scratch" {
		t.Errorf("runtime image %s: want distroless/static or scratch", runtime)
	}
	if !strings.Contains(buildCmd, "CGO_ENABLED=0") || !strings.Contains(buildCmd, "./cmd/sapq") {
		t.Errorf("build step %q: want CGO_ENABLED=0 go build ... ./cmd/sapq", buildCmd)
	}
	if entrypoint != `["`+imageBinary+`"]` {
		t.Errorf("ENTRYPOINT %s, want [%q]: the compose healthchecks run %s", entrypoint, imageBinary, imageBinary)
	}
	// The Go of the build stage is at least go.mod's.
	goVersion := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(repoFile(t, "go.mod")))
	image := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(froms[0])
	if goVersion == nil || image == nil {
		t.Fatalf("build stage %s, go.mod go %v", froms[0], goVersion)
	}
	if num(image[1])*1000+num(image[2]) < num(goVersion[1])*1000+num(goVersion[2]) {
		t.Errorf("build stage %s is older than go.mod's go %s.%s", froms[0], goVersion[1], goVersion[2])
	}

	// .dockerignore keeps go.mod, go.sum and every directory with Go
	// source, and leaves out .git.
	var patterns []string
	for _, line := range strings.Split(string(repoFile(t, ".dockerignore")), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	ignored := func(path string) bool {
		for _, p := range patterns {
			p = strings.TrimPrefix(p, "/")
			if ok, _ := filepath.Match(p, path); ok || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
				return true
			}
		}
		return false
	}
	if !ignored(".git") {
		t.Error(".dockerignore does not leave out .git")
	}
	needed := []string{"go.mod", "go.sum"}
	filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if !strings.HasPrefix(rel, ".") {
			needed = append(needed, rel)
		}
		return nil
	})
	for _, n := range needed {
		if ignored(n) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", n)
		}
	}

	// What the build step does, here: the binary builds without cgo and
	// needs no dynamic loader.
	out := filepath.Join(t.TempDir(), "sapq")
	build := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/sapq: %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked (it has a PT_INTERP header)")
		}
	}
}

// imageBinary is where the image has sapq.
const imageBinary = "/usr/local/bin/sapq"

func num(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// The README's configuration table names every SAPQ_* variable the binary
// reads (a NAME_FILE as "`NAME` / `_FILE`").
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme := string(repoFile(t, "README.md"))
	for _, name := range keys(knownEnv(t)) {
		if strings.Contains(readme, "`"+name+"`") {
			continue
		}
		if base, ok := strings.CutSuffix(name, "_FILE"); ok && strings.Contains(readme, "`"+base+"` / `_FILE`") {
			continue
		}
		t.Errorf("README.md does not document %s", name)
	}
}
