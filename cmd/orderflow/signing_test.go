package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/oklog/ulid/v2"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/testenv"
	"github.com/orderflow/orderflow/order"
	"github.com/orderflow/orderflow/projections"
	"github.com/orderflow/orderflow/streams/envelope"
	"github.com/orderflow/orderflow/streams/kafka"
)

// keyFile writes keys to a file of the test's, as an operator would.
func keyFile(t *testing.T, keys ...envelope.Key) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# orderflow signing keys\n")
	for _, k := range keys {
		b.WriteString(envelope.EncodeKeys(k) + "\n")
	}
	p := filepath.Join(t.TempDir(), "signing-keys")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t *testing.T, id string) envelope.Key {
	t.Helper()
	k, err := envelope.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServeSigningConfiguration(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	one, two := keyFile(t, k1), keyFile(t, k1, k2)
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("k1="+base64.StdEncoding.EncodeToString([]byte("0123456789"))), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--database-url=postgres://orderflow@127.0.0.1:5432/orderflow",
		"--auth-jwks-url=https://idp.example.com/.well-known/jwks.json", "--auth-issuer=https://idp.example.com/", "--auth-audience=orderflow"}
	brokers := "--kafka-brokers=kafka-0:9092"
	bad := map[string][]string{
		"a Kafka cluster without signing keys":               {brokers},
		"a signing key file that does not exist":             {"--kafka-signing-keys-file=/nonexistent"},
		"a signing key too short to sign with":               {"--kafka-signing-keys-file=" + short},
		"two keys and no word on which the relay signs with": {brokers, "--kafka-signing-keys-file=" + two},
		"a signing key id that is not among the keys":        {"--kafka-signing-keys-file=" + one, "--kafka-signing-key-id=k9"},
	}
	for name, args := range bad {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := parseServe(append(base, args...)); err == nil {
				t.Errorf("%v accepted", args)
			}
		})
	}
	good := map[string][]string{
		"the embedded broker without keys (the process makes one)": nil,
		"a Kafka cluster with a key file":                          {brokers, "--kafka-signing-keys-file=" + one},
		"a Kafka cluster on a topic said to be trusted":            {brokers, "--kafka-trusted-topic"},
		"two keys, the relay's named":                              {brokers, "--kafka-signing-keys-file=" + two, "--kafka-signing-key-id=k2"},
		"two keys and no relay in the process":                     {brokers, "--roles=projector,hub", "--kafka-signing-keys-file=" + two},
		"a Kafka cluster and no key for the api alone":             {brokers, "--roles=api"},
	}
	for name, args := range good {
		t.Run("accepts "+name, func(t *testing.T) {
			if _, err := parseServe(append(base, args...)); err != nil {
				t.Errorf("%v refused: %v", args, err)
			}
		})
	}
}

// The process refuses to start, says why in one line, and never shows a
// secret, not even a malformed one.
func TestServeRefusesToStartWithoutUsableSigningKeys(t *testing.T) {
	t.Parallel()
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"a Kafka cluster without keys", []string{"KAFKA_BROKERS=kafka-0:9092"},
			"ORDERFLOW_KAFKA_SIGNING_KEYS (or ORDERFLOW_KAFKA_SIGNING_KEYS_FILE) is required with KAFKA_BROKERS"},
		{"keys in the environment and in a file", []string{"ORDERFLOW_KAFKA_SIGNING_KEYS=k1=" + secret, "ORDERFLOW_KAFKA_SIGNING_KEYS_FILE=/etc/keys"},
			"not both"},
		{"a bare secret without its id", []string{"KAFKA_BROKERS=kafka-0:9092", "ORDERFLOW_KAFKA_SIGNING_KEYS=" + secret},
			"ORDERFLOW_KAFKA_SIGNING_KEYS: signing key 1: "},
		{"a secret that is not base64", []string{"KAFKA_BROKERS=kafka-0:9092", "ORDERFLOW_KAFKA_SIGNING_KEYS=k1=" + secret + "!"},
			"signing key 1: the secret is not standard base64"},
	}
	bin := testenv.Binary(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, "serve")
			cmd.Env = append(cleanEnv(), append([]string{"DATABASE_URL=postgres://x@127.0.0.1:1/db"}, c.env...)...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("serve started:\n%s", out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("output does not say %q:\n%s", c.want, out)
			}
			if strings.Contains(string(out), secret) || strings.Contains(string(out), "0123456789abcdef") {
				t.Errorf("output shows the secret:\n%s", out)
			}
		})
	}
}

