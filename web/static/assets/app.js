// The operations dashboard: wires the stream, the model and the DOM.
// Everything it shows comes from this origin (see web/doc.go).

import { Stream } from './stream.js';
import * as auth from './auth.js';
import { Orders, Revenue, STATUSES, parseStatusCounts } from './model.js';
import { BarChart } from './chart.js';
import { formatMinor } from './money.js';

const CHANNEL = 'orders';
const FEED_ROWS = 200; // the feed keeps the newest rows; older ones are dropped
const POLL_MS = 2000;
const COUNTS_RETRY_MS = 5000;

const $ = (id) => document.getElementById(id);
const orders = new Orders();
const revenue = new Revenue(30);
let chartCurrency = null; // null: follow the largest currency
let eventsSeen = 0;

// ---- connection state ----------------------------------------------------

function showState({ state, attempt, retryInMs }) {
  const el = $('conn');
  el.dataset.state = state;
  const retry = retryInMs ? `, next in ${(retryInMs / 1000).toFixed(1)} s` : '';
  $('conn-label').textContent = {
    connecting: attempt ? `Connecting (attempt ${attempt}${retry})` : 'Connecting…',
    connected: 'Connected',
    reconnecting: `Reconnecting (attempt ${attempt}${retry})`,
    offline: `Offline, retrying (attempt ${attempt}${retry})`,
    'signed out': 'Signed out: needs a token',
  }[state] ?? state;
}

function notice(text, tone = 'info') {
  const n = $('notice');
  n.hidden = false;
  n.dataset.tone = tone;
  $('notice-text').textContent = text;
  const t = new Date();
  $('notice-time').dateTime = t.toISOString();
  $('notice-time').textContent = t.toLocaleTimeString();
}

// ---- status counts -------------------------------------------------------

let countsTimer = null;

async function loadCounts() {
  clearTimeout(countsTimer);
  try {
    const res = await fetch('/v1/stats/status', { cache: 'no-store', headers: auth.headers({ Accept: 'application/json' }) });
    if (res.status === 401) return refused(res);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const counts = parseStatusCounts(await res.json());
    if (!counts) throw new Error('unexpected answer');
    orders.setSnapshot(counts);
    $('counts-note').textContent = `loaded ${new Date().toLocaleTimeString()}, live since`;
    renderCounts();
  } catch (err) {
    $('counts-note').textContent = `counts unavailable (${err.message}); retrying`;
    countsTimer = setTimeout(loadCounts, COUNTS_RETRY_MS);
  }
}

function renderCounts(changed) {
  const c = orders.counts;
  for (const s of STATUSES) {
    const el = document.querySelector(`[data-count="${s}"]`);
    el.textContent = c ? c[s].toLocaleString() : '–';
    if (changed && changed.includes(s)) flash(el.parentElement);
  }
  if (c) {
    const total = STATUSES.reduce((a, s) => a + c[s], 0);
    $('counts-h').dataset.total = total;
    $('counts-note').textContent = `${total.toLocaleString()} order${total === 1 ? '' : 's'} · live`;
  }
}

function flash(el) {
  el.classList.remove('bump');
  void el.offsetWidth; // restart the animation
  el.classList.add('bump');
}

// ---- live feed -----------------------------------------------------------

const BADGE_TONE = {
  OrderCreated: 'draft', ItemAdded: 'neutral', ItemRemoved: 'neutral', OrderPlaced: 'placed',
  PaymentRecorded: 'paid', OrderShipped: 'shipped', OrderDelivered: 'delivered',
  OrderCancelled: 'cancelled', RefundRecorded: 'cancelled',
};

function detail(ev) {
  const d = ev.data ?? {};
  const cur = orders.currencyOf(ev.stream_id);
  switch (ev.event_type) {
    case 'OrderCreated': return `customer ${d.customer_id ?? '?'} · ${d.currency ?? ''}`;
    case 'ItemAdded': return `${d.quantity} × ${d.name ?? d.sku} at ${formatMinor(d.unit_price_minor, cur)}`;
    case 'ItemRemoved': return `removed ${d.sku}`;
    case 'OrderPlaced': return `${d.item_count} item${d.item_count === 1 ? '' : 's'} · total ${formatMinor(d.total_minor, cur)}`;
    case 'PaymentRecorded': return `${formatMinor(d.amount_minor, d.currency)} · ref ${d.reference ?? ''}`;
    case 'OrderShipped': return `${d.carrier ?? ''} ${d.tracking_number ?? ''}`.trim();
    case 'OrderDelivered': return 'delivered';
    case 'OrderCancelled': return `reason: ${d.reason ?? ''}`;
    case 'RefundRecorded': return `refund ${formatMinor(d.amount_minor, d.currency)}`;
    default: return JSON.stringify(d).slice(0, 120);
  }
}

function cell(tr, text, cls, title) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  if (title) td.title = title;
  tr.append(td);
  return td;
}

