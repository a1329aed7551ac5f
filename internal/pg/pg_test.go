package pg_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/pgtest"
)

func TestServingPoolsRefuseLoginsWithMoreThanTheirRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	t.Run("a login of the role's own is accepted and needs no SET ROLE", func(t *testing.T) {
		l := db.LoginAs(t, pg.Query)
		pool, err := pg.Connect(ctx, l, pg.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var session, current string
		if err := pool.QueryRow(ctx, `SELECT session_user, current_user`).Scan(&session, &current); err != nil {
			t.Fatal(err)
		}
		if session != current || session == string(pg.Query) {
			t.Fatalf("session_user %s, current_user %s: want the login role itself", session, current)
		}
	})
	t.Run("the development fallback switches the owner's login to the role", func(t *testing.T) {
		pool, err := pg.Connect(ctx, db.Login(pg.Relay), pg.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var current string
		if err := pool.QueryRow(ctx, `SELECT current_user`).Scan(&current); err != nil || current != string(pg.Relay) {
			t.Fatalf("current_user %q (%v), want %s", current, err, pg.Relay)
		}
	})

	refused := []struct {
		name  string
		login func(t *testing.T) pg.Login
		want  string
	}{
		{"the schema owner's URL without SET ROLE (a superuser here)", func(t *testing.T) pg.Login {
			return pg.Login{Role: pg.Query, URL: db.URL}
		}, "superuser"},
		{"a login of another role", func(t *testing.T) pg.Login {
			l := db.LoginAs(t, pg.Relay)
			l.Role = pg.Query
			return l
		}, "not a member of orderflow_query"},
		{"a login that may act as the schema owner", func(t *testing.T) pg.Login {
			l := db.LoginAs(t, pg.Query)
			u, _ := url.Parse(l.URL)
			var owner string
			if err := db.Owner.QueryRow(ctx, `SELECT relowner::regrole::text FROM pg_class WHERE oid = 'events'::regclass`).Scan(&owner); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Owner.Exec(ctx, "GRANT "+owner+" TO "+pgx.Identifier{u.User.Username()}.Sanitize()); err != nil {
				t.Fatal(err)
			}
			return l
		}, "owns the schema"},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			pool, err := pg.Connect(ctx, c.login(t), pg.Options{})
			if err == nil {
				pool.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestAMalformedURLIsReportedWithoutIt(t *testing.T) {
	t.Parallel()
	_, err := pg.Connect(context.Background(), pg.Login{Role: pg.Command, URL: "postgres://u:s3cret@host:notaport/db"}, pg.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("want an error that does not show the password, got %v", err)
	}
}
