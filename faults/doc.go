// Package faults proves invariant 1 of the brief — nothing acknowledged is
// lost — against the faults an operator meets, on real processes: the built
// binary (`orderflow serve`, all roles in one process or split), the broker
// in a process of its own (`orderflow kafka`), and PostgreSQL, shared or a
// throwaway cluster the test starts and stops itself.
//
// Every test runs a small load generator (order lifecycles over HTTP from a
// few goroutines, every 2xx recorded, every failed command retried with its
// Idempotency-Key), injects its fault, lets the system recover by itself,
// and then checks, printing what it counted:
//
//   - every acknowledged command's event is in the store at the position its
//     answer gave, and every stream's versions are consecutive;
//   - every event of the store is in Kafka at least once, with each order's
//     versions in order in its partition (duplicates are counted: delivery
//     is at least once);
//   - every read model equals a fold of the store into empty read models
//     (`orderflow projections rebuild all`), row by row: nothing lost and
//     nothing applied twice;
//   - WebSocket clients (where a hub runs) saw strictly increasing
//     positions and every committed position once, across reconnects;
//   - no answer that no fault explains (a 4xx, a 500).
//
// The faults, one file each: kill -9 of serve (kill_test.go), the roles
// split and each process killed in turn (roles_test.go), the broker stopped
// (broker_test.go), PostgreSQL restarted (postgres_test.go), SIGTERM
// (shutdown_test.go), backup and restore (backup_test.go).
//
// No test asserts a duration: waits synchronise on conditions (a count of
// 2xx, a checkpoint, an exit) under testenv.Patience, and recovery times are
// printed, not checked. Run them with
//
//	go test -race -count=1 -v ./faults/
//
// (DATABASE_URL set, as `make test` does.)
package faults
