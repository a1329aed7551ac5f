// Package httpapi is the command side's HTTP port: POST and DELETE under
// /v1/orders (see Register and openapi/openapi.yaml).
//
// Every route runs one pipeline (handle): read the body (bounded), parse
// the command strictly, mint the order id of a creation, read If-Match and
// Idempotency-Key, execute it on a commands.Service, and answer with the
// outcome: 201 with Location for commands.Created, 200 for commands.Changed,
// ETag and Consistency-Token on both, Idempotent-Replayed on a replay.
// Nothing is written before the service answers, and every error becomes
// its problem+json in internal/problem. The reads of an order, its events
// included, are the query side's (package queries).
package httpapi
