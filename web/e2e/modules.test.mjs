// Unit tests of the dashboard's modules, run by `node --test` from
// web/browser_test.go. They need no browser: the modules touch no DOM.
import test from 'node:test';
import assert from 'node:assert/strict';

import { Orders, Revenue, parseStatusCounts } from '../static/assets/model.js';
import { Stream, backoffMs, CLOSE_SLOW_CONSUMER, CLOSE_TOKEN_EXPIRED } from '../static/assets/stream.js';
import * as auth from '../static/assets/auth.js';
import { formatMinor, minorDigits } from '../static/assets/money.js';

const ZERO = { draft: 0, placed: 0, paid: 0, shipped: 0, delivered: 0, cancelled: 0 };

test('status counts are read from every shape a status endpoint may answer with', () => {
  const want = { ...ZERO, draft: 2, paid: 1 };
  assert.deepEqual(parseStatusCounts({ statuses: { ...ZERO, draft: 2, paid: 1 }, total: 3 }), want);
  assert.deepEqual(parseStatusCounts({ counts: { draft: 2, paid: 1 } }), want);
  assert.deepEqual(parseStatusCounts([{ status: 'draft', orders: 2 }, { status: 'paid', orders: 1 }]), want);
  assert.equal(parseStatusCounts({ type: 'https://orderflow.dev/problems/internal' }), null);
  assert.equal(parseStatusCounts(null), null);
});

const ev = (stream_id, version, event_type, data = {}) => ({ stream_id, version, event_type, data });

test('events move an order through the counts, one status at a time', () => {
  const o = new Orders();
  o.setSnapshot({ ...ZERO, placed: 5 });
  assert.deepEqual(o.apply(ev('A', 1, 'OrderCreated', { currency: 'EUR' })), { from: undefined, to: 'draft' });
  assert.deepEqual(o.apply(ev('A', 2, 'ItemAdded')), {});
  assert.deepEqual(o.apply(ev('A', 3, 'OrderPlaced')), { from: 'draft', to: 'placed' });
  assert.deepEqual(o.apply(ev('A', 4, 'PaymentRecorded', { currency: 'EUR', amount_minor: 10 })), { from: 'placed', to: 'paid' });
  assert.deepEqual(o.counts, { ...ZERO, placed: 5, paid: 1 });
  assert.equal(o.currencyOf('A'), 'EUR');
});

test('an event at or below the version already seen for its order changes nothing', () => {
  const o = new Orders();
  o.setSnapshot(ZERO);
  o.apply(ev('A', 1, 'OrderCreated'));
  o.apply(ev('A', 2, 'OrderPlaced'));
  assert.deepEqual(o.apply(ev('A', 2, 'OrderPlaced')), { stale: true });
  assert.deepEqual(o.apply(ev('A', 1, 'OrderCreated')), { stale: true });
  assert.deepEqual(o.counts, { ...ZERO, placed: 1 });
});

test('a cancel moves the count from the status seen, or asks for a reload when none was seen', () => {
  const o = new Orders();
  o.setSnapshot({ ...ZERO, paid: 3 });
  o.apply(ev('A', 1, 'OrderCreated'));
  assert.deepEqual(o.apply(ev('A', 2, 'OrderCancelled')), { from: 'draft', to: 'cancelled' });
  assert.deepEqual(o.apply(ev('B', 7, 'OrderCancelled')), { from: undefined, to: 'cancelled', refetch: true });
  assert.deepEqual(o.counts, { ...ZERO, paid: 3, cancelled: 1 });
  // An order first seen mid-life follows the lifecycle from its event.
  assert.deepEqual(o.apply(ev('C', 5, 'OrderShipped')), { from: 'paid', to: 'shipped' });
  assert.deepEqual(o.counts, { ...ZERO, paid: 2, shipped: 1, cancelled: 1 });
});

