package order

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// ErrAmountOverflow reports a money computation whose exact result does not
// fit in int64 minor units. Callers turn it into a validation or rule error;
// the domain never stores a wrapped-around (negative) amount.
var ErrAmountOverflow = errors.New("amount overflows int64 minor units")

// LineTotal returns quantity × unitPriceMinor, exactly, or ErrAmountOverflow.
// Both operands must be non-negative: a negative price or quantity is never a
// valid line, and rejecting it here keeps the overflow check to one unsigned
// multiplication.
func LineTotal(quantity, unitPriceMinor int64) (int64, error) {
	if quantity < 0 || unitPriceMinor < 0 {
		return 0, fmt.Errorf("line total of quantity %d and unit price %d: negative operand", quantity, unitPriceMinor)
	}
	hi, lo := bits.Mul64(uint64(quantity), uint64(unitPriceMinor))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, ErrAmountOverflow
	}
	return int64(lo), nil
}

// AddMinor returns a + b for non-negative amounts, or ErrAmountOverflow.
func AddMinor(a, b int64) (int64, error) {
	if a < 0 || b < 0 {
		return 0, fmt.Errorf("add %d and %d: negative amount", a, b)
	}
	if a > math.MaxInt64-b {
		return 0, ErrAmountOverflow
	}
	return a + b, nil
}

// SumLines returns the total of lines, checking every product and sum.
func SumLines(lines []Line) (int64, error) {
	var total int64
	for _, l := range lines {
		lt, err := LineTotal(l.Quantity, l.UnitPriceMinor)
		if err != nil {
			return 0, fmt.Errorf("sku %s: %w", l.SKU, err)
		}
		if total, err = AddMinor(total, lt); err != nil {
			return 0, err
		}
	}
	return total, nil
}
