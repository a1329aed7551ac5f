package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/orderflow/orderflow/internal/benchstat"
)

// Config configures Run. Zero values of optional fields mean the defaults
// written next to them.
type Config struct {
	// URL is the running orderflow: http://host:port. Required.
	URL string
	// Clients is how many clients run, each one goroutine with one
	// keep-alive connection and one order at a time. Default 64.
	Clients int
	// Rate, when positive, makes the run open loop: Rate commands per second
	// in total, due on a Schedule, each measured from its due time. Zero is
	// closed loop: each client sends its next command as soon as the last
	// one is answered, measured from the send.
	Rate float64
	// Keyed sends an Idempotency-Key, unique per command, with every command.
	Keyed bool
	// Warmup runs before Duration and is not measured. Duration is required.
	Warmup, Duration time.Duration
	// MaxBehind ends an open-loop run early when a client finds its next
	// slot due more than this long ago: the server is not keeping up, and
	// the run would otherwise outlast its duration by as much. Default 5s.
	MaxBehind time.Duration
	// Customers is how many customers the orders are spread over. Default
	// 10 000.
	Customers int
	// OnSuccess, when set, is called by a client's goroutine after each
	// measured 2xx. It must return quickly; its argument's slices are valid
	// only during the call.
	OnSuccess func(Success)
	// Seed makes the choice of customers reproducible. Default 1.
	Seed uint64
	// Authorization, when set, gives the Authorization header value of the
	// commands of one customer's orders: a token whose subject is the
	// customer (it creates and places its orders) that may also pay, ship
	// and deliver them (staff). Called once per order; the slice is kept.
	Authorization func(customer []byte) []byte
}

// Success is a command answered 2xx.
type Success struct {
	Client   int
	Step     Step
	Token    []byte // the Consistency-Token
	Customer []byte
	At       time.Time // when the answer had been read
}

