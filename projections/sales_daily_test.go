package projections

import "testing"

func TestSalesDailyRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	checkRebuildEqualsLive(t, SalesDaily{})
}

func TestSalesDailyCountsEachTransitionOnItsOwnUTCDay(t *testing.T) {
	t.Parallel()
	e := newProjEnv(t)
	e.applyScenario(SalesDaily{}, handScenario())
	e.checkScenario(SalesDaily{}, map[string][]string{
		// day, currency, placed_count, placed_minor, paid_count, revenue_minor,
		// cancelled_count, refunded_count, refunded_minor. A is placed on 03-01
		// but paid on 03-02; C, created a second before midnight, is placed on
		// 03-02; D, a draft, sells nothing.
		"sales_daily": {
			`(2025-03-01,EUR,1,2000,0,0,0,0,0)`,
			`(2025-03-01,JPY,1,3000,1,3000,0,0,0)`,
			`(2025-03-02,EUR,1,500,2,2500,0,0,0)`,
			`(2025-03-02,USD,1,750,0,0,0,0,0)`,
			`(2025-03-03,EUR,0,0,0,0,1,1,2000)`,
			`(2025-03-04,USD,0,0,0,0,1,0,0)`,
		},
	})
}
