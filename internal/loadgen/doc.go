// Package loadgen drives a running orderflow over HTTP the way a shop does:
// each client walks orders through their whole life (create with two items,
// add an item, place, pay, ship, deliver), one command after the other,
// and starts a new order when one is delivered or a command fails.
//
// Closed loop (Config.Rate 0): every client sends its next command as soon
// as the last one is answered; the figure is commands per second. Open loop
// (Config.Rate > 0): commands are due on a fixed Schedule whatever the
// server does, and each is measured from its due time, so a stall is
// charged to every command that should have gone out meanwhile (no
// coordinated omission). Clients bound the commands in flight; a run whose
// clients all fall more than Config.MaxBehind behind stops early and
// reports the unsent commands.
//
// The generator shares its machine with the server, so it is kept cheap:
// one goroutine and one keep-alive connection per client, and a small
// HTTP/1.1 client (Conn) that writes requests from buffers each client
// reuses and reads responses in place. A steady run allocates nothing per
// command, where net/http's Transport costs two goroutines per connection
// and a few dozen allocations per request. Latencies go to HDR histograms
// (internal/benchstat), one per command step.
package loadgen
