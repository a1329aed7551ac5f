package main

import (
	"context"
	"errors"
)

func runBenchRebuild(ctx context.Context, args []string) error { return errors.New("todo") }
