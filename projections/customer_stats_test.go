package projections

import "testing"

func TestCustomerStatsRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	checkRebuildEqualsLive(t, CustomerStats{})
}

func TestCustomerStatsCountsStatusesSpansAndMoneyPerCustomer(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	e.applyScenario(CustomerStats{}, handScenario())
	e.checkScenario(CustomerStats{}, map[string][]string{
		// customer, orders, draft, placed, paid, shipped, delivered, cancelled, first, last
		"customer_stats": {
			`(alice,2,0,0,0,1,0,1,"2025-03-01 10:00:00+00","2025-03-02 08:00:00+00")`,
			`(bob,2,1,0,0,0,0,1,"2025-03-01 23:59:59+00","2025-03-05 10:00:00+00")`,
			`(carol,1,0,0,0,0,1,0,"2025-03-01 12:00:00+00","2025-03-01 12:00:00+00")`,
		},
		// bob never paid: no row. alice's refund of A stays beside her payments.
		"customer_paid": {
			`(alice,EUR,2500,2000)`,
			`(carol,JPY,3000,0)`,
		},
	})
}
