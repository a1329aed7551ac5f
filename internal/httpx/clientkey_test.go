package httpx_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/orderflow/orderflow/internal/httpx"
)

func TestClientKey(t *testing.T) {
	clients, err := httpx.NewClients([]string{"10.0.0.0/8", "192.0.2.10", "2001:db8:ffff::/48"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"without a proxy the peer is the client", "203.0.113.5:4000", nil, "ip:203.0.113.5"},
		{"an untrusted peer's X-Forwarded-For is ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, "ip:203.0.113.5"},
		{"a trusted proxy's last hop is the client", "10.0.0.1:4000", []string{"198.51.100.1"}, "ip:198.51.100.1"},
		{"what the client wrote left of the proxies is not believed", "10.0.0.1:4000", []string{"1.2.3.4, 198.51.100.1"}, "ip:198.51.100.1"},
		{"a chain of trusted proxies is walked from the right", "10.0.0.1:4000", []string{"198.51.100.1, 10.9.9.9", "192.0.2.10"}, "ip:198.51.100.1"},
		{"a malformed hop stops the walk at the last sound one", "10.0.0.1:4000", []string{"garbage, 10.2.2.2"}, "ip:10.2.2.2"},
		{"a trusted proxy without the header is the client", "192.0.2.10:4000", nil, "ip:192.0.2.10"},
		{"an IPv6 client is keyed by its /64", "[2001:db8:1:2:aaaa::1]:4000", nil, "ip:2001:db8:1:2::/64"},
		{"an IPv4-mapped peer is its IPv4 address", "[::ffff:203.0.113.5]:4000", nil, "ip:203.0.113.5"},
		{"an IPv6 proxy's client", "[2001:db8:ffff::1]:443", []string{"2001:db8:5:6::9"}, "ip:2001:db8:5:6::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := clients.Key(req); got != tt.want {
				t.Errorf("Key = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("an authenticated request is keyed by its subject", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(httpx.WithActor(context.Background(), "user-42"))
		if got := clients.Key(req); got != "sub:user-42" {
			t.Errorf("Key = %q", got)
		}
	})
	t.Run("a bad CIDR is refused", func(t *testing.T) {
		if _, err := httpx.NewClients([]string{"10.0.0.0/33"}); err == nil {
			t.Error("accepted")
		}
	})
}
