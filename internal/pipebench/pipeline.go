package pipebench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow/internal/benchstat"
	"github.com/orderflow/orderflow/internal/loadgen"
)

// Config configures Run. Zero values of optional fields mean the defaults
// written next to them.
type Config struct {
	// URL is an orderflow running every role: http://host:port. Required.
	URL string
	// OpsURL is its operations listener, where GET /v1/projections is
	// served. Default http://127.0.0.1:9090 (ORDERFLOW_OPS_ADDR's).
	OpsURL string
	// Rate is the open-loop command rate per second. Required.
	Rate float64
	// Clients bounds the commands in flight (loadgen). Default 64.
	Clients int
	Keyed   bool
	// Warmup runs first, unmeasured (default 0); Duration is required.
	Warmup, Duration time.Duration
	// FreshEvery probes the freshness of one command in this many (1: every
	// command). Default 50: at 1 500 commands/s, 30 samples a second (1 800
	// a minute, enough for a p99), 120 query requests a second each polling
	// its versions table every 15 ms while it waits: a small share of the
	// load they measure.
	FreshEvery int
	// Probers is how many freshness probes run at once. Default 64: a probe
	// lasts about the freshness it measures, and one waiting for a worker
	// would overstate it.
	Probers int
	// DrainTimeout bounds the wait, after the load, for the lag to return
	// to zero and the last probes and frames to arrive. Default 60s.
	DrainTimeout time.Duration
	// LagEvery is the lag sampling interval during the load. Default 1s.
	LagEvery time.Duration
	// MaxBehind is loadgen's: the run stops when the generator falls this
	// far behind its schedule. Default 5s.
	MaxBehind time.Duration
	// Authorization is the Authorization header of the freshness queries,
	// the lag polls and the WebSocket (a token of the staff and admin
	// roles); Tokens gives the commands of each customer theirs
	// (loadgen.Config.Authorization). Nil or empty: none.
	Authorization string
	Tokens        func(customer []byte) []byte
	Logger        *slog.Logger
}

func (c *Config) setDefaults() {
	if c.OpsURL == "" {
		c.OpsURL = "http://127.0.0.1:9090"
	}
	if c.Clients == 0 {
		c.Clients = 64
	}
	if c.FreshEvery == 0 {
		c.FreshEvery = 50
	}
	if c.Probers == 0 {
		c.Probers = 64
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 60 * time.Second
	}
	if c.LagEvery == 0 {
		c.LagEvery = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports values that cannot work (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("rate %g: want a positive rate (commands per second)", c.Rate))
	}
	if c.FreshEvery < 1 || c.Probers < 1 || c.DrainTimeout <= 0 || c.LagEvery <= 0 {
		errs = append(errs, errors.New("fresh-every and probers must be at least 1, drain-timeout and lag-every positive"))
	}
	if err := c.load().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) load() loadgen.Config {
	return loadgen.Config{URL: c.URL, Clients: c.Clients, Rate: c.Rate, Keyed: c.Keyed, Warmup: c.Warmup,
		Duration: c.Duration, MaxBehind: c.MaxBehind, Authorization: c.Tokens}
}

// Result is what a pipeline run measured.
type Result struct {
	Config   Config
	Commands loadgen.Result
	// Fresh is, per sampled command, the time from its 2xx to the moment
	// every read model reflected it; FreshBy the same per read model
	// (names in ReadModels).
	Fresh   *benchstat.Recorder
	FreshBy []*benchstat.Recorder
	// ProbeStart is the delay from a sampled 2xx to its first probe.
	ProbeStart *benchstat.Recorder
	ReadModels []string
	Probes     ProbeCounts
	// WS is, per command, the time from its 2xx to the frame of its last
	// event on the orders channel.
	WS         *benchstat.Recorder
	WSFrames   int64 // event frames read
	WSMissing  int64 // 2xx commands whose frame never came
	WSEarly    int64 // frames read before their command's answer
	Reconnects int
	// Lag is GET /v1/projections over time.
	Lag       []LagSample
	LagErrors int
	// LoadEnd is when the last answer of the load came, in seconds since
	// the start (the Lag samples' clock).
	LoadEnd float64
	// CaughtUp is the time from the load's end until GET /v1/projections
	// showed nothing behind and every probed command (samples in flight,
	// each client's last) was fresh in every read model; Drained says
	// whether that happened within Config.DrainTimeout (if not, CaughtUp is
	// the time waited).
	CaughtUp time.Duration
	Drained  bool
}