test('revenue is summed per minute and currency over a sliding 30-minute window', () => {
  const r = new Revenue(30);
  const now = Date.UTC(2026, 0, 1, 12, 30, 30);
  r.add(now, 'EUR', 100);
  r.add(now - 1000, 'EUR', 50);
  r.add(now - 60_000, 'USD', 999);
  r.add(now - 31 * 60_000, 'EUR', 7);
  const s = r.series('EUR', now);
  assert.equal(s.length, 30);
  assert.equal(s.at(-1).minor, 150);
  assert.equal(s.reduce((a, p) => a + p.minor, 0), 150);
  assert.deepEqual(r.currencies(now), [{ currency: 'USD', total: 999 }, { currency: 'EUR', total: 150 }]);
});

test('money uses ISO 4217 minor units', () => {
  assert.equal(minorDigits('JPY'), 0);
  assert.equal(minorDigits('KWD'), 3);
  assert.equal(minorDigits('EUR'), 2);
  assert.match(formatMinor(1250, 'EUR'), /12[.,]50/);
  assert.match(formatMinor(1250, 'JPY'), /1,?250/);
  assert.match(formatMinor(1250, 'KWD'), /1[.,]250/);
  assert.match(formatMinor(1250, undefined), /minor units/);
});

test('backoff grows exponentially with jitter and is capped near 5 s', () => {
  assert.equal(backoffMs(1, () => 0), 125);
  assert.equal(backoffMs(1, () => 1), 250);
  assert.equal(backoffMs(3, () => 1), 1000);
  assert.equal(backoffMs(30, () => 1), 5000);
  assert.equal(backoffMs(30, () => 0), 2500);
});

// FakeSocket stands in for the browser's WebSocket.
class FakeSocket {
  static all = [];
  constructor(url, protocols) { this.url = url; this.protocols = protocols; this.sent = []; FakeSocket.all.push(this); }
  send(s) { this.sent.push(JSON.parse(s)); }
  close() { this.onclose?.({ code: 1006, reason: '' }); }
  open() { this.onopen(); }
  recv(msg) { this.onmessage({ data: JSON.stringify(msg) }); }
  drop(code, reason = '') { this.onclose({ code, reason }); }
}

