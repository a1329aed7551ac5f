package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/internal/testenv"
)

// The broker process is one broker and its topics have one replica: a
// serve process configured for a cluster (the defaults with KAFKA_BROKERS,
// replication factor 3 and min.insync.replicas 2) says so in its log at
// start and in the detailed /readyz, and serves all the same.
func TestServeReportsATopicWithFewerReplicasThanConfigured(t *testing.T) {
	t.Parallel()
	broker := testenv.StartKafka(t)
	srv := testenv.New(t).Serve(t, "KAFKA_BROKERS="+broker.Addr, "ORDERFLOW_KAFKA_SIGNING_KEYS=",
		"ORDERFLOW_KAFKA_TRUSTED_TOPIC=true", "ORDERFLOW_KAFKA_PARTITIONS="+strconv.Itoa(testenv.Partitions))
	if log := readLog(t, srv.LogPath); !strings.Contains(log, "is under-replicated: replication factor 1, min.insync.replicas 1, configured 3 and 2") {
		srv.Fatalf(t, "the log does not report the under-replicated topics")
	}
	res, err := http.Get(srv.OpsURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, _ := io.ReadAll(res.Body)
	var ready struct {
		Status string
		Checks map[string]struct{ Status, Error string }
	}
	if err := json.Unmarshal(body, &ready); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	topics := ready.Checks["kafka-topics"]
	if res.StatusCode != http.StatusOK || ready.Status != "ready" || topics.Status != "degraded" || !strings.Contains(topics.Error, "under-replicated") {
		t.Fatalf("/readyz: %d %s; want 200, ready, kafka-topics degraded: under-replicated", res.StatusCode, body)
	}
	createAndRead(t, srv.URL, srv.URL)
}

func TestServeRefusesAReplicationItCannotHave(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"min.insync.replicas above the replication factor",
			[]string{"KAFKA_BROKERS=127.0.0.1:1", "ORDERFLOW_KAFKA_REPLICATION_FACTOR=2", "ORDERFLOW_KAFKA_MIN_INSYNC_REPLICAS=3"},
			"ORDERFLOW_KAFKA_MIN_INSYNC_REPLICAS=3 exceeds ORDERFLOW_KAFKA_REPLICATION_FACTOR=2"},
		{"a replication factor the embedded broker cannot hold",
			[]string{"KAFKA_BROKERS=", "ORDERFLOW_KAFKA_REPLICATION_FACTOR=3"},
			"ORDERFLOW_KAFKA_REPLICATION_FACTOR=3 needs a cluster"},
		{"a negative replication factor",
			[]string{"KAFKA_BROKERS=127.0.0.1:1", "ORDERFLOW_KAFKA_REPLICATION_FACTOR=-1"},
			"ORDERFLOW_KAFKA_REPLICATION_FACTOR must be at least 1"},
	}
	bin := testenv.Binary(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin, "serve")
			cmd.Env = append(cleanEnv(), append([]string{"DATABASE_URL=postgres://o@127.0.0.1:1/db", "ORDERFLOW_KAFKA_TRUSTED_TOPIC=true"}, c.env...)...)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Fatalf("serve: %v, output does not say %q:\n%s", err, c.want, out)
			}
		})
	}
}
