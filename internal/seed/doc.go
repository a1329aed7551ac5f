// Package seed fills an event store with realistic orders for benchmarks:
// every order starts with OrderCreated and one to five ItemAdded, then lives
// a random life (placed, paid, shipped, delivered or cancelled, a paid order
// cancelled with its refund), for customers drawn from a skewed distribution,
// created over the last days. Events are encoded by order.Registry, so they
// decode and fold exactly like events written by the command side.
//
// Load writes them with COPY into the events table. The table's statement
// trigger takes the global append lock for each COPY, so there is one writer;
// generation runs ahead of it in a goroutine (a bounded queue of batches),
// so the database is never waiting for the generator.
package seed
