package relay_test

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
	"github.com/orderflow/orderflow/streams/relay"
)

const (
	helperDBEnv     = "RELAY_HELPER_DATABASE_URL"
	helperBrokerEnv = "RELAY_HELPER_BROKERS"
	helperKeysEnv   = "RELAY_HELPER_SIGNING_KEYS" // the parent test's key: the helper runs as a test of another name
)

// TestHelperRelayProcess is not a test: TestRelayKilledWithSIGKILL runs the
// test binary again with only this function selected and the two variables
// set, and it then runs a relay until it is killed. Run directly (no
// variables), it has nothing to do and passes.
func TestHelperRelayProcess(t *testing.T) {
	url, brokers := os.Getenv(helperDBEnv), os.Getenv(helperBrokerEnv)
	if url == "" || brokers == "" {
		return
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	login := pg.Login{Role: pg.Relay, URL: url, SetRole: true}
	pool, err := pg.Connect(ctx, login, pg.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	keys, err := envelope.ParseKeys(os.Getenv(helperKeysEnv))
	if err != nil || len(keys) != 1 {
		t.Fatalf("%s: %v", helperKeysEnv, err)
	}
	signer, err := envelope.NewSigner(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Config{
		Login: login, Pool: pool, Signer: signer,
		Kafka: kafka.Config{Brokers: strings.Split(brokers, ",")},
		Topic: testTopic, Partitions: testPartitions,
		PollInterval: 200 * time.Millisecond, FollowerRetry: 200 * time.Millisecond,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		// Small batches: more checkpoints, so a kill lands between them.
		BatchSize: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func startHelper(t *testing.T, e *env) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRelayProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDBEnv+"="+e.db.URL, helperBrokerEnv+"="+strings.Join(e.brokers, ","),
		helperKeysEnv+"="+envelope.EncodeKeys(testenv.EventKey(t)))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func TestRelayKilledWithSIGKILLMidStreamMissesNothing(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	e := newEnv(t, brokers)

	done := make(chan []eventstore.Stream, 1)
	go func() { done <- appendConcurrently(t, e.store, 50, 60, 20*time.Millisecond) }()

	kills := 0
	for range 2 {
		cmd := startHelper(t, e)
		// Kill it once it has checkpointed something new, mid-stream.
		from := e.checkpoint(t)
		deadline := time.Now().Add(time.Minute)
		for e.checkpoint(t) <= from {
			if time.Now().After(deadline) {
				t.Fatal("helper relay made no progress")
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++
	}
	cmd := startHelper(t, e)
	streams := <-done
	e.waitCaughtUp(t, time.Minute)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()

	dups := consumeAll(t, brokers, testTopic).check(t, streams, 60, false)
	t.Logf("relay process SIGKILLed %d times mid-stream: 3000 events, all present, %d duplicates", kills, dups)
}