function addRow(ev, change) {
  const tr = document.createElement('tr');
  tr.dataset.orderId = ev.stream_id;
  tr.dataset.eventType = ev.event_type;
  tr.dataset.position = ev.position;
  tr.className = 'new';
  const at = ev.recorded_at ? new Date(ev.recorded_at) : new Date();
  cell(tr, at.toLocaleTimeString(), 'time', at.toISOString());
  cell(tr, String(ev.position), 'num mono');
  const badge = document.createElement('span');
  badge.className = 'badge';
  badge.dataset.tone = BADGE_TONE[ev.event_type] ?? 'neutral';
  badge.textContent = ev.event_type;
  cell(tr, '').append(badge);
  cell(tr, '…' + String(ev.stream_id).slice(-10), 'mono', `${ev.stream_id} v${ev.version}`);
  // An order first seen at its cancel has no known status before it.
  const from = change.from ?? (ev.event_type === 'OrderCreated' ? 'new' : '?');
  cell(tr, change.to ? `${from} → ${change.to}` : '', 'transition');
  cell(tr, detail(ev), 'detail');
  const body = $('feed-rows');
  body.prepend(tr);
  $('feed-empty').hidden = true;
  while (body.rows.length > FEED_ROWS) body.deleteRow(-1);
}

// ---- revenue chart -------------------------------------------------------

const chart = new BarChart($('chart'), (v) => String(v));

function renderChart() {
  const now = Date.now();
  const currencies = revenue.currencies(now);
  const current = currencies.some((c) => c.currency === chartCurrency) ? chartCurrency : currencies[0]?.currency;
  const legend = $('legend');
  legend.replaceChildren(...currencies.map(({ currency, total }) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'chip';
    b.setAttribute('aria-pressed', String(currency === current));
    b.textContent = `${currency} ${formatMinor(total, currency)}`;
    b.addEventListener('click', () => { chartCurrency = currency; renderChart(); });
    return b;
  }));
  const points = current ? revenue.series(current, now) : revenue.series('', now);
  chart.set(points, (v, compact) => (current ? formatMinor(v, current, { compact }) : String(v)), 'No payments since page load');
  const lastMin = points.at(-1)?.minor ?? 0;
  const total = currencies.find((c) => c.currency === current)?.total ?? 0;
  $('chart-summary').textContent = current
    ? `${current}: ${formatMinor(lastMin, current)} this minute, ${formatMinor(total, current)} in the last 30 minutes.`
    : 'No payments since page load.';
}

// ---- events --------------------------------------------------------------

// The model takes every event at once; the DOM is updated at most once per
// animation frame, so a burst of thousands of events costs one layout.
// pending holds the rows not drawn yet; bounded by FEED_ROWS (overflow
// policy: drop the oldest, which the feed would drop anyway), so a hidden
// tab, where frames do not run, does not grow it without end.
let pending = [];
const dirty = { counts: new Set(), chart: false };
let frame = 0;

function onEvent(ev) {
  eventsSeen++;
  const change = orders.apply(ev);
  if (change.stale) return;
  if (ev.event_type === 'PaymentRecorded') {
    const at = ev.recorded_at ? Date.parse(ev.recorded_at) : Date.now();
    revenue.add(Number.isFinite(at) ? at : Date.now(), ev.data?.currency, ev.data?.amount_minor);
    dirty.chart = true;
  }
  pending.push([ev, change]);
  if (pending.length > FEED_ROWS) pending = pending.slice(-FEED_ROWS);
  if (change.refetch) loadCounts();
  else if (change.to) [change.from, change.to].filter(Boolean).forEach((s) => dirty.counts.add(s));
  frame ||= requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const last = pending.at(-1)?.[0];
  for (const [ev, change] of pending) addRow(ev, change);
  pending = [];
  if (dirty.counts.size) renderCounts([...dirty.counts]);
  dirty.counts.clear();
  if (dirty.chart) renderChart();
  dirty.chart = false;
  $('feed-note').textContent = `channel ${CHANNEL} · ${eventsSeen.toLocaleString()} event${eventsSeen === 1 ? '' : 's'} since page load`;
  if (last) $('positions').textContent = `${CHANNEL} @ position ${last.position}`;
}

// ---- pipeline health -----------------------------------------------------

async function getJSON(url) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), POLL_MS - 200);
  try {
    const res = await fetch(url, { cache: 'no-store', signal: ctl.signal, headers: auth.headers({ Accept: 'application/json' }) });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    return { status: res.status, body };
  } finally {
    clearTimeout(t);
  }
}

function lagRow(name, state, tone, position, events, seconds) {
  const tr = document.createElement('tr');
  cell(tr, name, 'name');
  const badge = document.createElement('span');
  badge.className = 'badge';
  badge.dataset.tone = tone;
  badge.textContent = state;
  cell(tr, '').append(badge);
  cell(tr, fmtNum(position), 'num mono');
  const le = cell(tr, fmtNum(events), 'num mono');
  if (events > 1000) le.dataset.tone = 'warn';
  const ls = cell(tr, typeof seconds === 'number' ? seconds.toFixed(1) : '–', 'num mono');
  if (seconds > 5) ls.dataset.tone = 'warn';
  return tr;
}

