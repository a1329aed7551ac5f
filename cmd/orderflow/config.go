package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// errUsage means the configuration was rejected and explained already.
var errUsage = errors.New("invalid configuration")

// flags wraps a FlagSet whose defaults come from the environment, and
// collects every configuration problem so that they are reported together,
// one line each.
type flags struct {
	*flag.FlagSet
	problems []string
}

func newFlags(name, summary string) *flags {
	fs := flag.NewFlagSet("orderflow "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: orderflow %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return &flags{FlagSet: fs}
}

func (f *flags) string(p *string, name, env, def, help string) {
	f.StringVar(p, name, envOr(env, def), help+" ($"+env+")")
}

func (f *flags) bool(p *bool, name, env string, def bool, help string) {
	v := def
	if s, ok := os.LookupEnv(env); ok {
		b, err := strconv.ParseBool(s)
		if err != nil {
			f.problems = append(f.problems, fmt.Sprintf("%s=%q: not a boolean", env, s))
		}
		v = b
	}
	f.BoolVar(p, name, v, help+" ($"+env+")")
}

func (f *flags) int(p *int, name, env string, def int, help string) {
	v := def
	if s, ok := os.LookupEnv(env); ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			f.problems = append(f.problems, fmt.Sprintf("%s=%q: not an integer", env, s))
		}
		v = n
	}
	f.IntVar(p, name, v, help+" ($"+env+")")
}

func (f *flags) float(p *float64, name, env string, def float64, help string) {
	v := def
	if s, ok := os.LookupEnv(env); ok {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			f.problems = append(f.problems, fmt.Sprintf("%s=%q: not a number", env, s))
		}
		v = n
	}
	f.Float64Var(p, name, v, help+" ($"+env+")")
}

func (f *flags) duration(p *time.Duration, name, env string, def time.Duration, help string) {
	v := def
	if s, ok := os.LookupEnv(env); ok {
		d, err := time.ParseDuration(s)
		if err != nil {
			f.problems = append(f.problems, fmt.Sprintf("%s=%q: not a duration (like 2s)", env, s))
		}
		v = d
	}
	f.DurationVar(p, name, v, help+" ($"+env+")")
}

// check records a problem when bad is true.
func (f *flags) check(bad bool, format string, args ...any) {
	if bad {
		f.problems = append(f.problems, fmt.Sprintf(format, args...))
	}
}

// parse parses args and reports every problem, one line each.
func (f *flags) parse(args []string, validate func()) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if f.NArg() > 0 {
		f.problems = append(f.problems, fmt.Sprintf("unexpected arguments: %s", strings.Join(f.Args(), " ")))
	}
	if validate != nil {
		validate()
	}
	if len(f.problems) > 0 {
		for _, p := range f.problems {
			fmt.Fprintf(os.Stderr, "%s: %s\n", f.Name(), p)
		}
		return errUsage
	}
	return nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// common is the configuration every database-using command shares.
type common struct {
	databaseURL string
	logFormat   string
	logLevel    string
}

func (c *common) register(f *flags) {
	f.string(&c.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL; its role must own the schema (migrations); serving drops to role orderflow_app")
	f.string(&c.logFormat, "log-format", "ORDERFLOW_LOG_FORMAT", "text", "log format: text or json")
	f.string(&c.logLevel, "log-level", "ORDERFLOW_LOG_LEVEL", "info", "log level: debug, info, warn or error")
}

func (c *common) validate(f *flags) {
	f.check(c.databaseURL == "", "DATABASE_URL is required (postgres://user@host:port/db)")
	if c.databaseURL != "" {
		u, err := url.Parse(c.databaseURL)
		f.check(err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql"),
			"DATABASE_URL must be a postgres:// URL (not shown: it may hold a password)")
	}
	f.check(c.logFormat != "text" && c.logFormat != "json", "ORDERFLOW_LOG_FORMAT=%q: want text or json", c.logFormat)
	var lvl slog.Level
	f.check(lvl.UnmarshalText([]byte(c.logLevel)) != nil, "ORDERFLOW_LOG_LEVEL=%q: want debug, info, warn or error", c.logLevel)
}

func (c *common) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.logLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
