// Package ops serves the operator's view of the pipeline over HTTP:
// GET /v1/projections, each read model's position, lag and state, and the
// relay's leadership, Kafka reachability and lag as this node sees them.
package ops

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/httpx"
	"github.com/orderflow/orderflow/internal/problem"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/relay"
)

// RelayView is the relay as reported by this node; nil when the node does
// not run the relay role.
type RelayView struct {
	Leader     bool    `json:"leader"`
	KafkaUp    bool    `json:"kafka_up"`
	Checkpoint int64   `json:"checkpoint"`
	Head       int64   `json:"head"`
	LagEvents  int64   `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
	LastError  string  `json:"last_error,omitempty"`
}

// ProjectionsHandler serves GET /v1/projections. rl may be nil; log (nil:
// none) gets the errors that are the server's.
func ProjectionsHandler(pool *pgxpool.Pool, store *eventstore.Store, rl *relay.Relay, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sts, err := projections.Statuses(r.Context(), pool, store, projections.All(), time.Now())
		if err != nil {
			problem.Write(w, r, log, err)
			return
		}
		out := struct {
			Projections []projections.Status `json:"projections"`
			Relay       *RelayView           `json:"relay,omitempty"`
		}{Projections: sts}
		if rl != nil {
			s := rl.Status()
			out.Relay = &RelayView{Leader: s.Leader, KafkaUp: s.KafkaUp, Checkpoint: s.Checkpoint, Head: s.Head,
				LagEvents: s.LagEvents, LagSeconds: s.LagSeconds, LastError: s.LastError}
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, out)
	}
}
