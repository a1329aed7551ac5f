package main

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/streams/hub"
)

// hubLimits are the WebSocket hub's abuse bounds (streams/hub.Config has
// their meaning, README "Limits and transport security" the close codes).
type hubLimits struct {
	maxConnections          int
	maxConnectionsPerClient int
	subscribeRate           float64
	subscribeBurst          int
	recoveryConns           int
}

func (l *hubLimits) register(f *flags) {
	f.int(&l.maxConnections, "hub-max-connections", "ORDERFLOW_HUB_MAX_CONNECTIONS", hub.DefaultMaxConnections, "WebSocket connections per node; one more is closed with 1013")
	f.int(&l.maxConnectionsPerClient, "hub-max-connections-per-client", "ORDERFLOW_HUB_MAX_CONNECTIONS_PER_CLIENT", hub.DefaultMaxConnectionsPerClient, "WebSocket connections per client (address, or subject once authenticated); one more is closed with 4029")
	f.float(&l.subscribeRate, "hub-subscribe-rate", "ORDERFLOW_HUB_SUBSCRIBE_RATE", hub.DefaultSubscribeRate, "subscribe frames per second per connection; beyond the burst, error rate_limited")
	f.int(&l.subscribeBurst, "hub-subscribe-burst", "ORDERFLOW_HUB_SUBSCRIBE_BURST", hub.DefaultSubscribeBurst, "subscribe frames a connection may send at once")
	f.int(&l.recoveryConns, "hub-recovery-conns", "ORDERFLOW_HUB_RECOVERY_CONNS", hub.DefaultMaxRecoveries, "PostgreSQL connections of the hub's recovery pool (subscribe replays), apart from the main pool: also the recovery reads in flight")
}

func (l *hubLimits) validate(f *flags) {
	f.check(l.maxConnections < 1, "ORDERFLOW_HUB_MAX_CONNECTIONS must be at least 1")
	f.check(l.maxConnectionsPerClient < 1, "ORDERFLOW_HUB_MAX_CONNECTIONS_PER_CLIENT must be at least 1")
	f.check(l.subscribeRate <= 0, "ORDERFLOW_HUB_SUBSCRIBE_RATE must be positive")
	f.check(l.subscribeBurst < 1, "ORDERFLOW_HUB_SUBSCRIBE_BURST must be at least 1")
	f.check(l.recoveryConns < 1 || l.recoveryConns > 100, "ORDERFLOW_HUB_RECOVERY_CONNS must be 1 to 100")
}

func (l *hubLimits) apply(c *hub.Config, clients *httpx.Clients, recovery hub.Store) {
	c.MaxConnections, c.MaxConnectionsPerClient = l.maxConnections, l.maxConnectionsPerClient
	c.SubscribeRate, c.SubscribeBurst = l.subscribeRate, l.subscribeBurst
	c.RecoveryStore, c.MaxRecoveries = recovery, l.recoveryConns
	c.ClientKey = clients.Key
}

// withStatementTimeout returns the database URL with PostgreSQL's
// statement_timeout set for the sessions it opens (a startup parameter:
// pgx sends the URL's unknown query parameters as run-time settings), so
// that no statement of a serving pool holds a connection longer than d.
// Migrations and the relay's session lock use the URL without it. Zero
// leaves the server's setting.
func withStatementTimeout(databaseURL string, d time.Duration) (string, error) {
	if d == 0 {
		return databaseURL, nil
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL is malformed (not shown: it may hold a password)")
	}
	q := u.Query()
	q.Set("statement_timeout", strconv.FormatInt(d.Milliseconds(), 10))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// poolSize is a validated connection count as pgxpool wants it, clamped to
// int32 (validation keeps it far below).
func poolSize(n int) int32 {
	if n < 1 {
		return 1
	}
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(n)
}
