// Package export writes the event log for analysts' own tools: every event
// matching a filter, in global (commit) order, as NDJSON envelopes or CSV,
// in the current schema of each type, streaming with constant memory.
// `orderflow events export` is its command line.
package export
