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

	"github.com/orderflow/orderflow/internal/pg"
	"github.com/orderflow/orderflow/internal/tracing"
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
	// databaseURL is the schema owner's (migrations, DDL) and the
	// development fallback of every serving role.
	databaseURL string
	// roleURLs are the serving roles' own logins: environment only, since
	// they carry passwords and flags show in ps.
	roleURLs  map[pg.Role]string
	logFormat string
	logLevel  string
}

// roleURLVars names the variable of each serving role's login.
var roleURLVars = []struct {
	role pg.Role
	env  string
}{
	{pg.Command, "ORDERFLOW_DATABASE_URL_COMMAND"},
	{pg.Relay, "ORDERFLOW_DATABASE_URL_RELAY"},
	{pg.Projector, "ORDERFLOW_DATABASE_URL_PROJECTOR"},
	{pg.Query, "ORDERFLOW_DATABASE_URL_QUERY"},
}

func roleURLVar(r pg.Role) string {
	for _, v := range roleURLVars {
		if v.role == r {
			return v.env
		}
	}
	panic("no variable for role " + string(r))
}

func (c *common) register(f *flags) {
	f.string(&c.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL of the schema owner (migrations, admin commands); without ORDERFLOW_DATABASE_URL_<ROLE>, serving connections also log in with it and SET ROLE (development only)")
	f.string(&c.logFormat, "log-format", "ORDERFLOW_LOG_FORMAT", "text", "log format: text or json")
	f.string(&c.logLevel, "log-level", "ORDERFLOW_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	c.roleURLs = map[pg.Role]string{}
	for _, v := range roleURLVars {
		if u := os.Getenv(v.env); u != "" {
			c.roleURLs[v.role] = u
		}
	}
}

// validate checks the logging settings and the database logins: owner says
// whether the command needs the schema owner (DATABASE_URL), roles which
// serving roles it connects as. A role logs in with its own URL; with no
// role URL set at all (development) every role falls back to DATABASE_URL
// and SET ROLE. Once any role URL is set, every role the command needs
// must have one: a production process never quietly logs in as the owner.
func (c *common) validate(f *flags, owner bool, roles ...pg.Role) {
	checkURL := func(name, u string) {
		parsed, err := url.Parse(u)
		f.check(err != nil || (parsed.Scheme != "postgres" && parsed.Scheme != "postgresql"),
			"%s must be a postgres:// URL (not shown: it may hold a password)", name)
	}
	if c.databaseURL != "" {
		checkURL("DATABASE_URL", c.databaseURL)
	}
	for _, v := range roleURLVars {
		if u, ok := c.roleURLs[v.role]; ok {
			checkURL(v.env, u)
		}
	}
	switch {
	case c.devLogins() && c.databaseURL == "":
		if owner || len(roles) == 0 {
			f.check(true, "DATABASE_URL is required (postgres://user@host:port/db)")
		} else {
			f.check(true, "DATABASE_URL is required (postgres://user@host:port/db), or in production a URL per role: %s", roleURLList(roles))
		}
	case !c.devLogins():
		f.check(owner && c.databaseURL == "",
			"DATABASE_URL (the schema owner) is required by this command; a serving process without the owner's credentials sets ORDERFLOW_MIGRATE=false")
		for _, r := range roles {
			_, ok := c.roleURLs[r]
			f.check(!ok, "%s is not set, but other roles have their own URL: every role this process connects as needs one (the DATABASE_URL fallback is for development, all roles or none)", roleURLVar(r))
		}
	}
	f.check(c.logFormat != "text" && c.logFormat != "json", "ORDERFLOW_LOG_FORMAT=%q: want text or json", c.logFormat)
	var lvl slog.Level
	f.check(lvl.UnmarshalText([]byte(c.logLevel)) != nil, "ORDERFLOW_LOG_LEVEL=%q: want debug, info, warn or error", c.logLevel)
}

// devLogins is the development fallback: no role has a URL of its own.
func (c *common) devLogins() bool { return len(c.roleURLs) == 0 }

// login is how connections of role r log in.
func (c *common) login(r pg.Role) pg.Login {
	if u, ok := c.roleURLs[r]; ok {
		return pg.Login{Role: r, URL: u}
	}
	return pg.Login{Role: r, URL: c.databaseURL, SetRole: true}
}

func roleURLList(roles []pg.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = roleURLVar(r)
	}
	return strings.Join(names, ", ")
}

func (c *common) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.logLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	// Records logged with a span's context carry its trace_id and span_id.
	if c.logFormat == "json" {
		return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(tracing.LogHandler(slog.NewTextHandler(w, opts)))
}
