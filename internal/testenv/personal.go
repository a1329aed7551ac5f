package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
)

// MasterKeysVar is the variable the served binary reads the master keys of
// personal data from.
const MasterKeysVar = "ORDERFLOW_PII_MASTER_KEYS"

// MasterKey is the test's master key of personal data, "test=<base64>" as
// MasterKeysVar takes it: every serve process of a test wraps and unwraps
// data keys with it. One per top-level test, like EventKey.
func MasterKey(t testing.TB) string {
	t.Helper()
	name, _, _ := strings.Cut(t.Name(), "/")
	masterKeys.Lock()
	defer masterKeys.Unlock()
	k, ok := masterKeys.byTest[name]
	if !ok {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		k = "test=" + base64.StdEncoding.EncodeToString(b)
		masterKeys.byTest[name] = k
	}
	return k
}

var masterKeys = struct {
	sync.Mutex
	byTest map[string]string
}{byTest: map[string]string{}}
