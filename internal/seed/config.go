package seed

import (
	"errors"
	"fmt"
	"time"
)

// Config describes a seed. The zero values of the optional fields mean the
// defaults written next to them.
type Config struct {
	// Orders is how many orders to create (required, ≥ 1).
	Orders int
	// Customers is how many distinct customers orders are drawn from; 0
	// means Orders/10 (at least 1).
	Customers int
	// Days spreads the orders' creation times over the last Days days; 0
	// means 60.
	Days int
	// Batch is how many events one COPY writes (whole orders, so a batch may
	// hold a few more); 0 means 10000.
	Batch int
	// Now is the end of the creation window; zero means time.Now().
	Now time.Time
	// Seed makes a run reproducible; 0 means 1.
	Seed uint64
}

func (c *Config) setDefaults() {
	if c.Customers == 0 {
		c.Customers = max(c.Orders/10, 1)
	}
	if c.Days == 0 {
		c.Days = 60
	}
	if c.Batch == 0 {
		c.Batch = 10000
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	c.Now = c.Now.UTC().Truncate(time.Millisecond)
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Validate reports values that cannot work (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Orders < 1 {
		errs = append(errs, fmt.Errorf("orders %d: want at least 1", c.Orders))
	}
	if c.Customers < 0 {
		errs = append(errs, fmt.Errorf("customers %d: want at least 1 (0 means orders/10)", c.Customers))
	}
	if c.Days < 0 || c.Days > 3650 {
		errs = append(errs, fmt.Errorf("days %d: want 1 to 3650 (0 means 60)", c.Days))
	}
	if c.Batch < 0 {
		errs = append(errs, fmt.Errorf("batch %d: want at least 1 (0 means 10000)", c.Batch))
	}
	return errors.Join(errs...)
}

// Window is the creation-time window of the orders: [From, To).
func (c Config) Window() (from, to time.Time) {
	c.setDefaults()
	return c.Now.Add(-time.Duration(c.Days) * 24 * time.Hour), c.Now
}