func (c *Config) setDefaults() {
	if c.Clients == 0 {
		c.Clients = 64
	}
	if c.MaxBehind == 0 {
		c.MaxBehind = 5 * time.Second
	}
	if c.Customers == 0 {
		c.Customers = 10000
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Validate reports values that cannot work (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || u.Scheme != "http" || u.Host == "" {
		errs = append(errs, fmt.Errorf("URL %q: want http://host:port", c.URL))
	}
	if c.Clients < 1 {
		errs = append(errs, fmt.Errorf("clients %d: want at least 1", c.Clients))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %g: want 0 (closed loop) or more", c.Rate))
	}
	if c.Duration <= 0 || c.Warmup < 0 || c.MaxBehind < 0 {
		errs = append(errs, errors.New("duration must be positive, warmup and max-behind not negative"))
	}
	if c.Customers < 1 {
		errs = append(errs, fmt.Errorf("customers %d: want at least 1", c.Customers))
	}
	return errors.Join(errs...)
}

// Result is what a run measured.
type Result struct {
	Config Config
	// ByStep is each command's latency, 2xx or not (open loop: from its due
	// time).
	ByStep [Steps]*benchstat.Recorder
	// Unsent holds, in an overloaded open-loop run, the slots that were due
	// but never sent, at the latency they had reached when the run stopped
	// (lower bounds).
	Unsent *benchstat.Recorder
	OK     int64
	// Errors counts failed commands by status; 0 means no answer (the
	// connection failed). FirstError is the first answer of each status.
	Errors     map[int]int64
	FirstError map[int]string
	// Elapsed is the measured window, up to the last answer.
	Elapsed time.Duration
	// Orders is how many lives were completed (delivered) in the window.
	Orders int64
	// Dials is how many connections the clients opened (Clients if none
	// broke).
	Dials int
	// Open loop: Slots due in the window, the latest a command was sent
	// after its due time, and whether the run stopped early (MaxBehind).
	Slots      int64
	Behind     time.Duration
	Overloaded bool
}

// Latency is every measured command's latency, unsent slots included.
func (r Result) Latency() *benchstat.Recorder {
	all := benchstat.New()
	for _, h := range r.ByStep {
		all.Merge(h)
	}
	all.Merge(r.Unsent)
	return all
}

// PerSecond is 2xx answers per second of the measured window.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Failed is the number of commands not answered 2xx (unsent ones included).
func (r Result) Failed() int64 {
	n := r.Unsent.Count()
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// Run drives cfg.URL with the order lifecycle until cfg.Warmup plus
// cfg.Duration have passed (or ctx ends), then waits for the answers in
// flight.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	u, _ := url.Parse(cfg.URL)
	res := Result{Config: cfg, Unsent: benchstat.New(), Errors: map[int]int64{}, FirstError: map[int]string{}}
	for i := range res.ByStep {
		res.ByStep[i] = benchstat.New()
	}
	start := time.Now()
	r := &run{cfg: cfg, res: &res, measureFrom: start.Add(cfg.Warmup), end: start.Add(cfg.Warmup + cfg.Duration),
		runID: strconv.FormatInt(start.UnixNano(), 36)}
	if cfg.Rate > 0 {
		r.sched = NewSchedule(start, cfg.Rate, cfg.Warmup+cfg.Duration)
		res.Slots = r.sched.Slots() - NewSchedule(start, cfg.Rate, cfg.Warmup).Slots()
	}
	var wg sync.WaitGroup
	clients := make([]*client, cfg.Clients)
	for i := range clients {
		clients[i] = newClient(r, i, u.Host)
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[i].loop(ctx)
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(r.measureFrom)
	for _, c := range clients {
		_ = c.conn.Close()
		res.Dials += c.conn.Dials()
		res.OK += c.ok
		res.Orders += c.orders
		res.Behind = max(res.Behind, c.behind)
		for s, n := range c.errors {
			res.Errors[s] += n
			if _, ok := res.FirstError[s]; !ok {
				res.FirstError[s] = c.first[s]
			}
		}
	}
	res.Overloaded = r.stopped
	if res.OK == 0 && len(res.Errors) > 0 {
		return res, fmt.Errorf("no command succeeded; first errors: %v", res.FirstError)
	}
	return res, ctx.Err()
}

// run is the state the clients of one Run share.
type run struct {
	cfg              Config
	res              *Result
	sched            *Schedule // nil in closed loop
	measureFrom, end time.Time
	runID            string // makes idempotency keys unique across runs on one database

	mu      sync.Mutex
	stopped bool
}

// overload ends an open-loop run whose client found slot i, due at due,
// too late at now: that slot and every later one due by now are recorded
// as unsent, at the latency they had reached.
func (r *run) overload(i int64, due, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recordUnsent(due, now)
	if r.stopped {
		return
	}
	r.stopped = true
	for j := r.sched.Stop(); j < r.sched.Slots(); j++ {
		d := r.sched.At(j)
		if !d.Before(now) {
			break
		}
		r.recordUnsent(d, now)
	}
}

func (r *run) recordUnsent(due, now time.Time) {
	if !due.Before(r.measureFrom) {
		r.res.Unsent.Record(now.Sub(due))
	}
}

// client is one goroutine's connection, order and counters.
type client struct {
	r        *run
	id       int
	conn     *Conn
	req      Request
	order    Order
	ended    bool
	rng      *rand.Rand
	customer []byte
	seq      int64
	timer    *time.Timer

	ok, orders int64
	behind     time.Duration
	errors     map[int]int64
	first      map[int]string
}

func newClient(r *run, id int, addr string) *client {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &client{r: r, id: id, conn: NewConn(addr), ended: true, timer: t,
		rng:    rand.New(rand.NewPCG(r.cfg.Seed, uint64(id))), // #nosec G404 G115 -- a reproducible load (not a secret); id is a client index ≥ 0
		errors: map[int]int64{}, first: map[int]string{}}
}

func (c *client) loop(ctx context.Context) {
	cfg := c.r.cfg
	for ctx.Err() == nil {
		var due time.Time
		if s := c.r.sched; s != nil {
			i, d, ok := s.Take()
			if !ok {
				return
			}
			due = d
			if wait := time.Until(due); wait > 0 {
				c.timer.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-c.timer.C:
				}
			} else if -wait > cfg.MaxBehind {
				c.r.overload(i, due, time.Now())
				return
			}
		} else if due = time.Now(); !due.Before(c.r.end) {
			return
		}
		c.send(due)
	}
}

// send issues the order's next command, due at due, and records it.
func (c *client) send(due time.Time) {
	if c.ended {
		c.seq++
		c.customer = strconv.AppendInt(append(c.customer[:0], "bench-c"...), int64(c.rng.IntN(c.r.cfg.Customers)), 10)
		c.order.Start(c.customer, c.seq)
		c.ended = false
		if c.r.cfg.Authorization != nil {
			c.req.Authorization = c.r.cfg.Authorization(c.customer)
		}
	}
	step := c.order.Next
	c.order.Build(&c.req)
	if c.r.cfg.Keyed {
		k := append(c.req.IdempotencyKey[:0], "bench-"...)
		k = append(append(k, c.r.runID...), '-')
		k = append(strconv.AppendInt(k, int64(c.id), 10), '-')
		c.req.IdempotencyKey = strconv.AppendInt(append(strconv.AppendInt(k, c.seq, 10), '-'), int64(step), 10)
	}
	sent := time.Now()
	c.behind = max(c.behind, sent.Sub(due))
	status, err := c.conn.Do(&c.req)
	done := time.Now()
	c.ended = c.order.Advance(status, c.conn.Token())
	if due.Before(c.r.measureFrom) {
		return
	}
	c.r.res.ByStep[step].Record(done.Sub(due))
	if status >= 200 && status <= 299 {
		c.ok++
		if c.ended {
			c.orders++
		}
		if f := c.r.cfg.OnSuccess; f != nil {
			f(Success{Client: c.id, Step: step, Token: c.conn.Token(), Customer: c.order.Customer, At: done})
		}
		return
	}
	if c.errors[status]++; c.errors[status] == 1 {
		if err != nil {
			c.first[status] = err.Error()
		} else {
			c.first[status] = string(c.conn.Body())
		}
	}
}
