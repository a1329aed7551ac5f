package order_test

import (
	"errors"
	"math"
	"testing"

	"github.com/orderflow/orderflow/order"
)

func TestLineTotal(t *testing.T) {
	tests := []struct {
		name         string
		qty, price   int64
		want         int64
		wantOverflow bool
		wantAnyErr   bool
	}{
		{name: "a plain product is exact", qty: 3, price: 1999, want: 5997},
		{name: "a free item totals zero", qty: 10000, price: 0, want: 0},
		{name: "the largest representable product is accepted", qty: 1, price: math.MaxInt64, want: math.MaxInt64},
		{name: "a product just above int64 overflows", qty: 2, price: math.MaxInt64/2 + 1, wantOverflow: true},
		{name: "a product beyond 64 bits overflows rather than wrapping", qty: 10000, price: math.MaxInt64 / 100, wantOverflow: true},
		{name: "a negative quantity is refused", qty: -1, price: 5, wantAnyErr: true},
		{name: "a negative price is refused", qty: 1, price: -5, wantAnyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := order.LineTotal(tt.qty, tt.price)
			switch {
			case tt.wantOverflow:
				if !errors.Is(err, order.ErrAmountOverflow) {
					t.Fatalf("LineTotal(%d, %d) = %d, %v; want ErrAmountOverflow", tt.qty, tt.price, got, err)
				}
			case tt.wantAnyErr:
				if err == nil {
					t.Fatalf("LineTotal(%d, %d) = %d; want an error", tt.qty, tt.price, got)
				}
			default:
				if err != nil || got != tt.want {
					t.Fatalf("LineTotal(%d, %d) = %d, %v; want %d", tt.qty, tt.price, got, err, tt.want)
				}
			}
		})
	}
}

func TestAddMinor(t *testing.T) {
	if got, err := order.AddMinor(math.MaxInt64-1, 1); err != nil || got != math.MaxInt64 {
		t.Fatalf("sum reaching MaxInt64 = %d, %v", got, err)
	}
	if _, err := order.AddMinor(math.MaxInt64, 1); !errors.Is(err, order.ErrAmountOverflow) {
		t.Fatalf("sum past MaxInt64: err = %v, want ErrAmountOverflow", err)
	}
	if _, err := order.AddMinor(-1, 1); err == nil {
		t.Fatal("negative amount accepted")
	}
}

func TestSumLinesReportsOverflowOfTheSum(t *testing.T) {
	lines := []order.Line{
		{SKU: "a", Quantity: 1, UnitPriceMinor: math.MaxInt64},
		{SKU: "b", Quantity: 1, UnitPriceMinor: 1},
	}
	if _, err := order.SumLines(lines); !errors.Is(err, order.ErrAmountOverflow) {
		t.Fatalf("err = %v, want ErrAmountOverflow", err)
	}
	lines[0].Quantity = 2
	if _, err := order.SumLines(lines); !errors.Is(err, order.ErrAmountOverflow) {
		t.Fatalf("line overflow: err = %v, want ErrAmountOverflow", err)
	}
	if got, err := order.SumLines(lines[1:]); err != nil || got != 1 {
		t.Fatalf("SumLines = %d, %v; want 1", got, err)
	}
}
