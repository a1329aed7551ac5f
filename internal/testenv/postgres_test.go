package testenv_test

import (
	"context"
	"testing"

	"github.com/orderflow/orderflow/internal/testenv"
)

func TestStartPostgresGivesAClusterThatRestartsAndServesMigratedDatabases(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPostgres(t)
	e := testenv.NewOn(t, pg.URL)
	ctx := context.Background()
	var n int
	if err := e.DB.Owner.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	pg.Restart(t)
	// The pools' connections died with the server; the next query gets a
	// fresh one.
	for attempt := 0; ; attempt++ {
		err := e.DB.Query.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("pool did not recover after the restart: %v", err)
		}
	}
}