// ProbeCounts says what became of the freshness samples.
type ProbeCounts struct {
	Sampled, Dropped, Failed, Reasked, Unresolved int64
	FirstFailure                                  string
}

// Run drives cfg.URL at cfg.Rate while it watches the pipeline: freshness
// probes, a WebSocket client, and the lag. After the load it waits for the
// pipeline to catch up, at most cfg.DrainTimeout.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := Result{Config: cfg}
	for _, rm := range readModels {
		res.ReadModels = append(res.ReadModels, rm.name)
	}

	clock := newWSClock()
	u, err := wsURL(cfg.URL)
	if err != nil {
		return res, err
	}
	feed := &wsFeed{url: u, clock: clock, log: cfg.Logger, authz: cfg.Authorization}
	conn, err := feed.subscribe(ctx, -1)
	if err != nil {
		return res, err
	}
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); feed.read(ctx, conn) }()

	start := time.Now()
	lag := newLagSampler(cfg.OpsURL, start)
	lag.authz = cfg.Authorization
	bg.Add(1)
	go func() { defer bg.Done(); lag.run(ctx, cfg.LagEvery) }()

	probeCtx, stopProbes := context.WithCancel(ctx)
	defer stopProbes()
	probes := newProber(cfg.URL, cfg.Probers)
	probes.authz = cfg.Authorization
	probes.start(probeCtx, cfg.Probers)

	// Per client: its 2xx count and the last one, probed after the load (see
	// Result.CaughtUp). Each entry is written by its client's goroutine only.
	type last struct {
		n                      int64
		token, order, customer []byte
		at                     time.Time
	}
	lasts := make([]last, cfg.Clients)
	var seen atomic.Int64 // measured 2xx commands, all clients: every FreshEvery-th is probed
	lc := cfg.load()
	lc.OnSuccess = func(s loadgen.Success) {
		id, _, pos, ok := loadgen.ParseToken(s.Token)
		if !ok {
			return
		}
		clock.answer(pos, s.At)
		l := &lasts[s.Client]
		l.n++
		l.token, l.order, l.customer, l.at = append(l.token[:0], s.Token...), append(l.order[:0], id...), append(l.customer[:0], s.Customer...), s.At
		if seen.Add(1)%int64(cfg.FreshEvery) == 0 {
			probes.offer(s.Token, id, s.Customer, s.At, false)
		}
	}
	cmds, err := loadgen.Run(ctx, lc)
	res.Commands = cmds
	ended := time.Now()
	lag.loadEnded(ended)
	res.LoadEnd = ended.Sub(start).Seconds()
	if err != nil {
		stopProbes()
		probes.close()
		cancel()
		bg.Wait()
		return res, err
	}

	for _, l := range lasts {
		if l.n > 0 {
			probes.offer(l.token, l.order, l.customer, l.at, true)
		}
	}
	// Caught up: GET /v1/projections shows nothing behind and every probed
	// command (the samples still in flight, and each client's last one) is
	// fresh in every read model. Then the WebSocket frames still due are
	// waited for, within the same deadline.
	deadline := time.NewTimer(cfg.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-deadline.C:
			break wait
		case <-tick.C:
		}
		zeroAt, zero := lag.caughtUp()
		idleAt, idle := probes.idle()
		if !res.Drained && zero && idle {
			res.Drained, res.CaughtUp = true, later(zeroAt, idleAt).Sub(ended)
		}
		if res.Drained && clock.waiting() == 0 {
			break
		}
	}
	if !res.Drained {
		res.CaughtUp = time.Since(ended)
	}
	stopProbes()
	probes.close()
	cancel()
	bg.Wait()

	res.Fresh, res.FreshBy, res.ProbeStart = probes.all, probes.by, probes.started
	res.Probes = ProbeCounts{Sampled: probes.sampled.Load(), Dropped: probes.dropped.Load(), Failed: probes.failed.Load(),
		Reasked: probes.reasked.Load(), Unresolved: probes.unresolved.Load()}
	res.Probes.FirstFailure, _ = probes.firstFailure.Load().(string)
	clock.mu.Lock()
	res.WS, res.WSFrames, res.WSMissing, res.WSEarly = clock.rec, clock.frames, int64(len(clock.answered)), clock.early
	clock.mu.Unlock()
	res.Reconnects = feed.reconnects
	lag.mu.Lock()
	res.Lag, res.LagErrors = lag.samples, lag.errors
	lag.mu.Unlock()
	return res, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
