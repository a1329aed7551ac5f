package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/oklog/ulid/v2"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/internal/tracing"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
)

// TestOneTraceFromTheRequestToTheDashboard sends commands to the built
// binary with every role, with the OTLP exporter on (to a collector in the
// test) and off, and follows each one's trace id: the event rows'
// metadata, the relayed Kafka records' headers (and their signed values),
// the request's log line, the WebSocket frames, live and recovered, and,
// with the exporter, the request's server span and a span of every
// projection linked to it.
func TestOneTraceFromTheRequestToTheDashboard(t *testing.T) {
	t.Parallel()
	for _, exporting := range []bool{true, false} {
		t.Run(map[bool]string{true: "exporter on", false: "exporter off"}[exporting], func(t *testing.T) {
			t.Parallel()
			followTraces(t, exporting)
		})
	}
}

func followTraces(t *testing.T, exporting bool) {
	e := testenv.New(t)
	env := []string{"ORDERFLOW_LOG_FORMAT=json", "ORDERFLOW_LOG_LEVEL=debug"}
	var col *testenv.Collector
	if exporting {
		col = testenv.NewCollector(t)
		env = append(env, col.Env()...)
	}
	srv := e.Serve(t, env...)
	live := subscribe(t, srv.URL, "orders", nil)

	const (
		callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerSpan  = "00f067aa0ba902b7"
	)
	tests := []struct {
		name, traceparent string
		continued         bool // the caller's trace, else a fresh one
		sampled           bool
	}{
		{"a sampled traceparent is continued", "00-" + callerTrace + "-" + callerSpan + "-01", true, true},
		{"an unsampled traceparent is continued and still recorded everywhere", "00-" + callerTrace[:31] + "1-" + callerSpan + "-00", true, false},
		{"a request without a traceparent gets a fresh trace", "", false, exporting},
		{"a malformed traceparent is ignored: a fresh trace", "00-" + callerTrace[:30] + "zz-" + callerSpan + "-01", false, exporting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := createTraced(t, srv.URL, tt.traceparent)
			events, err := e.Store.ReadStream(context.Background(), eventstore.Stream{ID: id, Type: order.StreamType}, 1, 100)
			if err != nil || len(events) == 0 {
				t.Fatalf("order %s: %d events, %v", id, len(events), err)
			}
			meta := events[0].Metadata
			sc := tracing.Parse(meta.TraceParent, meta.TraceState)
			traceID := sc.TraceID().String()
			// With the exporter, the request's server span is the events'
			// parent; without it, there is no span, and a caller's context
			// is recorded as it came.
			switch {
			case !sc.IsValid():
				t.Fatalf("the event row records traceparent %q, want a valid one", meta.TraceParent)
			case tt.continued && (traceID != tt.traceparent[3:35] || (sc.SpanID().String() == callerSpan) != !exporting):
				t.Fatalf("the event row records %q, want the caller's trace (exporter on: %v)", meta.TraceParent, exporting)
			case !tt.continued && traceID == callerTrace:
				t.Fatalf("the event row records %q, want a fresh trace", meta.TraceParent)
			case sc.IsSampled() != tt.sampled:
				t.Fatalf("the event row records %q, sampled %v, want %v", meta.TraceParent, sc.IsSampled(), tt.sampled)
			}
			for _, ev := range events {
				if ev.Metadata.TraceParent != meta.TraceParent {
					t.Fatalf("version %d records %q, version 1 %q", ev.Version, ev.Metadata.TraceParent, meta.TraceParent)
				}
			}
			t.Logf("order %s: trace %s in %d event rows (traceparent %s)", id, traceID, len(events), meta.TraceParent)

			readFrames(t, live, id, len(events), traceID)
			recovered := subscribe(t, srv.URL, "order:"+id.String(), new(int64))
			readFrames(t, recovered, id, len(events), traceID)
			_ = recovered.Close()

			relayed := 0
			for _, m := range testenv.ReadTopic(t, []string{srv.KafkaAddr}, kafka.DefaultTopic) {
				if string(m.Key) != id.String() {
					continue
				}
				relayed++
				signed, err := eventstore.UnmarshalEnvelope(m.Value)
				if err != nil {
					t.Fatal(err)
				}
				if h := header(m, envelope.HeaderTraceParent); h != meta.TraceParent || signed.Metadata.TraceParent != h {
					t.Fatalf("Kafka record of version %d: header traceparent %q, signed metadata %q, want %q", signed.Version, h, signed.Metadata.TraceParent, meta.TraceParent)
				}
			}
			if relayed != len(events) {
				t.Fatalf("Kafka holds %d records of the order, want %d", relayed, len(events))
			}

			requestLogged(t, srv.LogPath, traceID)
			if strings.Contains(readLog(t, srv.LogPath), "zz-"+callerSpan) {
				t.Fatal("the malformed traceparent reached the log")
			}
			if exporting {
				parent := ""
				if tt.continued {
					parent = callerSpan
				}
				waitForSpans(t, col, traceID, tt.sampled, parent)
			}
		})
	}
}

