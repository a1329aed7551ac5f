// Package audit is the log of admin actions: who did what to what, why and
// when (a projection rebuilt, a dead letter replayed or discarded, a
// customer's personal data erased).
//
// One table, audit_log, that no serving role may update or delete from
// (migrations/00001_audit_log.sql). Record writes one entry with whatever
// the caller passes: a transaction, so that the entry commits with the
// action or not at all, or a pool when the action is not transactional (a
// rebuild's swap happened before it is recorded). List reads it newest
// first, a bounded page at a time; `orderflow audit` prints it.
//
// Who: Entry.Actor is who the caller says acted — the subject of the
// bearer token behind an HTTP request, or the operating system user of an
// admin command (which authenticates with a database login, like
// `orderflow projections rebuild`). The table also stores the database
// login the entry was written with (session_user), which the server fills
// in: an admin command run with a personal database login is identified
// by the database, whatever its environment says.
//
// Entries carry identifiers (order ids, customer ids, projection names),
// never personal data: the log outlives an erasure.
package audit