function newStream(extra = {}) {
  FakeSocket.all = [];
  const log = { events: [], states: [], notices: [], resets: 0, expired: 0 };
  const s = new Stream({
    url: 'ws://x/v1/stream', channels: ['orders'], WebSocket: FakeSocket,
    onTokenExpired: () => log.expired++,
    ...extra,
    onEvent: (e) => log.events.push(e.position),
    onState: (st) => log.states.push(st.state),
    onNotice: (t) => log.notices.push(t),
    onReset: () => log.resets++,
  });
  s.start();
  return { s, log };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const event = (position) => ({ type: 'event', channel: 'orders', position, stream_id: 'A', version: position, event_type: 'X', data: {} });

test('the stream drops repeats, resumes from the last position after a slow-consumer close, and says so', async () => {
  const { s, log } = newStream();
  const ws1 = FakeSocket.all[0];
  ws1.open();
  assert.deepEqual(ws1.sent, [{ type: 'subscribe', channel: 'orders' }]);
  ws1.recv({ type: 'subscribed', channel: 'orders', position: 10, recovered: false });
  assert.equal(log.states.at(-1), 'connected');
  assert.equal(log.notices.length, 0, 'a first connection is not news');
  for (const p of [11, 12, 12, 11, 13]) ws1.recv(event(p));
  assert.deepEqual(log.events, [11, 12, 13]);

  ws1.drop(CLOSE_SLOW_CONSUMER, 'slow consumer: send queue full');
  assert.equal(log.states.at(-1), 'reconnecting');
  assert.match(log.notices.at(-1), /slow consumer/);
  await sleep(300); // attempt 1 waits at most 250 ms
  const ws2 = FakeSocket.all[1];
  assert.ok(ws2, 'reconnected');
  ws2.open();
  assert.deepEqual(ws2.sent, [{ type: 'subscribe', channel: 'orders', since: 13 }]);
  // The hub sends the missed events first, then subscribed, then live ones.
  ws2.recv(event(13));
  ws2.recv(event(14));
  assert.equal(log.states.at(-1), 'reconnecting', 'connected only once subscribed');
  ws2.recv({ type: 'subscribed', channel: 'orders', position: 14, recovered: true });
  assert.equal(log.states.at(-1), 'connected');
  assert.match(log.notices.at(-1), /^Reconnected, resumed from position 13/);
  assert.match(log.notices.at(-1), /slow consumer/);
  ws2.recv(event(14));
  ws2.recv(event(15));
  assert.deepEqual(log.events, [11, 12, 13, 14, 15]);
  assert.equal(s.stats.duplicates, 4);
  assert.equal(log.resets, 0);
});

test('a resume the server cannot honour reloads the snapshots and says so', async () => {
  const { log } = newStream();
  const ws1 = FakeSocket.all[0];
  ws1.open();
  ws1.recv({ type: 'subscribed', channel: 'orders', position: 100, recovered: false });
  ws1.recv(event(101));
  ws1.drop(1001, 'going away');
  await sleep(300);
  const ws2 = FakeSocket.all[1];
  ws2.open();
  ws2.recv({ type: 'subscribed', channel: 'orders', position: 5000, recovered: false });
  assert.match(log.notices.at(-1), /could not resume from position 101: reloaded/);
  assert.equal(log.resets, 1);
  ws2.recv(event(4000)); // below the new start: a repeat
  ws2.recv(event(5001));
  assert.deepEqual(log.events, [101, 5001]);
});

class MemoryStore {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

test('a #token= fragment moves into the tab\'s storage and out of the address bar', () => {
  const store = new MemoryStore();
  const replaced = [];
  const loc = { hash: '#token=eyJ.abc.def', pathname: '/', search: '?x=1' };
  assert.equal(auth.takeToken(loc, store, { replaceState: (_s, _t, url) => replaced.push(url) }), 'eyJ.abc.def');
  assert.deepEqual(replaced, ['/?x=1']);
  assert.deepEqual(auth.headers({ Accept: 'application/json' }, store), { Accept: 'application/json', Authorization: 'Bearer eyJ.abc.def' });
  assert.deepEqual(auth.protocols(store), ['orderflow.v1', 'bearer.eyJ.abc.def']);
  assert.equal(auth.takeToken({ hash: '', pathname: '/', search: '' }, store, null), 'eyJ.abc.def', 'kept for the tab');
  auth.setToken('Bearer  pasted.token.here ', store);
  assert.equal(auth.token(store), 'pasted.token.here');
  auth.clearToken(store);
  assert.deepEqual(auth.protocols(store), ['orderflow.v1']);
  assert.deepEqual(auth.headers({}, store), {});
});

test('the stream offers its token as a subprotocol, and waits for a new one after 4001', async () => {
  let tok = 'first';
  const { s, log } = newStream({ protocols: () => ['orderflow.v1', `bearer.${tok}`] });
  const ws = FakeSocket.all[0];
  assert.deepEqual(ws.protocols, ['orderflow.v1', 'bearer.first']);
  ws.open();
  ws.recv({ type: 'subscribed', channel: 'orders', position: 7, recovered: false });
  ws.drop(CLOSE_TOKEN_EXPIRED, 'token expired');
  await sleep(400); // past any backoff: no reconnect with the expired token
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(log.expired, 1);
  assert.equal(log.states.at(-1), 'signed out');
  tok = 'second';
  s.retryNow();
  assert.equal(FakeSocket.all.length, 2);
  const again = FakeSocket.all[1];
  assert.deepEqual(again.protocols, ['orderflow.v1', 'bearer.second']);
  again.open();
  assert.deepEqual(again.sent, [{ type: 'subscribe', channel: 'orders', since: 7 }], 'resumes from its position');
});
