package hub_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/hub"
)

func withProtocols(p ...string) dialOpt {
	return func(d *websocket.Dialer, _ http.Header) { d.Subprotocols = p }
}

// TestACustomerReadsItsOwnChannelsOnly: the firehose and another
// customer's channel are forbidden; another customer's order answers
// not_found, exactly like an order that does not exist; its own channels
// replay and stream as anyone's.
func TestACustomerReadsItsOwnChannelsOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, nil)
	mine, theirs := ulid.Make(), ulid.Make()
	owners := []string{"c-42", "c-7"}
	appendLoad(t, e.store, []ulid.ULID{mine, theirs}, func(i int) string { return owners[i] }, 1, 2, 1, 0, nil)

	c := mustDial(t, th.url, withToken(testenv.Token(t, "c-42", auth.Customer)))
	refused := map[string]string{
		"orders":                        hub.CodeForbidden,
		"customer:c-7":                  hub.CodeForbidden,
		"order:" + theirs.String():      hub.CodeNotFound,
		"order:" + ulid.Make().String(): hub.CodeNotFound,
	}
	for ch := range refused {
		c.subscribe(ch)
	}
	c.subscribe("customer:c-42", 0)
	c.subscribe("order:"+mine.String(), 0)
	c.waitSubscribed(testenv.Patience, "customer:c-42", "order:"+mine.String())
	c.waitUntil(testenv.Patience, "the refusals", func(c *client) bool { return len(c.errs) == len(refused) })
	c.waitUntil(testenv.Patience, "its order's events", func(c *client) bool {
		return len(c.events["order:"+mine.String()]) == 2 && len(c.events["customer:c-42"]) == 2
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.errs {
		if refused[f.Channel] != f.Code {
			t.Errorf("%s: %s %q, want %s", f.Channel, f.Code, f.Message, refused[f.Channel])
		}
	}
	for ch, evs := range c.events {
		for _, f := range evs {
			if f.StreamID != mine.String() {
				t.Errorf("%s carried another customer's order %s", ch, f.StreamID)
			}
		}
	}
	if _, ok := c.subscribed["orders"]; ok {
		t.Error("a customer subscribed to the firehose")
	}
}

// TestAConnectionIsClosedWith4001WhenItsTokenExpires: the token of a few
// seconds is accepted at the upgrade, and the hub closes the connection at
// its expiry (the wait is a hang guard, not a timing).
func TestAConnectionIsClosedWith4001WhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, nil)
	c := mustDial(t, th.url, withToken(testenv.ExpiringToken(t, testenv.StaffSubject, auth.Staff)))
	c.subscribe("orders")
	err := c.waitClosed(testenv.Patience)
	if code, reason := closeCode(err); code != hub.CloseTokenExpired || reason != hub.ReasonTokenExpired {
		t.Fatalf("closed with %d %q, want %d %q", code, reason, hub.CloseTokenExpired, hub.ReasonTokenExpired)
	}
}

func TestTheUpgradeNeedsAToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, nil)
	for name, opt := range map[string]dialOpt{
		"no token":         withProtocols(auth.StreamProtocol),
		"a forged token":   withToken("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
		"an expired token": withToken(testenv.TokenFor(t, auth.Token{Subject: "s", Roles: []auth.Role{auth.Staff}, TTL: -testenv.Patience})),
	} {
		if _, err := dial(t, th.url, opt); err == nil || !strings.Contains(err.Error(), "status 401") {
			t.Errorf("%s: %v, want 401", name, err)
		}
	}
}

// TestABrowserOffersItsTokenAsASubprotocol: the hub answers with
// orderflow.v1, never with the token.
func TestABrowserOffersItsTokenAsASubprotocol(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.startHub(t, nil)
	tok := testenv.Token(t, "c-42", auth.Customer)
	c := mustDial(t, th.url, withProtocols(auth.StreamProtocol, auth.BearerProtocolPrefix+tok))
	if got := c.ws.Subprotocol(); got != auth.StreamProtocol {
		t.Fatalf("subprotocol %q, want %q", got, auth.StreamProtocol)
	}
	c.subscribe("customer:c-42")
	c.waitSubscribed(testenv.Patience, "customer:c-42")
	if slices.ContainsFunc(c.errs, func(f frame) bool { return true }) {
		t.Errorf("errors %+v", c.errs)
	}
}
