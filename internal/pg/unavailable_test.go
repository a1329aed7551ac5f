package pg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderflow/orderflow/internal/pg"
)

func TestUnavailableTellsAnUnreachableDatabaseFromABadStatement(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: a real connect error, from pgx itself.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, refused := pgx.Connect(ctx, "postgres://u@"+addr+"/db?sslmode=disable&connect_timeout=5")
	if refused == nil {
		t.Fatal("connected to a closed port")
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"a refused connection, wrapped", fmt.Errorf("read stream x: %w", refused), true},
		{"the server shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"the server starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"a connection exception", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"a connection that broke mid-statement", fmt.Errorf("append: %w", io.ErrUnexpectedEOF), true},
		{"a closed connection", fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
		{"a unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"a syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"a cancelled request", context.Canceled, false},
		{"a request past its deadline", fmt.Errorf("q: %w", context.DeadlineExceeded), false},
		{"any other error", errors.New("boom"), false},
		{"no error", nil, false},
	} {
		if got := pg.Unavailable(c.err); got != c.want {
			t.Errorf("%s (%v): Unavailable = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
