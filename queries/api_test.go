package queries

import (
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	t.Run("the zero value means 2s waits polled every 15ms", func(t *testing.T) {
		a, err := NewAPI(nil, nil, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if a.opts.ConsistencyWait != 2*time.Second || a.opts.ConsistencyPoll != 15*time.Millisecond {
			t.Errorf("defaults = %+v", a.opts)
		}
	})
	t.Run("negative durations are refused", func(t *testing.T) {
		if err := (Options{ConsistencyWait: -1, ConsistencyPoll: -1}).Validate(); err == nil {
			t.Error("Validate accepted negative durations")
		}
		if _, err := NewAPI(nil, nil, nil, Options{ConsistencyWait: -time.Second}); err == nil {
			t.Error("NewAPI accepted invalid options")
		}
	})
}

func TestETagMatching(t *testing.T) {
	cases := []struct {
		header string
		match  bool
	}{
		{"", false}, {`"3"`, true}, {`W/"3"`, true}, {`"1", "3"`, true}, {`*`, true}, {`"33"`, false}, {`3`, false},
	}
	for _, c := range cases {
		if got := etagMatches(c.header, `"3"`); got != c.match {
			t.Errorf("If-None-Match %q against \"3\": %v, want %v", c.header, got, c.match)
		}
	}
}
