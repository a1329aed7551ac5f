package pipebench

import (
	"context"
	"fmt"
	"time"
)

// FindMaxConfig configures FindMax.
type FindMaxConfig struct {
	// Pipeline is each step's configuration; its Rate is the first rate
	// tried and its Duration the window a rate must hold for.
	Pipeline Config
	// MaxLag is the bound a sustainable rate keeps: every projection's
	// lag_seconds and the freshness p99 stay at or under it, the generator
	// keeps its schedule, and the pipeline drains after the step. Default 2s.
	MaxLag time.Duration
	// MaxErrors is the share of failed commands still sustainable. Default
	// 0.001.
	MaxErrors float64
	// Steps bounds the runs. Default 8.
	Steps int
	// Precision ends the search once the highest sustainable rate and the
	// lowest unsustainable one are within this ratio. Default 0.1.
	Precision float64
}

// Step is one rate tried.
type Step struct {
	Rate        float64
	Sustainable bool
	Why         string // what made it unsustainable
	Result      Result
}

// FindMax looks for the highest rate the pipeline sustains: it multiplies
// the rate by 1.5 while steps hold, then bisects between the last rate that
// held and the first that did not. Each step is a full Run, so the pipeline
// drains between steps. onStep, if set, sees each step as it ends. It
// returns the highest sustainable rate found (0 if none) and every step.
func FindMax(ctx context.Context, cfg FindMaxConfig, onStep func(Step)) (float64, []Step, error) {
	if cfg.MaxLag == 0 {
		cfg.MaxLag = 2 * time.Second
	}
	if cfg.MaxErrors == 0 {
		cfg.MaxErrors = 0.001
	}
	if cfg.Steps == 0 {
		cfg.Steps = 8
	}
	if cfg.Precision == 0 {
		cfg.Precision = 0.1
	}
	var (
		steps  []Step
		lo, hi float64 // highest held, lowest failed (0: none yet)
	)
	rate := cfg.Pipeline.Rate
	for len(steps) < cfg.Steps {
		pc := cfg.Pipeline
		pc.Rate = rate
		res, err := Run(ctx, pc)
		if err != nil {
			return lo, steps, fmt.Errorf("find-max at %.0f/s: %w", rate, err)
		}
		why := Unsustainable(res, cfg.MaxLag, cfg.MaxErrors)
		st := Step{Rate: rate, Sustainable: why == "", Why: why, Result: res}
		steps = append(steps, st)
		if onStep != nil {
			onStep(st)
		}
		var ok bool
		if lo, hi, rate, ok = nextRate(lo, hi, rate, st.Sustainable, cfg.Precision); !ok {
			break
		}
	}
	return lo, steps, nil
}

// nextRate is the search: it updates the bracket [lo, hi) with the step at
// rate and returns the next rate to try, or ok false when the bracket is
// narrow enough.
func nextRate(lo, hi, rate float64, held bool, precision float64) (newLo, newHi, next float64, ok bool) {
	if held {
		lo = rate
	} else {
		hi = rate
	}
	switch {
	case hi == 0:
		return lo, hi, rate * 1.5, true
	case lo == 0:
		return lo, hi, rate / 1.5, rate/1.5 >= 1
	case hi/lo <= 1+precision:
		return lo, hi, 0, false
	}
	return lo, hi, (lo + hi) / 2, true
}

// Unsustainable says why a run's rate cannot be held, or "" if it can.
func Unsustainable(r Result, maxLag time.Duration, maxErrors float64) string {
	c := r.Commands
	switch total := c.OK + c.Failed(); {
	case c.Overloaded:
		return fmt.Sprintf("the server fell more than %s behind the schedule", c.Config.MaxBehind)
	case total == 0:
		return "no command was sent"
	case float64(c.Failed())/float64(total) > maxErrors:
		return fmt.Sprintf("%d of %d commands failed", c.Failed(), total)
	}
	for _, s := range r.Lag {
		if s.T <= r.LoadEnd && s.maxSeconds() > maxLag.Seconds() {
			return fmt.Sprintf("lag reached %.1fs at %.0fs", s.maxSeconds(), s.T)
		}
	}
	if p := r.Fresh.Percentiles(); p.Count > 0 && p.P99 > maxLag {
		return fmt.Sprintf("freshness p99 %s", p.P99)
	}
	if !r.Drained {
		return fmt.Sprintf("not caught up %s after the load", r.CaughtUp.Round(time.Second))
	}
	return ""
}
