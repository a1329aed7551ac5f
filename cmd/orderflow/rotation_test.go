package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/testenv"
)

// TestMasterKeyRotationKeepsEveryValueReadable follows the README's
// runbook: orders sealed under the old master key, the new key added and
// made current, `orderflow pii rewrap` while the server serves and takes
// new orders, the old key removed: every value still opens, in the query
// API, the history and the export.
func TestMasterKeyRotationKeepsEveryValueReadable(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	oldKey, newKey := "old="+randomKey(t), "new="+randomKey(t)
	staff := testenv.Token(t, "staff-rot", auth.Staff)
	create := func(srv *testenv.Server, email string) string {
		customer := "cust-" + strings.ToLower(ulid.Make().String())
		r := call(t, srv.URL, "POST", "/v1/orders", `{"customer_id":"`+customer+`","currency":"EUR","email":"`+email+`"}`,
			testenv.Token(t, customer, auth.Customer))
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var out struct {
			OrderID string `json:"order_id"`
		}
		_ = json.Unmarshal(r.body, &out)
		return out.OrderID
	}
	emails := map[string]string{}

	before := env.Serve(t, testenv.MasterKeysVar+"="+oldKey)
	for _, e := range []string{"a@old.example", "b@old.example"} {
		emails[create(before, e)] = e
	}
	if _, err := before.Terminate(t); err != nil {
		t.Fatal(err)
	}

	during := env.Serve(t, testenv.MasterKeysVar+"="+oldKey+","+newKey, "ORDERFLOW_PII_MASTER_KEY_ID=new")
	emails[create(during, "c@during.example")] = "c@during.example"
	rewrap := exec.Command(testenv.Binary(t), "pii", "rewrap") // #nosec G204 -- test: the binary just built
	rewrap.Env = append(os.Environ(), "DATABASE_URL="+env.DB.URL, testenv.MasterKeysVar+"="+oldKey+","+newKey, "ORDERFLOW_PII_MASTER_KEY_ID=new")
	out, err := rewrap.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "re-wrapped 2 data keys with master key new") {
		t.Fatalf("rewrap: %v: %s", err, out)
	}
	for id, e := range emails { // served all along, before and after the rewrap
		if r := call(t, during.URL, "GET", "/v1/orders/"+id+"?as_of=1", "", staff); !strings.Contains(string(r.body), e) {
			t.Fatalf("during the rotation %s shows %s", id, r.body)
		}
	}
	if _, err := during.Terminate(t); err != nil {
		t.Fatal(err)
	}

	after := env.Serve(t, testenv.MasterKeysVar+"="+newKey)
	for id, e := range emails {
		o := waitOrder(t, after, id, staff, func(o map[string]any) bool { return o["email"] != nil })
		h := call(t, after.URL, "GET", "/v1/orders/"+id+"/history", "", staff)
		if !strings.Contains(o, `"email":"`+e+`"`) || !strings.Contains(string(h.body), e) {
			t.Errorf("with only the new master key, %s shows %s and %s", id, o, h.body)
		}
	}
	export := exec.Command(testenv.Binary(t), "events", "export") // #nosec G204 -- test: the binary just built
	export.Env = append(os.Environ(), "DATABASE_URL="+env.DB.URL, testenv.MasterKeysVar+"="+newKey)
	b, err := export.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range emails {
		if !strings.Contains(string(b), e) {
			t.Errorf("the export with only the new master key lacks %s", e)
		}
	}
}

func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}
