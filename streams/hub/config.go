package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
)

// Connection timing defaults (gorilla's chat example values).
const (
	// writeWait bounds every write to a client, close frames included.
	writeWait = 10 * time.Second
	// pongWait is how long a connection may stay silent (no frame, no pong)
	// before it is considered dead and closed.
	pongWait = 60 * time.Second
	// pingPeriod is how often the hub pings; below pongWait so that a live
	// client's pong arrives before the deadline.
	pingPeriod = pongWait * 9 / 10
	// idleTimeout closes connections that hold no subscription this long.
	idleTimeout = 2 * time.Minute
)

// Defaults of the limits in Config.
const (
	// DefaultSendQueue is the per-connection send queue, in frames. Overflow
	// policy: the connection is closed with 4008 (CloseSlowConsumer); the
	// fan-out never waits. 256 frames of 8-byte pointers cost 2 KiB per
	// connection.
	DefaultSendQueue        = 256
	DefaultMaxFrameSize     = 4096
	DefaultMaxSubscriptions = 128
	DefaultMaxBadFrames     = 10
	// DefaultRecoveryWindow: a global-channel subscription whose since is
	// more than this many positions behind the head gets recovered:false.
	DefaultRecoveryWindow = 10000
	DefaultCustomerCache  = 100_000
	// DefaultMaxPending bounds the sequencer's heap. When it is full the
	// sequencer fills from the store before it takes another Kafka message
	// (Kafka keeps the rest: the hub commits nothing).
	DefaultMaxPending   = 100_000
	DefaultPollInterval = time.Second
	// DefaultMaxConnections caps one node's connections: at about 10 KiB
	// each (two goroutines, buffers, the send queue), 10 000 cost 100 MiB.
	DefaultMaxConnections = 10_000
	// DefaultMaxConnectionsPerClient caps one client key's connections: a
	// browser with a few dashboard tabs, or an office behind one address.
	DefaultMaxConnectionsPerClient = 32
	// DefaultSubscribeRate and DefaultSubscribeBurst are the per-connection
	// token bucket of subscribe frames: a dashboard subscribes to its
	// channels at once, a loop of subscribe/unsubscribe is held to 10 a
	// second (each may replay up to RecoveryWindow events).
	DefaultSubscribeRate  = 10
	DefaultSubscribeBurst = 64
	// DefaultMaxRecoveries bounds the recovery store reads in flight on a
	// node (the size cmd gives the recovery pool).
	DefaultMaxRecoveries = 4
)

// Store is the part of the event store the hub reads: catch-up for
// recovering subscriptions, gap fills for the sequencer, customer look-ups,
// an order channel's current version. *eventstore.Store implements it.
type Store interface {
	ReadAll(ctx context.Context, after int64, limit int) ([]eventstore.RecordedEvent, error)
	ReadStream(ctx context.Context, stream eventstore.Stream, fromVersion int64, limit int) ([]eventstore.RecordedEvent, error)
	HeadPosition(ctx context.Context) (int64, error)
	StreamVersion(ctx context.Context, stream eventstore.Stream) (int64, error)
}