const fmtNum = (v) => (typeof v === 'number' ? v.toLocaleString() : '–');

function stateTone(s) {
  if (/^(running|live|ok|caught.?up|up)$/i.test(s)) return 'good';
  if (/fail|error|stopped|dead/i.test(s)) return 'bad';
  return 'warn';
}

async function pollHealth() {
  const started = Date.now();
  if (!auth.token()) { setTimeout(pollHealth, POLL_MS); return; }
  try {
    const [proj, ready] = await Promise.allSettled([getJSON('/v1/projections'), getJSON('/readyz')]);
    renderProjections(proj);
    renderReady(ready);
    const note = $('health-note');
    note.textContent = `updated ${new Date().toLocaleTimeString()} · every 2 s`;
    // When the poll that produced what the panel shows began (ms): the
    // browser test waits for one that began after a fault ended.
    note.dataset.polledAt = started;
  } finally {
    setTimeout(pollHealth, POLL_MS);
  }
}

function renderProjections(r) {
  const rows = [];
  if (r.status === 'fulfilled' && r.value.status === 200 && r.value.body) {
    const { projections = [], relay } = r.value.body;
    if (relay) {
      const st = !relay.leader ? 'follower' : relay.kafka_up === false ? 'kafka down' : 'leader';
      rows.push(lagRow('relay → Kafka', st, st === 'kafka down' ? 'bad' : 'good', relay.checkpoint, relay.lag_events, relay.lag_seconds));
    }
    for (const p of projections) {
      rows.push(lagRow(p.name, p.state ?? '?', stateTone(p.state ?? ''), p.position, p.lag_events, p.lag_seconds));
    }
  } else {
    const tr = document.createElement('tr');
    const why = r.status === 'fulfilled' ? `HTTP ${r.value.status}` : 'unreachable';
    const td = cell(tr, `lag unavailable: /v1/projections ${why}`, 'muted');
    td.colSpan = 5;
    rows.push(tr);
  }
  $('lag-rows').replaceChildren(...rows);
}

function renderReady(r) {
  const badge = $('ready-badge');
  const list = $('checks');
  if (r.status !== 'fulfilled' || !r.value.body) {
    badge.textContent = 'unreachable';
    badge.dataset.tone = 'bad';
    list.replaceChildren();
    return;
  }
  const { status, checks = {} } = r.value.body;
  badge.textContent = status ?? `HTTP ${r.value.status}`;
  badge.dataset.tone = status === 'ready' ? 'good' : 'bad';
  list.replaceChildren(...Object.entries(checks).sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => {
    const li = document.createElement('li');
    li.dataset.tone = c.status === 'ok' ? 'good' : 'bad';
    const n = document.createElement('span');
    n.className = 'check-name';
    n.textContent = name;
    const d = document.createElement('span');
    d.className = 'check-detail';
    d.textContent = c.error ?? c.detail ?? c.status;
    li.append(n, d);
    return li;
  }));
}

// ---- start ---------------------------------------------------------------

const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
const stream = new Stream({
  url: `${proto}//${location.host}/v1/stream`,
  channels: [CHANNEL],
  protocols: auth.protocols,
  onEvent,
  onState: showState,
  onNotice: notice,
  onReset: () => loadCounts(),
  onTokenExpired: () => askForToken('The token expired. Paste a new one to resume where the feed stopped.'),
});

// ---- the token -----------------------------------------------------------

let started = false;

// askForToken shows the form (the feed keeps its positions: a new token
// resumes it exactly).
function askForToken(why) {
  $('signin').hidden = false;
  $('signout').hidden = true;
  if (why) $('signin-note').textContent = why;
  $('signin-token').focus();
  showState({ state: 'signed out', attempt: 0 });
}

// refused handles a 401: the server refused the tab's token.
async function refused(res) {
  let detail = '';
  try { detail = (await res.json()).detail ?? ''; } catch { /* not JSON */ }
  auth.clearToken();
  askForToken(`The server refused the token${detail ? `: ${detail}` : ''}. Paste another.`);
}

function begin() {
  $('signin').hidden = true;
  $('signout').hidden = false;
  loadCounts();
  if (started) { stream.retryNow(); return; }
  started = true;
  stream.start();
}

$('signin').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('signin-token').value.trim();
  if (!t) return;
  auth.setToken(t);
  $('signin-token').value = '';
  begin();
});
$('signout').addEventListener('click', () => {
  auth.clearToken();
  askForToken('Paste the token to use.');
});

renderChart();
pollHealth();
if (auth.takeToken()) begin();
else askForToken();
// The window slides even when nothing is paid.
setInterval(renderChart, 15000);
