package faults

import (
	"context"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/internal/pgtest"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/projections"
)

// TestBackupRestoredByTheRunbookResumesWithNothingLostOrSkipped takes a
// pg_dump under load, keeps writing (those commands are lost with the
// restore, as the runbook says), then follows deploy/README.md's restore:
// every role stopped, pg_restore into a fresh database, DELETE FROM
// relay_checkpoints, the consumer groups reset to the end of the topic, the
// roles started on it, `projections rebuild all`. (Without the reset, the
// lost events the topic held past the consumers' offsets were dead-lettered
// on the restored database: this test found that step missing.)
// Everything acknowledged before the dump must be in the restored store;
// the relay must republish the whole restored store (nothing skipped) into
// the topic that still holds the lost events, and every read model must
// equal a fold of the restored store, with new commands on top.
func TestBackupRestoredByTheRunbookResumesWithNothingLostOrSkipped(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartPostgres(t)
	e := testenv.NewOn(t, cluster.URL)
	broker := testenv.StartKafka(t)
	srv := serve(t, e.DB.URL, broker, allRoles)
	l := startLoad(t, 4, 150, srv.URL)
	l.waitAcked(t, 200, "commands before the backup")

	backedUp, _, _ := l.snapshot() // committed before pg_dump takes its snapshot
	dump := filepath.Join(t.TempDir(), "orderflow.dump")
	run(t, cluster.Tool("pg_dump"), "--format=custom", "--file="+dump, e.DB.URL)
	l.waitAcked(t, 150, "commands after the backup (lost with the restore)")
	l.stop()
	if _, err := srv.Terminate(t); err != nil {
		t.Errorf("serve exited with %v after SIGTERM", err)
	}

	// The runbook: a fresh database, pg_restore, reset the relay.
	restored := restoreInto(t, cluster, dump)
	if _, err := restored.Owner.Exec(context.Background(), `DELETE FROM relay_checkpoints`); err != nil {
		t.Fatal(err)
	}
	resetGroupsToLatest(t, broker.Addr)
	srv2 := serve(t, restored.URL, broker, allRoles)
	l2 := startLoad(t, 4, 150, srv2.URL)
	l2.waitAcked(t, 150, "commands on the restored database")
	run(t, testenv.Binary(t), "projections", "rebuild", "all", "--database-url", restored.URL)
	l2.waitAcked(t, 50, "commands after the rebuild")
	l2.stop()
	converged := waitConverged(t, restored.Owner)
	if _, err := srv2.Terminate(t); err != nil {
		t.Errorf("serve on the restored database exited with %v after SIGTERM", err)
	}

	acks2, _, _ := l2.snapshot()
	evs := storeEvents(t, restored.Owner)
	lostBackedUp := checkAcks(t, evs, backedUp)
	lostAfter := checkAcks(t, evs, acks2)
	topic := checkTopic(t, broker.Addr, evs, true)
	differ := checkReadModels(t, restored, testenv.Binary(t))
	l.checkNoUnexpected(t)
	l2.checkNoUnexpected(t)
	all, _, _ := l.snapshot()
	t.Logf("injected: pg_dump under load after %d acknowledged commands, %d more acknowledged before every role stopped (lost by design); restored per the runbook, %d commands on the restored database; converged %s after its load stopped",
		len(backedUp), len(all)-len(backedUp), len(acks2), converged.Round(time.Millisecond))
	t.Logf("lost: of the %d commands acknowledged before the backup %d; of the %d after the restore %d; Kafka: %s (the events lost with the restore stay in the topic); read models vs a fold of the restored store: %d rows differ",
		len(backedUp), lostBackedUp, len(acks2), lostAfter, topic, differ)
}

// resetGroupsToLatest moves every projection's consumer group to the end of
// the events topic, as the runbook says (kafka-consumer-groups
// --reset-offsets --to-latest): what the topic holds beyond the consumers'
// offsets may be events the restore lost, and the relay republishes the
// restored store after them anyway.
func resetGroupsToLatest(t testing.TB, broker string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	client := &kafkago.Client{Addr: kafkago.TCP(broker)}
	reqs := make([]kafkago.OffsetRequest, testenv.Partitions)
	for p := range reqs {
		reqs[p] = kafkago.LastOffsetOf(p)
	}
	offs, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{testenv.Topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	var commits []kafkago.OffsetCommit
	for _, po := range offs.Topics[testenv.Topic] {
		commits = append(commits, kafkago.OffsetCommit{Partition: po.Partition, Offset: po.LastOffset})
	}
	for _, p := range projections.All() {
		res, err := client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: "orderflow.projection." + p.Name(),
			GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{testenv.Topic: commits}})
		if err != nil {
			t.Fatalf("reset %s: %v", p.Name(), err)
		}
		for _, parts := range res.Topics {
			for _, pr := range parts {
				if pr.Error != nil {
					t.Fatalf("reset %s partition %d: %v", p.Name(), pr.Partition, pr.Error)
				}
			}
		}
	}
}

// restoreInto creates a fresh database on cluster and pg_restores dump into
// it as the runbook says, returning pools to it (dropped with the cluster).
func restoreInto(t *testing.T, cluster *testenv.Postgres, dump string) *pgtest.DB {
	t.Helper()
	run(t, cluster.Tool("createdb"), "--host=127.0.0.1", "--port="+portOf(t, cluster.URL), "--username=postgres", "orderflow_restored")
	u, _ := url.Parse(cluster.URL)
	u.Path = "/orderflow_restored"
	run(t, cluster.Tool("pg_restore"), "--jobs=2", "--no-owner", "--role=postgres", "--dbname="+u.String(), dump)
	return pgtest.Open(t, u.String())
}

func portOf(t testing.TB, u string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Port()
}

// run runs a command and fails the test with its output if it fails.
func run(t testing.TB, path string, args ...string) {
	t.Helper()
	if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(path), args, err, out)
	}
}