// createTraced creates an order with traceparent (none if empty) and
// returns its id.
func createTraced(t *testing.T, api, traceparent string) ulid.ULID {
	t.Helper()
	post, _ := http.NewRequest(http.MethodPost, api+"/v1/orders",
		strings.NewReader(`{"customer_id":"`+testenv.OperatorSubject+`","currency":"EUR","items":[{"sku":"S","name":"N","quantity":1,"unit_price_minor":100}]}`))
	post.Header.Set("Authorization", testenv.Operator(t))
	post.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		post.Header.Set(tracing.HeaderTraceParent, traceparent)
	}
	res, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	var created struct {
		OrderID ulid.ULID `json:"order_id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&created); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", res.StatusCode, err)
	}
	return created.OrderID
}

// subscribe opens a WebSocket to the hub subscribed to channel, live (and
// reads the subscribed frame) or from since (a recovery).
func subscribe(t *testing.T, api, channel string, since *int64) *websocket.Conn {
	t.Helper()
	ws, _, err := (&websocket.Dialer{HandshakeTimeout: testenv.Patience}).Dial("ws"+strings.TrimPrefix(api, "http")+"/v1/stream",
		http.Header{"Authorization": {testenv.Operator(t)}})
	if err != nil {
		t.Fatalf("dial the hub: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(testenv.Patience))
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "channel": channel, "since": since}); err != nil {
		t.Fatal(err)
	}
	if since != nil {
		return ws // a recovery streams the missed events before its subscribed frame
	}
	var f struct{ Type string }
	if err := ws.ReadJSON(&f); err != nil || f.Type != "subscribed" {
		t.Fatalf("subscribe %s: %+v %v", channel, f, err)
	}
	return ws
}

// readFrames reads ws until it has n event frames of order id, each of
// which must name traceID.
func readFrames(t *testing.T, ws *websocket.Conn, id ulid.ULID, n int, traceID string) {
	t.Helper()
	for frames := 0; frames < n; {
		var f struct {
			Type     string
			StreamID string `json:"stream_id"`
			Version  int64
			TraceID  string `json:"trace_id"`
		}
		_ = ws.SetReadDeadline(time.Now().Add(testenv.Patience))
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("the hub streamed %d of the order's %d events: %v", frames, n, err)
		}
		if f.StreamID != id.String() {
			continue
		}
		if f.TraceID != traceID {
			t.Fatalf("the frame of version %d names trace %q, want %s", f.Version, f.TraceID, traceID)
		}
		frames++
	}
}

// waitForSpans waits until every projection has exported a batch span
// linked to traceID. A sampled trace's server span must be there too,
// named by its route, a child of parent (hex; "" for a root); an
// unsampled one's must not: the spans of a process leave in the order
// they end, and the request's ended before the batches began.
func waitForSpans(t *testing.T, col *testenv.Collector, traceID string, sampled bool, parent string) {
	t.Helper()
	want, _ := hex.DecodeString(traceID)
	deadline := time.Now().Add(testenv.Patience)
	for {
		linked := map[string]bool{}
		var server *tracepb.Span
		for _, s := range col.Spans() {
			if string(s.GetTraceId()) == string(want) && s.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
				server = s
			}
			for _, l := range s.GetLinks() {
				if string(l.GetTraceId()) == string(want) && strings.HasPrefix(s.GetName(), "project ") {
					linked[strings.TrimPrefix(s.GetName(), "project ")] = true
				}
			}
		}
		missing := 0
		for _, p := range projections.All() {
			if !linked[p.Name()] {
				missing++
			}
		}
		if missing == 0 && (server != nil || !sampled) {
			switch {
			case !sampled && server != nil:
				t.Fatalf("the unsampled trace %s has an exported server span", traceID)
			case sampled && (server.GetName() != "POST /v1/orders" || hex.EncodeToString(server.GetParentSpanId()) != parent):
				t.Fatalf("server span %q parent %x, want POST /v1/orders under %q", server.GetName(), server.GetParentSpanId(), parent)
			}
			t.Logf("trace %s: linked by a batch span of each of %d projections; server span exported: %v", traceID, len(linked), server != nil)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %d projections exported no span linked to it (server span: %v; %d spans received)", traceID, missing, server != nil, len(col.Spans()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requestLogged finds the request's log line, which names its trace.
func requestLogged(t *testing.T, logPath, traceID string) {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Msg, Route string // the route's pattern, never the path (internal/pii/DESIGN.md)
			TraceID    string `json:"trace_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "http request" && line.Route == "POST /v1/orders" && line.TraceID == traceID {
			return
		}
	}
	t.Fatalf("no request log line names trace %s", traceID)
}