// Config configures a Hub. Zero values mean the documented defaults.
type Config struct {
	// Store is the event store. Required.
	Store Store
	// Subscriber delivers the topic's messages (event envelopes). Required.
	// Use a streams/kafka.Subscriber with no GroupID and StartOffset
	// LastOffset: every hub node reads every partition, commits nothing,
	// and starts at the end (history comes from the store).
	Subscriber message.Subscriber
	// Topic is the events topic. Default kafka.DefaultTopic.
	Topic string
	// Verifier decides which messages are the relay's (streams/envelope);
	// the hub drops any other, counts it and logs it (rate-limited): it
	// is never sequenced or fanned out. The Subscriber must put the Kafka
	// key in kafka.DefaultKeyMetadata (its default). Required
	// (envelope.TrustAll for a trusted topic).
	Verifier *envelope.Verifier

	// SendQueue is each connection's send queue in frames (see
	// DefaultSendQueue for the overflow policy).
	SendQueue int
	// MaxFrameSize is the largest client frame in bytes; a bigger one
	// closes the connection with 1009. Default DefaultMaxFrameSize.
	MaxFrameSize int64
	// MaxSubscriptions per connection. Default DefaultMaxSubscriptions.
	MaxSubscriptions int
	// MaxBadFrames bad frames close the connection with 1008. Default
	// DefaultMaxBadFrames.
	MaxBadFrames int
	// AllowedOrigins lists the Origin header values accepted besides
	// same-origin requests (scheme://host[:port]); "*" accepts any.
	// Requests without Origin (non-browser clients) are always accepted.
	AllowedOrigins []string
	// SocketSendBuffer, if positive, sets each connection's kernel send
	// buffer (SO_SNDBUF, which turns autotuning off). Zero keeps the OS
	// default, which autotunes up to net.ipv4.tcp_wmem's maximum (4 MiB on
	// Linux): a client that stops reading can then hold that much kernel
	// memory before its send queue fills and 4008 closes it.
	SocketSendBuffer int
	// RecoveryWindow: see DefaultRecoveryWindow. It bounds order channels
	// too: a since more than this many versions behind gets
	// recovered:false.
	RecoveryWindow int64
	// RecoveryStore serves the store reads of subscribes (replays, order
	// versions, customer look-ups while replaying), so that they never
	// take a connection the live path (sequencer fills, head polls) needs:
	// give it its own small pool. Nil means Store.
	RecoveryStore Store
	// Keys opens the personal data in event frames, live and recovered
	// (internal/pii). Nil: frames carry it sealed, as stored.
	Keys *pii.Keys
	// MaxRecoveries bounds the recovery reads in flight on this node; a
	// subscribe waits for a slot in its connection's reader (blocking that
	// connection only). A slot is held for one store read, never while the
	// client drains what the read returned. Default DefaultMaxRecoveries.
	MaxRecoveries int

	// MaxConnections caps this node's connections: one more is upgraded
	// and closed at once with 1013 (CloseTryAgainLater). Default
	// DefaultMaxConnections.
	MaxConnections int
	// MaxConnectionsPerClient caps the connections of one ClientKey: one
	// more is closed at once with 4029 (CloseTooManyConnections). Default
	// DefaultMaxConnectionsPerClient.
	MaxConnectionsPerClient int
	// ClientKey says which client an upgrade request comes from (cmd
	// passes httpx.Clients.Key: the principal once authentication sets
	// one, else the address, through trusted proxies). Nil means the
	// peer's IP address.
	ClientKey func(*http.Request) string
	// SubscribeRate (per second) and SubscribeBurst are each connection's
	// token bucket of subscribe frames; a subscribe beyond it gets an
	// error frame rate_limited, which counts as a bad frame. Defaults
	// DefaultSubscribeRate and DefaultSubscribeBurst; a negative rate
	// turns the limit off.
	SubscribeRate  float64
	SubscribeBurst int
	// GapGrace: see the GapGrace constant (the default).
	GapGrace time.Duration
	// PollInterval: when no Kafka message arrived for this long, the hub
	// asks the store for its head and fills up to it, so that events the
	// Kafka subscription missed (published before it was positioned) or
	// that Kafka is slow to deliver still go out. Default 1s.
	PollInterval time.Duration
	// CustomerCache bounds the order → customer map (entries).
	CustomerCache int
	// MaxPending: see DefaultMaxPending.
	MaxPending int

	// WriteWait, PongWait, PingPeriod and IdleTimeout default to the
	// constants writeWait, pongWait, pingPeriod and idleTimeout; tests
	// shorten them.
	WriteWait   time.Duration
	PongWait    time.Duration
	PingPeriod  time.Duration
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the Shutdown that Run does when its ctx ends.
	// Default 10s.
	ShutdownTimeout time.Duration

	// Registerer receives the metrics. Nil means a private registry.
	Registerer prometheus.Registerer
	// Logger may be nil.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Topic == "" {
		c.Topic = kafka.DefaultTopic
	}
	def(&c.SendQueue, DefaultSendQueue)
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	def(&c.MaxSubscriptions, DefaultMaxSubscriptions)
	def(&c.MaxBadFrames, DefaultMaxBadFrames)
	if c.RecoveryWindow == 0 {
		c.RecoveryWindow = DefaultRecoveryWindow
	}
	defD(&c.GapGrace, GapGrace)
	defD(&c.PollInterval, DefaultPollInterval)
	def(&c.CustomerCache, DefaultCustomerCache)
	def(&c.MaxPending, DefaultMaxPending)
	if c.RecoveryStore == nil {
		c.RecoveryStore = c.Store
	}
	def(&c.MaxRecoveries, DefaultMaxRecoveries)
	def(&c.MaxConnections, DefaultMaxConnections)
	def(&c.MaxConnectionsPerClient, DefaultMaxConnectionsPerClient)
	if c.ClientKey == nil {
		c.ClientKey = peerIP
	}
	if c.SubscribeRate == 0 {
		c.SubscribeRate = DefaultSubscribeRate
	}
	def(&c.SubscribeBurst, DefaultSubscribeBurst)
	defD(&c.WriteWait, writeWait)
	defD(&c.PongWait, pongWait)
	if c.PingPeriod == 0 {
		c.PingPeriod = pingPeriod
		if c.PongWait != pongWait { // keep the ratio when only PongWait is set
			c.PingPeriod = c.PongWait * 9 / 10
		}
	}
	defD(&c.IdleTimeout, idleTimeout)
	defD(&c.ShutdownTimeout, 10*time.Second)
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem in c (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("hub config: Store is required"))
	}
	if c.Subscriber == nil {
		errs = append(errs, errors.New("hub config: Subscriber is required"))
	}
	if c.Verifier == nil {
		errs = append(errs, errors.New("hub config: Verifier is required (envelope.TrustAll for a trusted topic)"))
	}
	if c.SendQueue < 1 || c.MaxFrameSize < 64 || c.MaxSubscriptions < 1 || c.MaxBadFrames < 1 ||
		c.CustomerCache < 1 || c.MaxPending < 1 || c.MaxRecoveries < 1 || c.MaxConnections < 1 ||
		c.MaxConnectionsPerClient < 1 || c.SubscribeBurst < 1 {
		errs = append(errs, errors.New("hub config: SendQueue, MaxSubscriptions, MaxBadFrames, CustomerCache, MaxPending, MaxRecoveries, MaxConnections, MaxConnectionsPerClient, SubscribeBurst must be ≥ 1, MaxFrameSize ≥ 64"))
	}
	if math.IsNaN(c.SubscribeRate) || math.IsInf(c.SubscribeRate, 0) {
		errs = append(errs, fmt.Errorf("hub config: SubscribeRate %v is not a rate", c.SubscribeRate))
	}
	if c.RecoveryWindow < 0 {
		errs = append(errs, fmt.Errorf("hub config: RecoveryWindow %d must not be negative", c.RecoveryWindow))
	}
	if c.GapGrace < 0 || c.PollInterval <= 0 || c.WriteWait <= 0 || c.PongWait <= 0 || c.PingPeriod <= 0 ||
		c.PingPeriod >= c.PongWait || c.IdleTimeout <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("hub config: durations must be positive and PingPeriod < PongWait"))
	}
	return errors.Join(errs...)
}

// peerIP is the default ClientKey: the address the connection comes from.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