// With the embedded broker and no key, the process signs with a key of its
// own (the broker ends with it); on a cluster said to be trusted it
// publishes unsigned and says so loudly.
func TestServeWithoutKeysSignsWithItsOwnOrSaysTheTopicIsTrusted(t *testing.T) {
	t.Parallel()
	t.Run("the embedded broker", func(t *testing.T) {
		t.Parallel()
		srv := testenv.New(t).Serve(t, "ORDERFLOW_KAFKA_SIGNING_KEYS=")
		createAndRead(t, srv.URL, srv.URL)
		if log := readLog(t, srv.LogPath); !strings.Contains(log, "this process signs and verifies the embedded broker's messages with a key of its own") {
			srv.Fatalf(t, "no word of the process's own key")
		}
		for _, m := range testenv.ReadTopic(t, []string{srv.KafkaAddr}, testenv.Topic) {
			if sig := header(m, envelope.HeaderSignature); !strings.HasPrefix(sig, "v1:ephemeral:") {
				t.Fatalf("message signed %q", sig)
			}
		}
	})
	t.Run("a cluster said to be trusted", func(t *testing.T) {
		t.Parallel()
		e := testenv.New(t)
		brokers := e.Kafka(t)
		srv := e.Serve(t, "ORDERFLOW_KAFKA_SIGNING_KEYS=", "KAFKA_BROKERS="+strings.Join(brokers, ","),
			"ORDERFLOW_KAFKA_PARTITIONS="+strconv.Itoa(testenv.Partitions), "ORDERFLOW_KAFKA_TRUSTED_TOPIC=true")
		createAndRead(t, srv.URL, srv.URL)
		if log := readLog(t, srv.LogPath); !strings.Contains(log, "TRUSTED KAFKA TOPIC") {
			srv.Fatalf(t, "no TRUSTED KAFKA TOPIC warning")
		}
		for _, m := range testenv.ReadTopic(t, brokers, testenv.Topic) {
			if sig := header(m, envelope.HeaderSignature); sig != "" {
				t.Fatalf("message signed %q on a trusted topic without keys", sig)
			}
		}
	})
}

