package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestConnReadsTokensBodiesAndKeepsTheConnection(t *testing.T) {
	var gotBodies, gotKeys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBodies = append(gotBodies, r.Header.Get("Content-Type")+" "+string(b))
		gotKeys = append(gotKeys, r.Header.Get("Idempotency-Key"))
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Consistency-Token", "01JD:3:42")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"order_id":"01JD","version":3,"position":42}`)
		case "/chunked":
			w.Header().Set("Consistency-Token", "01JD:4:43")
			_, _ = io.WriteString(w, strings.Repeat("x", 100))
			w.(http.Flusher).Flush() // forces chunked encoding
			_, _ = io.WriteString(w, strings.Repeat("y", 100))
		case "/problem":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"type":"https://orderflow.dev/problems/rule-violation"}`)
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	c := NewConn(strings.TrimPrefix(srv.URL, "http://"))
	defer c.Close()

	do := func(path, body, key string) int {
		t.Helper()
		status, err := c.Do(&Request{Method: "POST", Path: []byte(path), Body: []byte(body), IdempotencyKey: []byte(key)})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return status
	}
	if s := do("/ok", `{"a":1}`, "k-1"); s != 201 || string(c.Token()) != "01JD:3:42" || len(c.Body()) != 0 {
		t.Fatalf("/ok: status %d token %q body %q", s, c.Token(), c.Body())
	}
	if s := do("/chunked", "", ""); s != 200 || string(c.Token()) != "01JD:4:43" {
		t.Fatalf("/chunked: status %d token %q", s, c.Token())
	}
	if s := do("/problem", "", ""); s != 409 || !strings.Contains(string(c.Body()), "rule-violation") || len(c.Token()) != 0 {
		t.Fatalf("/problem: status %d token %q body %q", s, c.Token(), c.Body())
	}
	if c.Dials() != 1 {
		t.Fatalf("%d connections for three keep-alive requests, want 1", c.Dials())
	}
	do("/close", "", "")
	do("/ok", "", "")
	if c.Dials() != 2 {
		t.Fatalf("%d connections after the server closed one, want 2", c.Dials())
	}
	if gotBodies[0] != `application/json {"a":1}` || gotBodies[1] != " " {
		t.Errorf("server saw bodies %q", gotBodies)
	}
	if gotKeys[0] != "k-1" || gotKeys[1] != "" {
		t.Errorf("server saw idempotency keys %q", gotKeys)
	}
}

func TestConnReportsAFailedRoundTripAndRedials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hijack" {
			conn, _, _ := w.(http.Hijacker).Hijack()
			_ = conn.Close() // no answer at all
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c := NewConn(strings.TrimPrefix(srv.URL, "http://"))
	defer c.Close()
	if s, err := c.Do(&Request{Method: "POST", Path: []byte("/hijack")}); err == nil || s != 0 {
		t.Fatalf("a connection closed without an answer: status %d, err %v", s, err)
	}
	if s, err := c.Do(&Request{Method: "POST", Path: []byte("/ok")}); err != nil || s != 200 {
		t.Fatalf("after a failure: status %d, err %v", s, err)
	}
	if c.Dials() != 2 {
		t.Fatalf("dials %d, want 2", c.Dials())
	}
}
