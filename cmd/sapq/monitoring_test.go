package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/sapq/sapq/mcpfront"
	"github.com/sapq/sapq/sap"
	"github.com/sapq/sapq/tasks"
	"github.com/sapq/sapq/tasks/ledger"
	"github.com/sapq/sapq/worker"
)

// assumedMetrics are series the monitoring files use that sapq is to
// export (issue 8: queue depth, age of the oldest pending posting,
// approvals waiting) but may not register yet. The test says which of
// them it did not find.
var assumedMetrics = map[string]bool{
	"sapq_queue_size":                   true, // gauge {queue, state}, as asynq's queue states
	"sapq_queue_oldest_pending_seconds": true, // gauge
	"sapq_approvals_waiting":            true, // gauge
}

// descRecorder is a prometheus.Registerer that keeps the names of what is
// registered with it.
type descRecorder struct{ names map[string]bool }

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return true }

// exportedMetrics are the names of the series sapq's processes register:
// the worker's, the MCP front's and every process's own.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	rec := &descRecorder{names: map[string]bool{}}
	rdb, _ := redisSrv.NewDB(t)
	l, err := ledger.New(ledger.Options{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sap.New(sap.Config{BaseURL: "http://127.0.0.1:1", User: "SAPQ_COMM"})
	if err != nil {
		t.Fatal(err)
	}
	destinations, err := sap.SingleDestination(tasks.DefaultDestination, client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := worker.New(worker.Options{Redis: rdb, Ledger: l, SAP: destinations, Metrics: rec, Logger: testLog(t)}); err != nil {
		t.Fatal(err)
	}
	if _, err := mcpfront.New(mcpfront.Options{Ledger: l, Redis: rdb, Metrics: rec, Logger: testLog(t)}); err != nil {
		t.Fatal(err)
	}
	families, err := newRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		rec.names[f.GetName()] = true
	}
	return rec.names
}

var sapqSeries = regexp.MustCompile(`\bsapq_[a-z0-9_]+`)

// checkExpr checks that a PromQL expression uses only series sapq exports
// (or is to export), and that it does not sum the queue gauges, which every
// worker reports alike.
func checkExpr(t *testing.T, what, expr string, exported, used map[string]bool) {
	t.Helper()
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
		t.Errorf("%s: unbalanced brackets in %q", what, expr)
	}
	for _, name := range sapqSeries.FindAllString(expr, -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
				base = b
			}
		}
		if !exported[base] && !assumedMetrics[base] {
			t.Errorf("%s: %s is not a series sapq exports", what, name)
		}
		used[base] = true
	}
	if regexp.MustCompile(`sum[^(]*\(\s*(rate\()?\s*sapq_(queue_|approvals_)`).MatchString(expr) {
		t.Errorf("%s: sums a queue gauge that every worker reports alike (%q); use max", what, expr)
	}
}

// The alert rules, the Prometheus adapter rule behind the worker's
// autoscaler and the Grafana dashboard use series sapq exports, and parse.
func TestMonitoringFiles(t *testing.T) {
	exported := exportedMetrics(t)
	used := map[string]bool{}

	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/monitoring/alerts.yaml"), &rules); err != nil {
		t.Fatal(err)
	}
	alerts := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v: want alert, expr, a severity label and a summary", r)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			alerts[r.Alert] = r.Expr
			checkExpr(t, "alert "+r.Alert, r.Expr, exported, used)
		}
	}
	// What operators are paged for (issue 8): failures by code, the age of
	// the oldest pending posting, approvals waiting.
	for _, want := range []struct{ series, about string }{
		{`sapq_postings_finished_total{status="failed"}`, "failures"},
		{"sapq_queue_oldest_pending_seconds", "the oldest pending posting"},
		{"sapq_approvals_waiting", "approvals waiting"},
	} {
		found := false
		for _, expr := range alerts {
			found = found || strings.Contains(expr, want.series)
		}
		if !found {
			t.Errorf("no alert on %s (%s)", want.about, want.series)
		}
	}
	if !regexp.MustCompile(`by \([^)]*\bcode\b`).MatchString(alerts["SapqPostingsFailing"]) {
		t.Errorf("SapqPostingsFailing = %q: want failures by SAP code", alerts["SapqPostingsFailing"])
	}

	var adapter struct {
		ExternalRules []struct {
			SeriesQuery string `yaml:"seriesQuery"`
			Name        struct {
				As string `yaml:"as"`
			} `yaml:"name"`
			MetricsQuery string `yaml:"metricsQuery"`
		} `yaml:"externalRules"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/monitoring/prometheus-adapter.yaml"), &adapter); err != nil {
		t.Fatal(err)
	}
	served := false
	for _, r := range adapter.ExternalRules {
		served = served || r.Name.As == queueDepthMetric
		checkExpr(t, "adapter rule "+r.Name.As, r.SeriesQuery, exported, used)
		if !strings.HasPrefix(r.MetricsQuery, "max(") {
			t.Errorf("adapter rule %s: %q: every worker reports the queue alike; combine with max", r.Name.As, r.MetricsQuery)
		}
	}
	if !served {
		t.Errorf("the adapter serves no external metric %s, on which the worker autoscaler scales", queueDepthMetric)
	}

	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name, Type string
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(repoFile(t, "deploy/monitoring/grafana-dashboard.json"), &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: uid %q, title %q, %d panels", dash.UID, dash.Title, len(dash.Panels))
	}
	variables := map[string]bool{}
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" {
			variables["${"+v.Name+"}"] = true
		}
	}
	for _, p := range dash.Panels {
		if !variables[p.Datasource.UID] {
			t.Errorf("panel %q: datasource %q is not the dashboard's datasource variable", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, exported, used)
		}
	}
	for name := range exported {
		if strings.HasPrefix(name, "sapq_") && !used[name] {
			t.Logf("%s is exported but neither charted nor alerted on", name)
		}
	}
	for name := range assumedMetrics {
		if !exported[name] {
			t.Logf("%s is used by the monitoring files but not exported yet", name)
		}
	}
}