// Key rotation with the roles split as in production: the relay (with the
// api) in one process, the projectors and the hub in another, each
// restarted to change its keys, in the runbook's order (README, "Signed
// events"). Nothing real is refused at any step: every order reaches the
// read models and the dashboard, no message is dead-lettered, nothing is
// counted as rejected. Once the old key is removed, a message signed with
// it is refused.
func TestKeyRotationRefusesNothingRealAtAnyStep(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	brokers := e.Kafka(t)
	k1, k2 := newKey(t, "2026-11"), newKey(t, "2026-12")
	start := func(roles string, keys []envelope.Key, keyID string) *testenv.Server {
		t.Helper()
		return e.Serve(t, "ORDERFLOW_ROLES="+roles, "KAFKA_BROKERS="+strings.Join(brokers, ","),
			"ORDERFLOW_KAFKA_PARTITIONS="+strconv.Itoa(testenv.Partitions),
			"ORDERFLOW_KAFKA_SIGNING_KEYS=", "ORDERFLOW_KAFKA_SIGNING_KEYS_FILE="+keyFile(t, keys...),
			"ORDERFLOW_KAFKA_SIGNING_KEY_ID="+keyID)
	}
	stop := func(s *testenv.Server) {
		t.Helper()
		if _, err := s.Terminate(t); err != nil {
			s.Fatalf(t, "exit: %v", err)
		}
	}
	api := start("api,relay", []envelope.Key{k1}, "")
	consumers := start("projector,hub", []envelope.Key{k1}, "")
	steps := []struct {
		name        string
		relay       []envelope.Key // nil: unchanged
		relayKey    string
		verifiers   []envelope.Key
		wantSigning string
	}{
		{"k1 everywhere", nil, "", nil, k1.ID},
		{"1. verifiers accept k1 and k2", nil, "", []envelope.Key{k1, k2}, k1.ID},
		{"2. relays sign with k2", []envelope.Key{k1, k2}, k2.ID, nil, k2.ID},
		{"3. k1 removed", []envelope.Key{k2}, "", []envelope.Key{k2}, k2.ID},
	}
	orders := 0
	for _, s := range steps {
		if s.verifiers != nil {
			// The runbook's condition for removing a key: every consumer
			// group is past the last message it signed. Everything is
			// applied, and a clean stop commits the groups' offsets.
			appliedEverywhere(t, e, 2*orders)
			stop(consumers)
			consumers = start("projector,hub", s.verifiers, "")
		}
		if s.relay != nil {
			stop(api)
			api = start("api,relay", s.relay, s.relayKey)
		}
		id := createAndRead(t, api.URL, consumers.URL)
		orders++
		if got := rejectedTotal(t, consumers.OpsURL); got != 0 {
			consumers.Fatalf(t, "%s: %v messages rejected", s.name, got)
		}
		// The relay signed this order's events with the step's key.
		var signedWith []string
		for _, m := range testenv.ReadTopic(t, brokers, testenv.Topic) {
			if string(m.Key) == id.String() {
				signedWith = append(signedWith, strings.Split(header(m, envelope.HeaderSignature), ":")[1])
			}
		}
		if len(signedWith) == 0 || strings.Count(strings.Join(signedWith, ","), s.wantSigning) != len(signedWith) {
			t.Errorf("%s: the order's messages are signed with %v, want %s", s.name, signedWith, s.wantSigning)
		}
	}
	if dlq := testenv.ReadTopic(t, brokers, kafka.DefaultDLQTopic); len(dlq) != 0 {
		t.Fatalf("%d real messages dead-lettered during the rotation", len(dlq))
	}
	for _, srv := range []*testenv.Server{api, consumers} {
		log := readLog(t, srv.LogPath)
		for _, k := range []envelope.Key{k1, k2} {
			if strings.Contains(log, base64.StdEncoding.EncodeToString(k.Secret)) {
				t.Fatalf("%s logged a secret", srv.Name)
			}
		}
	}

	// The removed key signs nothing that is believed any more.
	ev := testenv.Forge(t, e.Store, eventstore.Stream{ID: ulid.Make(), Type: order.StreamType}, "OrderCreated",
		map[string]any{"customer_id": "c-forged", "currency": "EUR", "created_at": time.Now().UTC()})
	m, err := envelope.Message(ev)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := envelope.NewSigner(k1)
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.Sign(&m); err != nil {
		t.Fatal(err)
	}
	testenv.Produce(t, brokers, testenv.Topic, m)
	deadline := time.Now().Add(testenv.Patience)
	for len(testenv.ReadTopic(t, brokers, kafka.DefaultDLQTopic)) < 4 { // one per projection
		if time.Now().After(deadline) {
			consumers.Fatalf(t, "the message signed with the removed key was not dead-lettered by every projection")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range testenv.ReadTopic(t, brokers, kafka.DefaultDLQTopic) {
		if r := header(m, "reason_poisoned"); !strings.Contains(r, string(envelope.ReasonUnknownKey)) {
			t.Errorf("dead-lettered with %q, want %s", r, envelope.ReasonUnknownKey)
		}
	}
}

// createAndRead creates an order through api and waits until its read
// model is fresh there and the hub at hubURL has streamed both its events
// to a dashboard subscribed before the command.
func createAndRead(t *testing.T, api, hubURL string) ulid.ULID {
	t.Helper()
	authz := http.Header{"Authorization": {testenv.Operator(t)}}
	ws, _, err := (&websocket.Dialer{HandshakeTimeout: testenv.Patience}).Dial("ws"+strings.TrimPrefix(hubURL, "http")+"/v1/stream", authz)
	if err != nil {
		t.Fatalf("dial the hub: %v", err)
	}
	defer func() { _ = ws.Close() }()
	_ = ws.SetReadDeadline(time.Now().Add(testenv.Patience))
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "channel": "orders"}); err != nil {
		t.Fatal(err)
	}
	var f struct {
		Type     string `json:"type"`
		StreamID string `json:"stream_id"`
	}
	if err := ws.ReadJSON(&f); err != nil || f.Type != "subscribed" {
		t.Fatalf("subscribe: %+v %v", f, err)
	}
	post, _ := http.NewRequest(http.MethodPost, api+"/v1/orders",
		strings.NewReader(`{"customer_id":"`+testenv.OperatorSubject+`","currency":"EUR","items":[{"sku":"S","name":"N","quantity":1,"unit_price_minor":100}]}`))
	post.Header = authz.Clone()
	post.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		OrderID ulid.ULID `json:"order_id"`
	}
	err = json.NewDecoder(res.Body).Decode(&created)
	_ = res.Body.Close()
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", res.StatusCode, err)
	}
	for frames := 0; frames < 2; {
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("the hub streamed %d of the order's 2 events: %v", frames, err)
		}
		if f.Type == "event" && f.StreamID == created.OrderID.String() {
			frames++
		}
	}
	req, _ := http.NewRequest(http.MethodGet, api+"/v1/orders/"+created.OrderID.String(), nil)
	req.Header = authz.Clone()
	req.Header.Set("Consistency-Token", res.Header.Get("Consistency-Token"))
	deadline := time.Now().Add(testenv.Patience)
	for {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode == http.StatusOK && res.Header.Get("Consistency") == "fresh" {
			return created.OrderID
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s never reached its read model: %d %s", created.OrderID, res.StatusCode, res.Header.Get("Consistency"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// appliedEverywhere waits until every projection has applied events
// events (the sum of its per-order versions).
func appliedEverywhere(t *testing.T, e *testenv.Env, events int) {
	t.Helper()
	deadline := time.Now().Add(testenv.Patience)
	for _, p := range projections.All() {
		for {
			var n int
			if err := e.DB.Query.QueryRow(context.Background(), `SELECT coalesce(sum(version), 0) FROM `+p.Name()+`_versions`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == events {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s applied %d of %d events", p.Name(), n, events)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// rejectedTotal sums kafka_rejected_messages_total over its series on a
// server's /metrics.
func rejectedTotal(t *testing.T, opsURL string) float64 {
	t.Helper()
	res, err := http.Get(opsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	sum, series := 0.0, 0
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, envelope.RejectedMetric+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		sum += v
		series++
	}
	if series == 0 {
		t.Fatalf("%s has no %s series", opsURL, envelope.RejectedMetric)
	}
	return sum
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func header(m kafkago.Message, name string) string {
	for _, h := range m.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}
