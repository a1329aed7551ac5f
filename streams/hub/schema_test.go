package hub_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compileSchema(t *testing.T, def string) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile("protocol.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("protocol.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("protocol.schema.json#/$defs/" + def)
	if err != nil {
		t.Fatalf("%#v", err)
	}
	return s
}

func validate(s *jsonschema.Schema, b []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// TestProtocolSchemaDescribesTheFramesOnTheWire: every frame a real session
// produces validates against protocol.schema.json, and the schema accepts
// exactly the client frames the hub accepts.
func TestProtocolSchemaDescribesTheFramesOnTheWire(t *testing.T) {
	t.Parallel()
	serverSchema, clientSchema := compileSchema(t, "ServerFrame"), compileSchema(t, "ClientFrame")
	for _, tc := range []struct {
		frame string
		ok    bool
	}{
		{`{"type":"subscribe","channel":"orders"}`, true},
		{`{"type":"subscribe","channel":"orders","since":0}`, true},
		{`{"type":"subscribe","channel":"order:01ARZ3NDEKTSV4RRFFQ69G5FAV","since":3}`, true},
		{`{"type":"subscribe","channel":"customer:c-42","since":null}`, true},
		{`{"type":"unsubscribe","channel":"orders"}`, true},
		{`{"type":"subscribe","channel":"order:01arz3ndektsv4rrffq69g5fav"}`, false},
		{`{"type":"subscribe","channel":"orders","since":-1}`, false},
		{`{"type":"subscribe","channel":"orders","sinse":1}`, false},
		{`{"type":"publish","channel":"orders"}`, false},
	} {
		if err := validate(clientSchema, []byte(tc.frame)); (err == nil) != tc.ok {
			t.Errorf("client frame %s: schema error %v, want valid=%v", tc.frame, err, tc.ok)
		}
	}

	e := newEnv(t)
	th := e.startHub(t, nil)
	orders := newOrders(3)
	appendLoad(t, e.store, orders, func(int) string { return "c1" }, 1, 3, 1, 0, nil)
	c := mustDial(t, th.url)
	waitFor(t, time.Minute, "the hub to catch up", func() bool { return th.metric("hub_head_position") >= 9 })
	c.subscribe("orders", 2)
	c.subscribe("customer:c1", 0)
	c.subscribe("order:"+orders[1].String(), 1)
	c.subscribe("nope")
	c.waitSubscribed(time.Minute, "orders", "customer:c1", "order:"+orders[1].String())
	appendLoad(t, e.store, orders, func(int) string { return "c1" }, 4, 1, 1, 0, nil)
	c.waitUntil(time.Minute, "live events", func(c *client) bool { return len(c.events["orders"]) == 10 })
	c.mu.Lock()
	defer c.mu.Unlock()
	types := map[string]int{}
	for _, f := range c.frames {
		types[f.Type]++
		if err := validate(serverSchema, f.raw); err != nil {
			t.Errorf("server frame %s: %v", f.raw, err)
		}
	}
	if types["event"] == 0 || types["subscribed"] != 3 || types["error"] != 1 {
		t.Errorf("frames by type %v", types)
	}
}
