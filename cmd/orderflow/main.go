// Command orderflow is the single orderflow binary: it serves the platform in
// one or more roles and carries the operator's subcommands. This package is
// wiring only; the behaviour lives in the packages it assembles.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func subcommands() []command {
	return []command{
		{"serve", "serve the platform (roles: api, relay, projector, hub)", runServe},
		{"token", "mint a development bearer token (for a server with ORDERFLOW_AUTH_DEV=true)", runToken},
		{"migrate", "apply or inspect database migrations (up, status)", runMigrate},
		{"events", "event store: export, partitions, detach", runEvents},
		{"kafka", "run the embedded Kafka broker on its own", runKafka},
		{"projections", "projection status and rebuilds", runProjections},
		{"pii", "personal data: rewrap the data keys with the current master key", runPII},
		{"dlq", "dead letters: list, show, replay, discard", runDLQ},
		{"audit", "the log of admin actions: who, what, why, when", runAudit},
		{"bench", "benchmarks: seed, rebuild, queries, drain, commands, pipeline, suite", runBench},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "orderflow: an event-sourced order platform on PostgreSQL and Kafka.\n\nUsage:\n  orderflow <command> [flags]\n\nCommands:\n")
	for _, c := range subcommands() {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'orderflow <command> --help' for a command's flags. Every flag can also be set by the environment variable named in its help.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range subcommands() {
		if c.name == os.Args[1] {
			err := c.run(ctx, os.Args[2:])
			switch {
			case err == nil:
				return
			case errors.Is(err, flag.ErrHelp):
				return
			case errors.Is(err, errUsage):
				os.Exit(2)
			default:
				fmt.Fprintf(os.Stderr, "orderflow %s: %v\n", c.name, err)
				os.Exit(1)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "orderflow: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}

// dispatch runs the subcommand args[0] of command name, or prints usage.
func dispatch(ctx context.Context, name, usage string, args []string, subs map[string]func(context.Context, []string) error) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, usage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	if run, ok := subs[args[0]]; ok {
		return run(ctx, args[1:])
	}
	fmt.Fprintf(os.Stderr, "orderflow %s: unknown subcommand %q\n\n%s\n", name, args[0], usage)
	return errUsage
}
