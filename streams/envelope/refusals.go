package envelope

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// RejectedMetric counts the messages consumers refused, by consumer and
// reason. The labels are bounded: consumer is a fixed name per consumer
// (the hub, a projection's group), reason one of the Reason constants.
const RejectedMetric = "kafka_rejected_messages_total"

// LogInterval is the least time between two log lines of one consumer's
// refusals: whoever can produce to the topic must not be able to flood
// the logs as well. Every refusal is counted; the line says how many
// there were since the last one.
const LogInterval = 10 * time.Second

// Refusals records one consumer's refused messages: counted in
// RejectedMetric, logged at most once per LogInterval. Safe for concurrent
// use.
type Refusals struct {
	consumer string
	counter  *prometheus.CounterVec
	log      *slog.Logger

	mu         sync.Mutex
	sometimes  rate.Sometimes
	unreported int // refused since the last log line
}

// NewRefusals registers RejectedMetric with reg (sharing it when another
// consumer of the process registered it first) and creates the series of
// consumer, at zero, for every Reason a Verifier gives and for extra (a
// consumer's own reasons), so that a rate over them is defined before the
// first refusal. reg and log may be nil.
func NewRefusals(reg prometheus.Registerer, consumer string, log *slog.Logger, extra ...Reason) (*Refusals, error) {
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: RejectedMetric,
		Help: "Kafka messages a consumer refused to apply or fan out (unsigned, forged, signed with a key not accepted, or otherwise unbelievable), by consumer and reason.",
	}, []string{"consumer", "reason"})
	if reg != nil {
		if err := reg.Register(cv); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, err
			}
			cv = existing
		}
	}
	for _, r := range append(verifierReasons[:len(verifierReasons):len(verifierReasons)], extra...) {
		cv.WithLabelValues(consumer, string(r))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Refusals{
		consumer: consumer, counter: cv, log: log,
		sometimes: rate.Sometimes{First: 1, Interval: LogInterval},
	}, nil
}

// Add records that a message was refused with err (a *RefusedError; any
// other error counts as ReasonMalformed). attrs say which message (its
// partition and offset, never its content).
func (r *Refusals) Add(err error, attrs ...any) {
	reason, ok := ReasonOf(err)
	if !ok {
		reason = ReasonMalformed
	}
	r.counter.WithLabelValues(r.consumer, string(reason)).Inc()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreported++
	r.sometimes.Do(func() {
		r.log.Warn("refused a Kafka message: it is never applied or fanned out",
			append([]any{"consumer", r.consumer, "reason", string(reason), "err", err,
				"refused_since_last_report", r.unreported}, attrs...)...)
		r.unreported = 0
	})
}
