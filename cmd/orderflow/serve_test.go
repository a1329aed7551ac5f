package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/testenv"
)

// The production shape: every role of `orderflow serve` logs in with a
// LOGIN role of its own, and the process has no owner credentials at all.
func TestServeWithALoginPerRoleNeverConnectsAsTheOwner(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	env := []string{"DATABASE_URL=", "ORDERFLOW_MIGRATE=false"}
	users := map[string]bool{}
	for _, r := range pg.ServingRoles() {
		l := e.DB.LoginAs(t, r)
		env = append(env, roleURLVar(r)+"="+l.URL)
		users[strings.SplitN(strings.TrimPrefix(l.URL, "postgres://"), ":", 2)[0]] = true
	}
	srv := e.Serve(t, env...) // returns once /readyz (migrations current, read as a serving role) is 200

	// A command, then the query of its read model, fresh: the command,
	// relay, projector and query roles each did their part.
	customer := testenv.Bearer(t, "c-1", auth.Customer)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders",
		strings.NewReader(`{"customer_id":"c-1","currency":"EUR","items":[{"sku":"S","name":"N","quantity":1,"unit_price_minor":100}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", customer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		srv.Fatalf(t, "create: %d", res.StatusCode)
	}
	token, location := res.Header.Get("Consistency-Token"), res.Header.Get("Location")
	deadline := time.Now().Add(testenv.Patience)
	for {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+location, nil)
		req.Header.Set("Consistency-Token", token)
		req.Header.Set("Authorization", customer)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode == http.StatusOK && res.Header.Get("Consistency") == "fresh" {
			break
		}
		if time.Now().After(deadline) {
			srv.Fatalf(t, "the order never reached its read model: %d %s", res.StatusCode, res.Header.Get("Consistency"))
		}
	}

	rows, err := e.DB.Owner.Query(context.Background(), `SELECT DISTINCT usename::text FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE 'orderflow%'`)
	if err != nil {
		t.Fatal(err)
	}
	seen, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 {
		t.Fatal("no connection of the server found in pg_stat_activity")
	}
	for _, u := range seen {
		if !users[u] {
			t.Errorf("the server has a connection logged in as %s, not one of its roles' logins", u)
		}
	}
	if b, _ := os.ReadFile(srv.LogPath); strings.Contains(string(b), "DEVELOPMENT DATABASE LOGIN") {
		t.Error("the server warned of the development login while every role had its own")
	}
}

func TestServeWithOnlyDatabaseURLWarnsOfTheDevelopmentLogin(t *testing.T) {
	t.Parallel()
	srv := testenv.New(t).Serve(t, "ORDERFLOW_ROLES=api")
	if b, _ := os.ReadFile(srv.LogPath); !strings.Contains(string(b), "DEVELOPMENT DATABASE LOGIN") {
		srv.Fatalf(t, "no warning of the development login")
	}
}

func TestServeRefusesToMixRoleLoginsWithTheOwnerFallback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  []string
		want []string // in the output, one line per problem
	}{
		{"one role's URL set, the other role the process needs left out",
			[]string{"ORDERFLOW_ROLES=api", "ORDERFLOW_DATABASE_URL_COMMAND=postgres://c@127.0.0.1:1/db"},
			[]string{"ORDERFLOW_DATABASE_URL_QUERY is not set"}},
		{"role URLs without DATABASE_URL while migrations are on",
			[]string{"ORDERFLOW_ROLES=relay", "DATABASE_URL=", "ORDERFLOW_DATABASE_URL_RELAY=postgres://r@127.0.0.1:1/db"},
			[]string{"DATABASE_URL (the schema owner) is required"}},
		{"no database setting at all",
			[]string{"DATABASE_URL="},
			[]string{"DATABASE_URL is required"}},
		{"no database setting, migrations off",
			[]string{"DATABASE_URL=", "ORDERFLOW_MIGRATE=false", "ORDERFLOW_ROLES=api,projector"},
			[]string{"or in production a URL per role: ORDERFLOW_DATABASE_URL_COMMAND, ORDERFLOW_DATABASE_URL_QUERY, ORDERFLOW_DATABASE_URL_PROJECTOR"}},
		{"a role URL that is not a postgres URL",
			[]string{"ORDERFLOW_ROLES=hub", "ORDERFLOW_DATABASE_URL_QUERY=mysql://q:hunter2@h/db", "ORDERFLOW_MIGRATE=false"},
			[]string{"ORDERFLOW_DATABASE_URL_QUERY must be a postgres:// URL"}},
	}
	bin := testenv.Binary(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, "serve")
			cmd.Env = append(cleanEnv(), c.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("serve started:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "hunter2") {
				t.Errorf("output shows a password:\n%s", out)
			}
		})
	}
}

// cleanEnv is the test's environment without any database setting.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "ORDERFLOW_") {
			out = append(out, kv)
		}
	}
	return out
}
