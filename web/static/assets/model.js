// The dashboard's state, without the DOM: status counts kept current from
// events, and revenue per minute. Pure enough to test in Node.

export const STATUSES = ['draft', 'placed', 'paid', 'shipped', 'delivered', 'cancelled'];

// The status an event moves an order from and to. null "from" means the
// order is new; '*' means "whatever it was" (cancel is allowed from draft,
// placed and paid). Events not listed (ItemAdded, RefundRecorded, ...) do
// not change the status.
const TRANSITIONS = {
  OrderCreated: [null, 'draft'],
  OrderPlaced: ['draft', 'placed'],
  PaymentRecorded: ['placed', 'paid'],
  OrderShipped: ['paid', 'shipped'],
  OrderDelivered: ['shipped', 'delivered'],
  OrderCancelled: ['*', 'cancelled'],
};

// MAX_TRACKED bounds the per-order memory of a page left open for days.
// Overflow policy: forget the least recently changed order; an order
// forgotten and later cancelled costs one refetch of the counts.
const MAX_TRACKED = 50000;

// parseStatusCounts accepts the shapes a status endpoint may answer with:
// {"statuses":{draft:n,...},"total":n} (queries/stats.go today),
// {"counts":{...}}, a bare {draft:n,...} or [{"status","orders"}].
// It returns {draft: n, ...} with all six statuses, or null.
export function parseStatusCounts(body) {
  let src = body;
  if (src && !Array.isArray(src) && typeof src === 'object') {
    src = src.statuses ?? src.counts ?? src;
  }
  const out = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  let seen = 0;
  if (Array.isArray(src)) {
    for (const row of src) {
      const n = Number(row?.orders ?? row?.count);
      if (STATUSES.includes(row?.status) && Number.isFinite(n)) { out[row.status] = n; seen++; }
    }
  } else if (src && typeof src === 'object') {
    for (const s of STATUSES) {
      const n = Number(src[s]);
      if (src[s] !== undefined && Number.isFinite(n)) { out[s] = n; seen++; }
    }
  }
  return seen > 0 ? out : null;
}

export class Orders {
  constructor() {
    /** @type {Record<string, number> | null} null until a snapshot arrives */
    this.counts = null;
    /** order id → {status, version, currency}; Map order = last change */
    this.known = new Map();
  }

  setSnapshot(counts) {
    this.counts = { ...counts };
  }

  currencyOf(orderId) {
    return this.known.get(orderId)?.currency;
  }

  // apply folds one event in. It returns what happened:
  //   {stale: true}            the order already moved past this version; ignored
  //   {from, to}               the status change (both undefined if none)
  //   {from, to, refetch}      counts cannot be moved exactly: reload them
  apply(ev) {
    const id = ev.stream_id;
    const prev = this.known.get(id);
    if (prev && typeof ev.version === 'number' && ev.version <= prev.version) {
      return { stale: true };
    }
    const rec = { status: prev?.status, version: ev.version ?? prev?.version ?? 0, currency: prev?.currency };
    if (ev.event_type === 'OrderCreated') rec.currency = ev.data?.currency;
    if (ev.event_type === 'PaymentRecorded' && ev.data?.currency) rec.currency ??= ev.data.currency;

    const t = TRANSITIONS[ev.event_type];
    let result = {};
    if (t) {
      const [expected, to] = t;
      // What we saw of this order wins over the lifecycle's assumption.
      const from = prev?.status ?? (expected === '*' ? undefined : expected);
      rec.status = to;
      if (from === to) {
        result = {};
      } else if (expected === '*' && from === undefined) {
        result = { from, to, refetch: true };
      } else {
        result = { from: from ?? undefined, to };
        if (this.counts) {
          if (from) this.counts[from] = Math.max(0, this.counts[from] - 1);
          this.counts[to] += 1;
        }
      }
    }
    this.known.delete(id);
    this.known.set(id, rec);
    if (this.known.size > MAX_TRACKED) this.known.delete(this.known.keys().next().value);
    return result;
  }
}

// Revenue sums PaymentRecorded amounts per minute and currency, for the last
// `minutes` minutes. Amounts are JSON numbers: exact up to 2^53 minor units
// per minute, far beyond any real minute of sales.
export class Revenue {
  constructor(minutes = 30) {
    this.minutes = minutes;
    /** epoch minute → Map(currency → minor) */
    this.buckets = new Map();
  }

  add(atMs, currency, minor) {
    if (!currency || typeof minor !== 'number' || !Number.isFinite(minor)) return;
    const m = Math.floor(atMs / 60000);
    let b = this.buckets.get(m);
    if (!b) this.buckets.set(m, (b = new Map()));
    b.set(currency, (b.get(currency) ?? 0) + minor);
  }

  prune(nowMs) {
    const first = Math.floor(nowMs / 60000) - this.minutes + 1;
    for (const m of this.buckets.keys()) if (m < first) this.buckets.delete(m);
  }

  // currencies lists the window's currencies, largest total first.
  currencies(nowMs) {
    this.prune(nowMs);
    const totals = new Map();
    for (const b of this.buckets.values()) {
      for (const [c, v] of b) totals.set(c, (totals.get(c) ?? 0) + v);
    }
    return [...totals].map(([currency, total]) => ({ currency, total }))
      .sort((a, b) => b.total - a.total || a.currency.localeCompare(b.currency));
  }

  // series is one point per minute, oldest first, the current minute last.
  series(currency, nowMs) {
    const last = Math.floor(nowMs / 60000);
    const out = [];
    for (let m = last - this.minutes + 1; m <= last; m++) {
      out.push({ minute: m, minor: this.buckets.get(m)?.get(currency) ?? 0 });
    }
    return out;
  }
}
