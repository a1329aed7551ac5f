package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderflow/orderflow/internal/tracing"
)

const (
	parent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentID = "00f067aa0ba902b7"
)

func TestExtractKeepsAValidTraceContextAndIgnoresABadOne(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		parents       []string
		state         string
		wantTrace     string // "" means: no remote span context
		wantStateKept bool
	}{
		{"a valid traceparent and tracestate are kept", []string{parent}, "vendor=abc", traceID, true},
		{"an unsampled traceparent is kept", []string{strings.TrimSuffix(parent, "01") + "00"}, "", traceID, false},
		{"no traceparent is no parent", nil, "vendor=abc", "", false},
		{"a traceparent with upper-case hex is ignored", []string{strings.ToUpper(parent)}, "", "", false},
		{"an all-zero trace id is ignored", []string{"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, "", "", false},
		{"version 00 with a trailing field is ignored", []string{parent + "-extra"}, "", "", false},
		{"markup is ignored", []string{"<script>alert(1)</script>"}, "", "", false},
		{"an oversized traceparent is ignored", []string{"01-" + traceID + "-" + parentID + "-01-" + strings.Repeat("a", tracing.MaxHeaderLen)}, "", "", false},
		{"two traceparents are ignored", []string{parent, parent}, "", "", false},
		{"an oversized tracestate is dropped, the traceparent kept", []string{parent}, "v=" + strings.Repeat("x", tracing.MaxHeaderLen), traceID, false},
		{"an invalid tracestate is dropped, the traceparent kept", []string{parent}, "not a list member", traceID, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, p := range tt.parents {
				h.Add(tracing.HeaderTraceParent, p)
			}
			if tt.state != "" {
				h.Set(tracing.HeaderTraceState, tt.state)
			}
			sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), h))
			if tt.wantTrace == "" {
				if sc.IsValid() {
					t.Fatalf("extracted %s from %q, want nothing", sc.TraceID(), tt.parents)
				}
				return
			}
			if sc.TraceID().String() != tt.wantTrace || sc.SpanID().String() != parentID || !sc.IsRemote() {
				t.Fatalf("extracted trace %s span %s remote %v, want %s %s remote", sc.TraceID(), sc.SpanID(), sc.IsRemote(), tt.wantTrace, parentID)
			}
			if kept := sc.TraceState().Len() > 0; kept != tt.wantStateKept {
				t.Errorf("tracestate %q kept: %v, want %v", sc.TraceState().String(), kept, tt.wantStateKept)
			}
		})
	}
}

func TestStartWithTheNoOpProviderStillGivesEveryRequestATraceID(t *testing.T) {
	t.Parallel()
	tracer := noop.NewTracerProvider().Tracer("")
	ctx, _ := tracing.Start(context.Background(), tracer, "root")
	tp, _ := tracing.Header(ctx)
	root := tracing.Parse(tp, "")
	if !root.IsValid() || root.IsSampled() {
		t.Fatalf("a request without a parent got %q, want a valid unsampled root", tp)
	}
	other, _ := tracing.Start(context.Background(), tracer, "root")
	if trace.SpanContextFromContext(other).TraceID() == root.TraceID() {
		t.Fatal("two roots share a trace id")
	}

	h := http.Header{}
	h.Set(tracing.HeaderTraceParent, parent)
	h.Set(tracing.HeaderTraceState, "vendor=abc")
	ctx, _ = tracing.Start(tracing.Extract(context.Background(), h), tracer, "child")
	tp, ts := tracing.Header(ctx)
	if tp != parent || ts != "vendor=abc" {
		t.Fatalf("a request continuing %s records %q %q, want the caller's context", parent, tp, ts)
	}
	if got := tracing.TraceID(tp); got != traceID {
		t.Fatalf("TraceID(%q) = %q, want %s", tp, got, traceID)
	}
	if got := tracing.TraceID("garbage"); got != "" {
		t.Fatalf("TraceID of garbage = %q, want empty", got)
	}
}

func TestLogLinesCarryTheSpansIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	h := http.Header{}
	h.Set(tracing.HeaderTraceParent, parent)
	log.InfoContext(tracing.Extract(context.Background(), h), "with a span")
	log.InfoContext(context.Background(), "without one")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var with, without map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &with); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &without); err != nil {
		t.Fatal(err)
	}
	if with["trace_id"] != traceID || with["span_id"] != parentID || with["component"] != "test" {
		t.Errorf("line with a span: %s", lines[0])
	}
	if _, ok := without["trace_id"]; ok {
		t.Errorf("line without a span has a trace id: %s", lines[1])
	}
}
