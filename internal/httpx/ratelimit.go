package httpx

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Class is a group of routes that share one set of limits.
type Class string

// The route classes. Mux puts GET and HEAD routes in ClassQueries and every
// other method in ClassCommands; the WebSocket upgrade is ClassStream.
const (
	ClassCommands Class = "commands"
	ClassQueries  Class = "queries"
	ClassStream   Class = "stream"
)

// Rate is a token bucket per key: Burst requests at once, refilled at
// PerSecond. A zero PerSecond turns the class's limit off.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimitConfig configures a RateLimiter.
type RateLimitConfig struct {
	// Rates per class; a class that is missing is not limited.
	Rates map[Class]Rate
	// Keys bounds how many keys each class tracks (an LRU: the least
	// recently seen key is forgotten first, and comes back with a full
	// bucket). Memory is about 200 bytes per key. Zero means
	// DefaultRateLimitKeys.
	Keys int
	// Key says whom a request counts against. Nil means a Clients that
	// trusts no proxy (Clients.Key).
	Key KeyFunc
	// Registerer receives http_rate_limited_total{class}. Nil means a
	// private registry.
	Registerer prometheus.Registerer
}

// DefaultRateLimitKeys is RateLimitConfig.Keys' default: 10 000 keys, about
// 2 MB per class.
const DefaultRateLimitKeys = 10_000

// Validate reports rates that cannot work.
func (c RateLimitConfig) Validate() error {
	var errs []error
	for class, r := range c.Rates {
		if r.PerSecond < 0 || math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0) {
			errs = append(errs, fmt.Errorf("rate limit %s: %v per second is not a rate", class, r.PerSecond))
		}
		if r.PerSecond > 0 && r.Burst < 1 {
			errs = append(errs, fmt.Errorf("rate limit %s: burst %d must be at least 1", class, r.Burst))
		}
	}
	if c.Keys < 0 {
		errs = append(errs, fmt.Errorf("rate limit keys %d must not be negative", c.Keys))
	}
	return errors.Join(errs...)
}

// RateLimiter limits requests per key and route class with token buckets
// (golang.org/x/time/rate) kept in a bounded LRU per class
// (hashicorp/golang-lru/v2). A request over its limit gets 429
// rate-limited with Retry-After, the seconds until its bucket has a token
// again.
type RateLimiter struct {
	key      KeyFunc
	classes  map[Class]*buckets
	rejected *prometheus.CounterVec
}

type buckets struct {
	rate Rate
	lru  *lru.Cache[string, *rate.Limiter]
}

// NewRateLimiter returns a limiter; it fails on a configuration that fails
// Validate or metrics that cannot be registered.
func NewRateLimiter(cfg RateLimitConfig) (*RateLimiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Keys == 0 {
		cfg.Keys = DefaultRateLimitKeys
	}
	if cfg.Key == nil {
		cfg.Key = (&Clients{}).Key
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	l := &RateLimiter{key: cfg.Key, classes: map[Class]*buckets{},
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_rate_limited_total", Help: "Requests answered 429 by the rate limiter, by route class.",
		}, []string{"class"})}
	if err := cfg.Registerer.Register(l.rejected); err != nil {
		return nil, err
	}
	for class, r := range cfg.Rates {
		if r.PerSecond == 0 {
			continue
		}
		c, err := lru.New[string, *rate.Limiter](cfg.Keys)
		if err != nil {
			return nil, err
		}
		l.classes[class] = &buckets{rate: r, lru: c}
		l.rejected.WithLabelValues(string(class))
	}
	return l, nil
}

// Limit wraps next with class's limit; a class without one returns next.
func (l *RateLimiter) Limit(class Class, next http.Handler) http.Handler {
	b := l.classes[class]
	if b == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := b.take(l.key(r)); !ok {
			l.rejected.WithLabelValues(string(class)).Inc()
			writeRateLimited(w, r, class, b.rate, wait)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// take takes a token from key's bucket, or says how long until it has one.
func (b *buckets) take(key string) (time.Duration, bool) {
	lim, ok := b.lru.Get(key)
	if !ok {
		lim = rate.NewLimiter(rate.Limit(b.rate.PerSecond), b.rate.Burst)
		if prev, found, _ := b.lru.PeekOrAdd(key, lim); found { // another request added it meanwhile
			lim = prev
		}
	}
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now) // a refused request costs no token
		return d, false
	}
	return 0, true
}

func writeRateLimited(w http.ResponseWriter, r *http.Request, class Class, rt Rate, wait time.Duration) {
	secs := max(int64(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	WriteProblem(w, r, NewProblem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		fmt.Sprintf("%s: at most %d requests at once and %g per second per client; retry after %d s",
			class, rt.Burst, rt.PerSecond, secs)))
}

// Mux returns a registrar that mounts handlers on mux behind their class's
// limit: GET and HEAD patterns are queries, every other method a command.
// httpapi.API (commands) and queries.API register through it unchanged.
func (l *RateLimiter) Mux(mux *http.ServeMux) *LimitedMux { return &LimitedMux{mux: mux, l: l} }

// LimitedMux is what RateLimiter.Mux returns.
type LimitedMux struct {
	mux *http.ServeMux
	l   *RateLimiter
}

// HandleFunc registers h for pattern behind its class's limit.
func (m *LimitedMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.mux.Handle(pattern, m.l.Limit(ClassOf(pattern), http.HandlerFunc(h)))
}

// ClassOf is the class of a ServeMux pattern by its method.
func ClassOf(pattern string) Class {
	method, _, found := strings.Cut(pattern, " ")
	if !found || method == http.MethodGet || method == http.MethodHead {
		return ClassQueries
	}
	return ClassCommands
}
