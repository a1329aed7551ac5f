// Package queries serves the read models over HTTP under /v1.
//
// Routes (see Register and openapi/openapi.yaml):
//
//	GET /v1/orders/{id}           one order with its lines (ETag, If-None-Match, ?as_of)
//	GET /v1/orders                keyset-paginated list with filters and sorts
//	GET /v1/orders/{id}/history   the order's events, upcast to the current schema
//	GET /v1/orders/{id}/events    the order's events as stored
//	GET /v1/customers/{id}/stats  counts by status and money per currency
//	GET /v1/stats/sales           per day and currency, ?from&to&currency
//	GET /v1/stats/status          orders by current status
//
// Read models are eventually consistent: the projector applies an event some
// milliseconds after the command committed it. A client that needs to read
// its own write sends the Consistency-Token a command returned; the request
// then waits, bounded by Options.ConsistencyWait, until the projection behind
// the endpoint has applied that version of that order, and says in the
// Consistency header whether it got there ("fresh") or answered with what it
// had ("stale"). Endpoints that read the event store itself (?as_of, history, events)
// are always fresh: a token is only handed out after its events committed.
//
// Every query parameter is checked strictly: an unknown or repeated
// parameter, or a bad value, is a 400 problem naming the parameter in
// errors[].field, so a typo never silently widens a query. Errors become HTTP
// statuses in internal/problem, the one mapping every HTTP port shares.
package queries
