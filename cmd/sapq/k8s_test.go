package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The parts of Kubernetes objects the tests read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       k8sSpec           `yaml:"spec"`
	file       string
}

type k8sSpec struct {
	// Deployment, StatefulSet
	Replicas *int        `yaml:"replicas"`
	Selector k8sSelector `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec k8sPodSpec `yaml:"spec"`
	} `yaml:"template"`
	// Service
	Ports []struct {
		Name       string    `yaml:"name"`
		Port       int       `yaml:"port"`
		TargetPort yaml.Node `yaml:"targetPort"`
	} `yaml:"ports"`
	// PodDisruptionBudget
	MinAvailable   yaml.Node `yaml:"minAvailable"`
	MaxUnavailable yaml.Node `yaml:"maxUnavailable"`
	// HorizontalPodAutoscaler
	ScaleTargetRef struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Name       string `yaml:"name"`
	} `yaml:"scaleTargetRef"`
	MinReplicas int `yaml:"minReplicas"`
	MaxReplicas int `yaml:"maxReplicas"`
	Metrics     []struct {
		Type     string `yaml:"type"`
		External *struct {
			Metric struct {
				Name     string      `yaml:"name"`
				Selector k8sSelector `yaml:"selector"`
			} `yaml:"metric"`
			Target struct {
				Type         string `yaml:"type"`
				AverageValue string `yaml:"averageValue"`
			} `yaml:"target"`
		} `yaml:"external"`
	} `yaml:"metrics"`
}

// k8sSelector is a label selector: matchLabels, or for a Service the
// labels themselves.
type k8sSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

func (s *k8sSelector) UnmarshalYAML(n *yaml.Node) error {
	var withMatch struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if err := n.Decode(&withMatch); err == nil && withMatch.MatchLabels != nil {
		s.MatchLabels = withMatch.MatchLabels
		return nil
	}
	return n.Decode(&s.MatchLabels)
}

func (s k8sSelector) matches(labels map[string]string) bool {
	if len(s.MatchLabels) == 0 {
		return false
	}
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type k8sPodSpec struct {
	TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
	Containers                    []k8sContainer `yaml:"containers"`
	Volumes                       []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Items      []struct {
				Key  string `yaml:"key"`
				Path string `yaml:"path"`
			} `yaml:"items"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			ResourceFieldRef *struct {
				Resource string `yaml:"resource"`
			} `yaml:"resourceFieldRef"`
			Other map[string]any `yaml:",inline"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	TimeoutSeconds int `yaml:"timeoutSeconds"`
}

type kustomization struct {
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// loadObjects reads every object of a multi-document YAML file.
func loadObjects(t *testing.T, file string) []k8sObject {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(repoFile(t, file)))
	var out []k8sObject
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
			t.Fatalf("%s: an object without kind, apiVersion or name: %+v", file, o)
		}
		o.file = file
		out = append(out, o)
	}
}

const k8sDir = "deploy/k8s"

// The kustomization lists every manifest in deploy/k8s and no example, and
// names the image every sapq container runs.
func loadKustomization(t *testing.T) (kustomization, []k8sObject) {
	t.Helper()
	var k kustomization
	if err := yaml.Unmarshal(repoFile(t, path.Join(k8sDir, "kustomization.yaml")), &k); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(repoRoot, k8sDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == "kustomization.yaml" || !strings.HasSuffix(name, ".yaml"):
		case strings.HasSuffix(name, ".example.yaml"):
			if slices.Contains(k.Resources, name) {
				t.Errorf("kustomization.yaml applies %s: an example of placeholders would overwrite the real thing", name)
			}
		case !slices.Contains(k.Resources, name):
			t.Errorf("kustomization.yaml does not list %s", name)
		}
	}
	var objs []k8sObject
	for _, r := range k.Resources {
		objs = append(objs, loadObjects(t, path.Join(k8sDir, r))...)
	}
	return k, objs
}

// Every workload in the Kubernetes manifests: probes, resources, ports,
// secrets from files, disruption budgets, and the worker's autoscaler; and
// every sapq container booted here as the kubelet would start it.
func TestKubernetesManifests(t *testing.T) {
	k, objs := loadKustomization(t)
	known := knownEnv(t)
	if len(k.Images) != 1 || k.Images[0].NewTag == "" {
		t.Fatalf("kustomization images %+v: want the sapq image with its tag", k.Images)
	}
	sapqImage := k.Images[0].Name
	secretExample := loadObjects(t, path.Join(k8sDir, "secret.example.yaml"))
	if len(secretExample) != 1 || secretExample[0].Kind != "Secret" {
		t.Fatalf("secret.example.yaml: want one Secret")
	}
	for key, v := range secretExample[0].StringData {
		if !strings.Contains(v, "REPLACE-ME") {
			t.Errorf("secret.example.yaml %s holds a value, not a placeholder", key)
		}
	}
	secrets := map[string]k8sObject{secretExample[0].Metadata.Name: secretExample[0]}
	configMaps := map[string]map[string]string{}
	byKind := map[string][]k8sObject{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
		switch o.Kind {
		case "Secret":
			t.Errorf("%s: a Secret in the applied manifests; secrets are created apart", o.file)
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
			for name := range o.Data {
				if strings.HasPrefix(name, "SAPQ_") && !known[name] {
					t.Errorf("ConfigMap %s sets %s, which sapq does not read", o.Metadata.Name, name)
				}
				if secretLike(name) {
					t.Errorf("ConfigMap %s holds the secret %s", o.Metadata.Name, name)
				}
			}
		}
	}

	workloads := append(slices.Clone(byKind["Deployment"]), byKind["StatefulSet"]...)
	for _, w := range workloads {
		pod := w.Spec.Template
		if !w.Spec.Selector.matches(pod.Metadata.Labels) {
			t.Errorf("%s %s: its selector does not select its own pods", w.Kind, w.Metadata.Name)
		}
		for _, c := range pod.Spec.Containers {
			what := w.Metadata.Name + "/" + c.Name
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s: want a readiness and a liveness probe", what)
			}
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: resources %+v: want cpu and memory requests and a memory limit", what, c.Resources)
			}
			if strings.HasPrefix(c.Image, "redis:") {
				if !strings.HasPrefix(c.Image, "redis:7") {
					t.Errorf("%s: image %s, want redis:7.x", what, c.Image)
				}
				t.Run(what, func(t *testing.T) { checkRedisArgs(t, what, c.Args) })
				continue
			}
			if !strings.HasPrefix(c.Image, sapqImage+":") && c.Image != sapqImage {
				t.Errorf("%s: image %s is not the one the kustomization sets, %s", what, c.Image, sapqImage)
				continue
			}
			if len(c.Args) == 0 {
				t.Errorf("%s: no args: which sapq command?", what)
				continue
			}
			if len(c.Command) > 0 {
				t.Errorf("%s: command %v replaces the image's entrypoint; give args only", what, c.Command)
			}
			if pod.Spec.TerminationGracePeriodSeconds == 0 && c.Args[0] == "worker" {
				t.Errorf("%s: no terminationGracePeriodSeconds: a worker needs longer than the default 30s to let postings finish", what)
			}
			t.Run(what, func(t *testing.T) {
				cont := k8sContainerOf(t, what, c, pod.Spec, configMaps, secrets)
				if port := pod.Metadata.Annotations["prometheus.io/port"]; port != "" {
					n, _ := strconv.Atoi(port)
					cont.probes = append(cont.probes, httpProbe{what: "prometheus scrape", port: n, path: pod.Metadata.Annotations["prometheus.io/path"]})
				}
				boot(t, cont, known)
			})
		}
	}

	// Services reach pods by a port those pods declare.
	for _, s := range byKind["Service"] {
		var pods []k8sPodSpec
		for _, w := range workloads {
			if s.Spec.Selector.matches(w.Spec.Template.Metadata.Labels) {
				pods = append(pods, w.Spec.Template.Spec)
			}
		}
		if len(pods) == 0 {
			t.Errorf("Service %s selects no workload's pods", s.Metadata.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			for _, pod := range pods {
				if _, err := resolvePort(pod.Containers, p.TargetPort); err != nil {
					t.Errorf("Service %s port %d: %v", s.Metadata.Name, p.Port, err)
				}
			}
		}
	}

	// The worker and the MCP front keep serving through a drain.
	for _, name := range []string{"sapq-worker", "sapq-mcp"} {
		var found bool
		for _, pdb := range byKind["PodDisruptionBudget"] {
			for _, w := range workloads {
				if w.Metadata.Name == name && pdb.Spec.Selector.matches(w.Spec.Template.Metadata.Labels) {
					found = pdb.Spec.MinAvailable.Kind != 0 || pdb.Spec.MaxUnavailable.Kind != 0
				}
			}
		}
		if !found {
			t.Errorf("no PodDisruptionBudget for %s", name)
		}
	}

	// The worker scales on queue depth, and nothing else sets its count.
	hpas := byKind["HorizontalPodAutoscaler"]
	if len(hpas) != 1 {
		t.Fatalf("%d HorizontalPodAutoscalers, want the worker's", len(hpas))
	}
	hpa := hpas[0]
	var target *k8sObject
	for i, w := range workloads {
		if w.Kind == hpa.Spec.ScaleTargetRef.Kind && w.Metadata.Name == hpa.Spec.ScaleTargetRef.Name {
			target = &workloads[i]
		}
	}
	if target == nil || target.Spec.Template.Spec.Containers[0].Args[0] != "worker" {
		t.Fatalf("the autoscaler scales %+v, want the worker Deployment", hpa.Spec.ScaleTargetRef)
	}
	if target.Spec.Replicas != nil {
		t.Errorf("%s sets replicas, which every apply would reset under the autoscaler", target.Metadata.Name)
	}
	if hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas <= hpa.Spec.MinReplicas {
		t.Errorf("autoscaler between %d and %d workers", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].External == nil || hpa.Spec.Metrics[0].External.Metric.Name != queueDepthMetric {
		t.Fatalf("autoscaler metrics %+v: want the external metric %s", hpa.Spec.Metrics, queueDepthMetric)
	}
	if ext := hpa.Spec.Metrics[0].External; ext.Target.Type != "AverageValue" || ext.Target.AverageValue == "" {
		t.Errorf("autoscaler target %+v: want an AverageValue (pending postings per worker)", ext.Target)
	}
}

// queueDepthMetric is what the worker's autoscaler scales on.
const queueDepthMetric = "sapq_queue_size"

// resolvePort finds a container port by name or number.
func resolvePort(cs []k8sContainer, n yaml.Node) (int, error) {
	for _, c := range cs {
		for _, p := range c.Ports {
			if n.Tag == "!!int" && strconv.Itoa(p.ContainerPort) == n.Value || n.Tag == "!!str" && p.Name == n.Value {
				return p.ContainerPort, nil
			}
		}
	}
	return 0, errors.New("no container declares port " + n.Value)
}

// k8sContainerOf is how the kubelet runs a sapq container: its env with
// the ConfigMaps it takes in, its mounted secret files and its probes.
func k8sContainerOf(t *testing.T, what string, c k8sContainer, pod k8sPodSpec, configMaps map[string]map[string]string, secrets map[string]k8sObject) container {
	t.Helper()
	cont := container{name: what, image: c.Image, argv: c.Args, env: map[string]string{}, files: map[string]string{}, ports: map[string]int{}, outsideOnly: true}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			data, ok := configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Fatalf("%s: envFrom ConfigMap %s, which is not in the manifests", what, from.ConfigMapRef.Name)
			}
			for k, v := range data {
				cont.env[k] = v
			}
		case from.SecretRef != nil:
			t.Errorf("%s: envFrom a Secret puts secrets in the environment; mount it and name the files with SAPQ_*_FILE", what)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" && len(e.ValueFrom.Other) == 0:
			// The kubelet gives the container's memory limit in bytes.
			limit, ok := c.Resources.Limits["memory"]
			if !ok {
				t.Errorf("%s: %s from the memory limit, which the container does not set", what, e.Name)
				continue
			}
			cont.env[e.Name] = strconv.FormatInt(k8sBytes(t, what, limit), 10)
		case e.ValueFrom != nil:
			t.Errorf("%s: %s from valueFrom other than the memory limit; secrets are mounted files", what, e.Name)
		default:
			cont.env[e.Name] = e.Value
		}
	}
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			s, ok := secrets[v.Secret.SecretName]
			if !ok {
				t.Fatalf("%s: mounts Secret %s, of which there is no example", what, v.Secret.SecretName)
			}
			if len(v.Secret.Items) == 0 {
				for key, val := range s.StringData {
					cont.files[path.Join(m.MountPath, key)] = val
				}
			}
			for _, it := range v.Secret.Items {
				val, ok := s.StringData[it.Key]
				if !ok {
					t.Fatalf("%s: mounts key %s of Secret %s, which the example does not have", what, it.Key, s.Metadata.Name)
				}
				cont.files[path.Join(m.MountPath, it.Path)] = val
			}
		}
	}
	for _, p := range c.Ports {
		cont.ports[p.Name] = p.ContainerPort
	}
	for _, pr := range []struct {
		what string
		p    *k8sProbe
	}{{"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}, {"startupProbe", c.StartupProbe}} {
		if pr.p == nil {
			continue
		}
		if pr.p.HTTPGet == nil {
			t.Fatalf("%s: %s is not an httpGet", what, pr.what)
		}
		port, err := resolvePort([]k8sContainer{c}, pr.p.HTTPGet.Port)
		if err != nil {
			t.Fatalf("%s: %s: %v", what, pr.what, err)
		}
		if pr.p.TimeoutSeconds < 2 {
			t.Errorf("%s: %s timeoutSeconds %d: /readyz may take up to %s", what, pr.what, pr.p.TimeoutSeconds, readyTimeout)
		}
		cont.probes = append(cont.probes, httpProbe{what: pr.what, port: port, path: pr.p.HTTPGet.Path})
	}
	return cont
}

// k8sBytes reads a Kubernetes memory quantity in the binary units the
// manifests use ("256Mi").
func k8sBytes(t *testing.T, what, q string) int64 {
	t.Helper()
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"Ki", 10}, {"Mi", 20}, {"Gi", 30}} {
		if v, ok := strings.CutSuffix(q, u.suffix); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: memory quantity %q: %v", what, q, err)
			}
			return n << u.shift
		}
	}
	t.Fatalf("%s: memory quantity %q is not in Ki, Mi or Gi", what, q)
	return 0
}
