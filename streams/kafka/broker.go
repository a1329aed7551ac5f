package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultBrokerAddr is where the embedded broker listens when given "".
const DefaultBrokerAddr = "127.0.0.1:9092"

// Broker is an embedded single-node Kafka (kfake) that speaks the real wire
// protocol over TCP, so kafka-go, kcat and franz-go clients all work with it.
//
// It keeps nothing across restarts: topics, records and committed group
// offsets live in memory and are gone after Close. It is the default broker
// for `make run` and for tests, never for production.
//
// Topics are not auto-created: a produce to, or a fetch from, an unknown
// topic fails, so EnsureTopics is the only way topics come to exist.
//
// Outages: Pause closes the listening socket and every client connection
// (clients get "connection refused" until Resume), while the cluster keeps
// its state, like a broker restarted with its disk intact. Resume listens on
// the same address again. To simulate a broker that lost its disk, Close it
// and call NewBroker with the same address; the caller then recreates topics.
//
// Consumer-group members it stops hearing from are expired after their
// session timeout, as Apache Kafka does, including the ones kfake itself
// would keep for ever (broker_groups.go).
type Broker struct {
	cluster *kfake.Cluster
	ln      *pausableListener
	logger  *slog.Logger
	reaper  *memberReaper
	closing sync.Once
}

// NewBroker starts an embedded broker on addr ("host:port"; "" means
// DefaultBrokerAddr, port 0 picks a free port). The address clients are told
// about in metadata is the one actually bound, so listen on a host the
// clients can reach.
func NewBroker(addr string, logger *slog.Logger) (*Broker, error) {
	if addr == "" {
		addr = DefaultBrokerAddr
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	inner, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: listen %s: %w", addr, err)
	}
	ln := newPausableListener(inner)
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ClusterID("orderflow-embedded"),
		// kfake always asks for 127.0.0.1:<port>; we hand it our own
		// listener so the address is ours and Pause/Resume can work.
		kfake.ListenFn(func(string, string) (net.Listener, error) { return ln, nil }),
		// Let tests use short consumer-group sessions.
		kfake.GroupMinSessionTimeout(500*time.Millisecond),
		kfake.WithLogger(kfakeLogger{logger}),
	)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	b := &Broker{cluster: cluster, ln: ln, logger: logger, reaper: startMemberReaper(cluster, ln.Addr().String(), logger)}
	logger.Info("embedded kafka broker started", "addr", ln.Addr().String(), "persistent", false)
	return b, nil
}

// Addrs returns the bootstrap addresses of the broker.
func (b *Broker) Addrs() []string { return []string{b.ln.Addr().String()} }

// Cluster exposes the kfake cluster for fault injection in tests
// (Cluster().Fault, ControlKey, ...).
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Pause makes the broker unreachable: the listening socket is closed and
// every open client connection is cut. State is kept.
func (b *Broker) Pause() {
	b.ln.pause()
	b.logger.Warn("embedded kafka broker paused", "addr", b.ln.Addr().String())
}

// Resume makes a paused broker reachable again on the same address.
func (b *Broker) Resume() error {
	if err := b.ln.resume(); err != nil {
		return fmt.Errorf("embedded kafka: resume: %w", err)
	}
	b.logger.Info("embedded kafka broker resumed", "addr", b.ln.Addr().String())
	return nil
}

// Close stops the broker and drops all its state. It is safe to call twice.
func (b *Broker) Close() {
	b.closing.Do(b.reaper.stop) // first: it asks the cluster, which must be running
	b.cluster.Close()
	_ = b.ln.Close()
}

// pausableListener is the broker's listener. While paused, the OS socket is
// closed (so dialers get ECONNREFUSED, as with a stopped broker) and Accept
// blocks until resume or Close.
type pausableListener struct {
	addr net.Addr

	mu      sync.Mutex
	inner   net.Listener // nil while paused
	closed  bool
	changed chan struct{} // closed and replaced on every state change
	conns   map[net.Conn]struct{}
}

func newPausableListener(inner net.Listener) *pausableListener {
	return &pausableListener{
		addr:    inner.Addr(),
		inner:   inner,
		changed: make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
	}
}

func (l *pausableListener) signal() { close(l.changed); l.changed = make(chan struct{}) }

func (l *pausableListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		inner, changed := l.inner, l.changed
		l.mu.Unlock()
		if inner == nil {
			<-changed
			continue
		}
		c, err := inner.Accept()
		l.mu.Lock()
		switch {
		case l.closed:
			l.mu.Unlock()
			if c != nil {
				_ = c.Close()
			}
			return nil, net.ErrClosed
		case l.inner != inner: // paused (and maybe resumed) meanwhile
			l.mu.Unlock()
			if c != nil {
				_ = c.Close()
			}
			continue
		case err != nil:
			l.mu.Unlock()
			return nil, err
		}
		tc := &trackedConn{Conn: c, l: l}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

func (l *pausableListener) pause() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inner == nil || l.closed {
		return
	}
	_ = l.inner.Close()
	l.inner = nil
	for c := range l.conns {
		_ = c.(*trackedConn).Conn.Close()
		delete(l.conns, c)
	}
	l.signal()
}

func (l *pausableListener) resume() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	if l.inner != nil {
		return nil
	}
	inner, err := net.Listen("tcp", l.addr.String())
	if err != nil {
		return err
	}
	l.inner = inner
	l.signal()
	return nil
}

func (l *pausableListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.inner != nil {
		err = l.inner.Close()
		l.inner = nil
	}
	for c := range l.conns {
		_ = c.(*trackedConn).Conn.Close()
		delete(l.conns, c)
	}
	l.signal()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (l *pausableListener) Addr() net.Addr { return l.addr }

type trackedConn struct {
	net.Conn
	l    *pausableListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// kfakeLogger forwards kfake's logs to slog. kfake logs every request at
// Info, which is Debug for us.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelNone:
		return
	}
	if !k.l.Enabled(context.Background(), lvl) {
		return
	}
	k.l.Log(context.Background(), lvl, "kfake: "+fmt.Sprintf(msg, args...))
}
