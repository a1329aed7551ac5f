package httpx

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// KeyFunc says whom a request counts against: requests with the same key
// share a rate limit (and, in the WebSocket hub, a connection cap).
type KeyFunc func(*http.Request) string

// Clients finds who sent a request: the client's address, taken from
// X-Forwarded-For only when the peer is a trusted proxy, and later the
// authenticated principal. The zero value trusts no proxy.
type Clients struct {
	proxies []netip.Prefix
}

// NewClients trusts X-Forwarded-For from peers in the given CIDRs
// ("10.0.0.0/8", "2001:db8::/32"; a bare address is a single host).
func NewClients(trustedProxies []string) (*Clients, error) {
	c := &Clients{}
	for _, s := range trustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR such as 10.0.0.0/8 or an address", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		c.proxies = append(c.proxies, p.Masked())
	}
	return c, nil
}

func (c *Clients) trusted(a netip.Addr) bool {
	for _, p := range c.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// IP returns the client's address. The peer (RemoteAddr) is the client
// unless it is a trusted proxy; then X-Forwarded-For is read from the right
// (the hop the proxy itself appended) leftwards, skipping trusted proxies,
// and the first address that is not one is the client. Entries left of it
// were written by the client and are never believed. A malformed entry
// stops the walk at the last address that was sound.
func (c *Clients) IP(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	if !peer.IsValid() || len(c.proxies) == 0 || !c.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap()
		if !c.trusted(client) {
			break
		}
	}
	return client
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// Key is the default KeyFunc: "sub:<principal>" once authentication has
// recorded one (WithActor), else "ip:<client address>". An IPv6 client is
// keyed by its /64, the block one subscriber gets: per address, one host
// could draw a fresh key for every request.
//
// This is the hook for authentication: a middleware that verifies a token
// and calls WithActor before the rate limiter runs makes every limit per
// subject with no change here. Limits that must hold before
// authentication (the token check costs CPU) run outside it and see no
// principal yet, so they stay per address.
func (c *Clients) Key(r *http.Request) string {
	if p, ok := Principal(r.Context()); ok {
		return "sub:" + p
	}
	a := c.IP(r)
	switch {
	case !a.IsValid():
		return "ip:unknown"
	case a.Is6():
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}
