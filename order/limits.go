package order

// MaxEvents is the most events one order's stream may hold. The decisions
// (package commands) refuse a command that would take a stream past it, so
// every load, fold and as-of read of an order reads at most MaxEvents
// events: no read of one order is unbounded, and none silently stops short
// of the stream's end.
//
// An order's legitimate life is far shorter: at most 100 lines, each added
// and removed a few times, then four lifecycle events. A stream that exceeds
// the cap (one written before it existed) is refused as a whole rather than
// folded in part.
const MaxEvents = 1000
