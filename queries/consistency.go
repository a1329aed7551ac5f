package queries

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/httpx"
)

// The <projection>_versions table behind each endpoint: the projector
// records there, in the same transaction as the read-model rows, the last
// version of each order it applied. Seeing version ≥ v there means the rows
// this endpoint reads include the token's write.
const (
	summaryVersions  = "order_summary_versions"
	customerVersions = "customer_stats_versions"
	salesVersions    = "sales_daily_versions"
	statusVersions   = "status_counts_versions"
)

// token is a parsed Consistency-Token: "<order_id>:<version>:<position>".
// The position is checked but not used: per-order versions are what every
// projection records, and they are exact where a global position would
// need one checkpoint per Kafka partition.
type token struct {
	orderID  ulid.ULID
	version  int64
	position int64
}

func badToken(detail string) error {
	return badRequest("invalid-consistency-token", "Invalid Consistency-Token", detail,
		[]httpx.FieldError{{Field: "Consistency-Token", Message: "must be <order_id>:<version>:<position> as a command returned it"}})
}

// parseToken returns nil when the request carries no token.
func parseToken(r *http.Request) (*token, error) {
	vs := r.Header.Values("Consistency-Token")
	switch {
	case len(vs) == 0:
		return nil, nil
	case len(vs) > 1:
		return nil, badToken("send one Consistency-Token header")
	}
	return parseTokenValue(vs[0])
}

// parseTokenValue parses one Consistency-Token header value.
func parseTokenValue(s string) (*token, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 3 {
		return nil, badToken("a token has three parts separated by colons")
	}
	id, err := ulid.ParseStrict(parts[0])
	if err != nil {
		return nil, badToken("the order id is not a ULID")
	}
	v, err1 := strconv.ParseInt(parts[1], 10, 64)
	p, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || v < 1 || p < 1 {
		return nil, badToken("version and position are integers ≥ 1")
	}
	return &token{orderID: id, version: v, position: p}, nil
}

// Consistency header values.
const (
	fresh = "fresh"
	stale = "stale"
)

// await waits until the projection whose versions table is table has applied
// tok's version of tok's order, for at most Options.ConsistencyWait, and sets
// the Consistency header to fresh or stale. Without a token it returns at
// once and sets nothing. Only a failing database or a cancelled request is
// an error; running out of time is an answer (stale), not an error. A token
// naming a version the event store does not have (an order that does not
// exist, a forged or mistyped token) answers stale at once: no projection
// will ever apply it, so waiting would only hold the request (and let
// anyone hold requests for the full wait at will). Stale rather than 404:
// the token only qualifies the answer, and for a list or a statistic the
// order it names is not what was asked for.
func (a *API) await(w http.ResponseWriter, r *http.Request, table string, tok *token) error {
	if tok == nil {
		return nil
	}
	ok, err := a.reached(r.Context(), table, tok)
	if err != nil {
		return err
	}
	if ok {
		w.Header().Set("Consistency", fresh)
	} else {
		w.Header().Set("Consistency", stale)
	}
	return nil
}

// reached polls rather than LISTENs: the projector does not NOTIFY, and a
// primary-key probe every ConsistencyPoll, only while a token waits, costs
// less than holding a listening connection per waiting request.
//
// Before the first wait it asks the store whether the version exists (one
// probe of the (stream_id, version) index, made only when the projection
// is behind): a token is handed out after its events committed, so a
// version the store lacks will never come.
func (a *API) reached(ctx context.Context, table string, tok *token) (bool, error) {
	deadline := time.Now().Add(a.opts.ConsistencyWait)
	id := pgtype.UUID{Bytes: tok.orderID, Valid: true}
	tick := time.NewTicker(a.opts.ConsistencyPoll)
	defer tick.Stop()
	for first := true; ; first = false {
		var v int64
		err := a.pool.QueryRow(ctx, `SELECT version FROM `+table+` WHERE stream_id = $1`, id).Scan(&v)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return false, err
		}
		if v >= tok.version {
			return true, nil
		}
		if first {
			stored, err := a.store.StreamVersion(ctx, orderStream(tok.orderID))
			if err != nil {
				return false, err
			}
			if stored < tok.version {
				return false, nil
			}
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick.C:
		}
	}
}
