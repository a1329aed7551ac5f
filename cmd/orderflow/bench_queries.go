package main

import (
	"context"
	"errors"
)

func runBenchQueries(ctx context.Context, args []string) error { return errors.New("todo") }
