package deploy_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	kafkago "github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"

	"github.com/orderflow/orderflow/internal/testenv"
)

// configVars are the variables the binary reads, from the "($VAR)" each
// flag's help names, over every subcommand the deployment runs.
func configVars(t *testing.T) map[string]bool {
	t.Helper()
	bin := testenv.Binary(t)
	vars := map[string]bool{"ORDERFLOW_KAFKA_SASL_PASSWORD": true} // environment only, never a flag (see serve --help)
	re := regexp.MustCompile(`\(\$([A-Z][A-Z0-9_]*)\)`)
	for _, sub := range [][]string{{"serve"}, {"migrate", "up"}, {"projections", "rebuild"}} {
		out, _ := exec.Command(bin, append(sub, "--help")...).CombinedOutput() // --help exits 0 or 2 by command
		for _, m := range re.FindAllStringSubmatch(string(out), -1) {
			vars[m[1]] = true
		}
	}
	if !vars["ORDERFLOW_ROLES"] || !vars["DATABASE_URL"] {
		t.Fatalf("could not read the configuration from --help: %v", vars)
	}
	return vars
}

func TestEveryVariableTheDeploymentSetsIsOneTheBinaryReads(t *testing.T) {
	t.Parallel()
	known := configVars(t)
	check := func(where, name string) {
		if (strings.HasPrefix(name, "ORDERFLOW_") || name == "KAFKA_BROKERS" || name == "DATABASE_URL") && !known[name] {
			t.Errorf("%s sets %s, which orderflow does not read (a typo, or a setting that was renamed)", where, name)
		}
	}

	// compose.yaml: every service's environment, merge keys (<<: *anchor)
	// resolved by the YAML decoder.
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Environment map[string]any `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	n := 0
	for name, svc := range compose.Services {
		for v := range svc.Environment {
			check("compose.yaml service "+name, v)
			n++
		}
	}
	if n == 0 {
		t.Fatal("compose.yaml: no environment found")
	}

	// Kubernetes: the ConfigMap's env file and every env entry of the
	// manifests.
	f, err := os.Open(filepath.Join("k8s", "config.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		check("k8s/config.env", strings.SplitN(line, "=", 2)[0])
	}
	manifests, _ := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	env := regexp.MustCompile(`(?m)^\s*- name: ([A-Z][A-Z0-9_]*)\s*$`)
	for _, m := range manifests {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range env.FindAllStringSubmatch(string(b), -1) {
			check(m, v[1])
		}
	}
}

// external are metric prefixes of other exporters the dashboard and alerts
// use (deploy/README.md, "Needs beyond orderflow"), and Prometheus' own.
var external = []string{"pg_", "kube_", "nginx_ingress_controller_", "up", "ALERTS"}

func TestEveryMetricTheDashboardAndAlertsQueryIsExported(t *testing.T) {
	t.Parallel()
	queried := map[string][]string{} // metric → where
	for _, q := range dashboardQueries(t) {
		for _, m := range metricNames(q) {
			queried[m] = append(queried[m], "dashboard")
		}
	}
	for _, q := range alertQueries(t) {
		for _, m := range metricNames(q) {
			queried[m] = append(queried[m], "alerts.yaml")
		}
	}
	exported := servedMetrics(t)
	for m, where := range queried {
		if exported[m] || slices.ContainsFunc(external, func(p string) bool { return m == p || strings.HasPrefix(m, p) && strings.HasSuffix(p, "_") }) {
			continue
		}
		t.Errorf("%v query %s, which a served orderflow does not export", slices.Compact(where), m)
	}
	t.Logf("%d metric names queried, %d exported by a served binary", len(queried), len(exported))
}

func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("grafana", "dashboards", "orderflow-overview.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					out = append(out, tg.Expr)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(out) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	return out
}

func alertQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promSelectors = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true,
		"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression selects: its
// identifiers minus strings, label matchers, ranges, grouping label lists,
// keywords, durations and function names (an identifier followed by "(").
func metricNames(q string) []string {
	q = promStrings.ReplaceAllString(q, `""`)
	q = promSelectors.ReplaceAllString(q, " ")
	q = promGrouping.ReplaceAllString(q, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(q, -1) {
		name := q[loc[0]:loc[1]]
		rest := strings.TrimLeft(q[loc[1]:], " ")
		if strings.HasPrefix(rest, "(") || promKeywords[strings.ToLower(name)] || strings.HasPrefix(name, "$") ||
			(loc[0] > 0 && (q[loc[0]-1] == '$' || q[loc[0]-1] >= '0' && q[loc[0]-1] <= '9')) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// servedMetrics serves the binary with every role, puts it through what
// makes each metric exist (a command, a delivered event, a dashboard
// resuming, an event the projections must dead-letter), and returns the
// sample names of its /metrics.
func servedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	e := testenv.New(t)
	srv := e.Serve(t)
	post := func(path, body string) string {
		res, err := (&httpClient{authz: testenv.Operator(t)}).post(srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	var created struct {
		OrderID string `json:"order_id"`
	}
	if err := json.Unmarshal([]byte(post("/v1/orders", `{"customer_id":"`+testenv.OperatorSubject+`","currency":"EUR","items":[{"sku":"A","name":"a","quantity":1,"unit_price_minor":100}]}`)), &created); err != nil {
		t.Fatal(err)
	}
	post("/v1/orders/"+created.OrderID+"/place", "")

	// A dashboard that resumes (hub_recoveries_total).
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/stream", http.Header{"Authorization": {testenv.Operator(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ws.Close() }()
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "channel": "orders", "since": 0}); err != nil {
		t.Fatal(err)
	}
	// A message no projection can decode, signed as the relay would (a
	// relay bug: anything unsigned is refused before it is decoded):
	// dead-lettered after its retries (projection_dlq_total), and counted
	// by the hub as not an event.
	bad := kafkago.Message{Key: []byte("not-an-order"), Value: []byte("not an envelope")}
	if err := testenv.EventSigner(t).Sign(&bad); err != nil {
		t.Fatal(err)
	}
	testenv.Produce(t, []string{srv.KafkaAddr}, testenv.Topic, bad)

	deadline := time.Now().Add(testenv.Patience)
	for {
		names := scrapeNames(t, srv.OpsURL) // the operations listener serves /metrics
		if names["projection_dlq_total"] && names["hub_recoveries_total"] && names["projection_events_applied_total"] {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("the served binary never exported every metric it registers; it has: %v", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
