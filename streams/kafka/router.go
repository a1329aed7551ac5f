package kafka

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultDLQTopic is DefaultTopic's dead-letter topic.
const DefaultDLQTopic = DefaultTopic + dlqSuffix

// CorrelationIDKey is the metadata field carrying the correlation id
// (watermill's own key, so middleware.CorrelationID interoperates).
const CorrelationIDKey = middleware.CorrelationIDMetadataKey

// RouterOptions configures NewRouter and Middleware. Zero values mean the
// documented defaults.
type RouterOptions struct {
	// DLQPublisher publishes poisoned messages. Required.
	DLQPublisher message.Publisher
	// DLQTopic defaults to DefaultDLQTopic.
	DLQTopic string
	// Retry: a failing handler runs at most 1+MaxRetries times, waiting
	// InitialInterval, then ×2 each time up to MaxInterval, before the
	// message goes to the DLQ. Defaults 5, 100ms, 10s.
	MaxRetries      int
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// Transient, if set, tells errors that say a dependency of the handler
	// is unavailable (the database restarting) from errors that say the
	// message cannot be processed. A message failing with a transient error
	// is never dead-lettered: after its retries it is nacked and delivered
	// again, until the dependency is back, so an outage longer than the
	// retry budget delays messages instead of poisoning them. A handler
	// stopped by shutdown (context cancelled) is treated the same way.
	Transient func(error) bool
	// Permanent, if set, tells errors that retrying cannot fix (a value a
	// column's constraint refuses is refused again a second later) from the
	// rest: such a message skips its retries and goes to the DLQ at once,
	// instead of holding up its partition for the whole retry budget.
	Permanent func(error) bool
	// CloseTimeout bounds how long Router.Close waits for handlers.
	// Default 30s.
	CloseTimeout time.Duration
	// Registerer, if set, receives the consumer metrics. Never the global
	// registry by default.
	Registerer prometheus.Registerer
}

func (o *RouterOptions) setDefaults() {
	if o.DLQTopic == "" {
		o.DLQTopic = DefaultDLQTopic
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 5
	}
	if o.InitialInterval == 0 {
		o.InitialInterval = 100 * time.Millisecond
	}
	if o.MaxInterval == 0 {
		o.MaxInterval = 10 * time.Second
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = 30 * time.Second
	}
}

// NewRouter returns a watermill Router with Middleware installed; add
// handlers and Run it.
func NewRouter(logger *slog.Logger, opts RouterOptions) (*message.Router, error) {
	opts.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: opts.CloseTimeout}, watermill.NewSlogLogger(logger))
	if err != nil {
		return nil, err
	}
	mws, err := Middleware(logger, opts)
	if err != nil {
		return nil, err
	}
	r.AddMiddleware(mws...)
	return r, nil
}

// Middleware is the project's standard handler stack, outermost first:
//
//	correlation → poison queue → metrics → retry → recoverer → handler
//
// Correlation runs first so every later log line carries the correlation
// id. The recoverer is innermost so a panic becomes an error that is
// retried and finally dead-lettered like any other. The poison queue acks
// the message after publishing it to the DLQ (with the error in metadata
// "reason_poisoned"), so one bad event does not block its partition; if
// the DLQ publish fails, the message is nacked and redelivered. Transient
// errors (RouterOptions.Transient) and cancellations skip the DLQ: the
// message is nacked and redelivered (it holds up its partition, which is
// the point: the event is fine, its dependency is not).
func Middleware(logger *slog.Logger, opts RouterOptions) ([]message.HandlerMiddleware, error) {
	opts.setDefaults()
	if opts.DLQPublisher == nil {
		return nil, errors.New("kafka router: DLQPublisher is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	poison, err := middleware.PoisonQueueWithFilter(opts.DLQPublisher, opts.DLQTopic, func(err error) bool {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		return opts.Transient == nil || !opts.Transient(err)
	})
	if err != nil {
		return nil, err
	}
	m, err := newConsumerMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{
		MaxRetries:      opts.MaxRetries,
		InitialInterval: opts.InitialInterval,
		MaxInterval:     opts.MaxInterval,
		Multiplier:      2,
		Logger:          watermill.NewSlogLogger(logger),
	}
	if opts.Permanent != nil {
		retry.ShouldRetry = func(p middleware.RetryParams) bool { return !opts.Permanent(p.Err) }
	}
	return []message.HandlerMiddleware{
		Correlation(logger),
		poison,
		m.middleware,
		retry.Middleware,
		middleware.Recoverer,
	}, nil
}

// Correlation puts a logger carrying the message's correlation id (and
// where it came from in Kafka) into the message context; handlers get it
// with LoggerFromContext.
func Correlation(base *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			l := base.With(
				"correlation_id", msg.Metadata.Get(CorrelationIDKey),
				"message_uuid", msg.UUID,
			)
			if p := msg.Metadata.Get(MetadataPartition); p != "" {
				l = l.With("kafka_partition", p, "kafka_offset", msg.Metadata.Get(MetadataOffset))
			}
			msg.SetContext(ContextWithLogger(msg.Context(), l))
			return h(msg)
		}
	}
}

type loggerKey struct{}

// ContextWithLogger returns ctx carrying l.
func ContextWithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFromContext returns the logger put in ctx by Correlation, or
// fallback (or a discarding logger if fallback is nil).
func LoggerFromContext(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	if fallback != nil {
		return fallback
	}
	return slog.New(slog.DiscardHandler)
}

// consumerMetrics counts handler outcomes after retries. Labels are the
// handler name only: never per-order.
type consumerMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newConsumerMetrics(reg prometheus.Registerer) (*consumerMetrics, error) {
	m := &consumerMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orderflow_consumer_messages_total",
			Help: "Messages handled, by handler and outcome (ok, failed = sent to the DLQ or nacked).",
		}, []string{"handler", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orderflow_consumer_handle_seconds",
			Help:    "Time to handle one message, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"handler"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.handled, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *consumerMetrics) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		start := time.Now()
		name := message.HandlerNameFromCtx(msg.Context())
		out, err := h(msg)
		outcome := "ok"
		if err != nil {
			outcome = "failed"
		}
		m.handled.WithLabelValues(name, outcome).Inc()
		m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		return out, err
	}
}
