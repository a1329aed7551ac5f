// Stream keeps one WebSocket to the hub (GET /v1/stream) subscribed to its
// channels, and reconnects after any drop, resuming each channel from the
// last position it delivered.
//
// Protocol (streams/hub):
//   → {"type":"subscribe","channel":c,"since":p?}
//   ← {"type":"subscribed","channel","position","recovered"}
//   ← {"type":"event","channel","position","stream_id","version","event_type","data","recorded_at"}
//   ← {"type":"error","code","message"}
// With since, the missed events come first, then subscribed, then live
// events. Positions strictly increase within a channel, so an event at or
// below the last position delivered is a repeat (a resume overlapping what
// was seen) and is dropped here: nothing downstream sees an order go
// backwards. streams/hub/doc.go is the protocol's reference.

// CLOSE_SLOW_CONSUMER is the close code the hub uses when this client could
// not keep up and its bounded queue overflowed.
export const CLOSE_SLOW_CONSUMER = 4008;
// CLOSE_TOKEN_EXPIRED: the token this connection was opened with expired.
// Reconnecting with it would be refused: the stream waits for a new one.
export const CLOSE_TOKEN_EXPIRED = 4001;

const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 5000;
// After this many failed attempts in a row the state is "offline".
const OFFLINE_AFTER_ATTEMPTS = 6;
// A socket that has not opened after this long is given up and retried.
const OPEN_TIMEOUT_MS = 10000;

// backoffMs is "equal jitter" exponential backoff: half the exponential
// delay plus a random share of the other half, capped near 5 s, so a crowd
// of dashboards dropped together does not come back together.
export function backoffMs(attempt, random = Math.random) {
  const d = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(d / 2 + random() * (d / 2));
}

export class Stream {
  /**
   * @param {object} o
   * @param {string} o.url ws:// or wss:// URL of /v1/stream
   * @param {string[]} o.channels
   * @param {(ev: object) => void} o.onEvent a new event, in position order per channel
   * @param {(s: {state: string, attempt: number, retryInMs?: number}) => void} o.onState
   * @param {(text: string, tone: string) => void} o.onNotice
   * @param {(channel: string) => void} o.onReset events may have been missed: reload snapshots
   * @param {() => string[]} [o.protocols] the subprotocols of each connection (the token's: auth.js)
   * @param {() => void} [o.onTokenExpired] the server closed with 4001; call retryNow with a new token
   * @param {typeof WebSocket} [o.WebSocket] the WebSocket class (tests pass a fake)
   */
  constructor(o) {
    this.o = o;
    this.last = new Map(); // channel → last position delivered (or subscribed at)
    this.attempt = 0;
    this.everConnected = false;
    this.ws = null;
    this.timer = null;
    this.pending = new Set();
    this.sentSince = new Map();
    this.dropReason = ''; // why the last connection ended, for the reconnect notice
    this.stats = { delivered: 0, duplicates: 0 };
    this.stopped = false; // after 4001, until retryNow
    globalThis.addEventListener?.('online', () => { if (!this.ws && !this.stopped) this.retryNow(); });
  }

  start() { this.connect(); }

  position(channel) { return this.last.get(channel); }

  retryNow() {
    clearTimeout(this.timer);
    this.stopped = false;
    const old = this.ws;
    this.ws = null; // its close is not a drop: onclose sees another socket
    old?.close();
    this.connect();
  }

  connect() {
    this.timer = null;
    const ws = new (this.o.WebSocket ?? globalThis.WebSocket)(this.o.url, this.o.protocols?.() ?? []);
    this.ws = ws;
    // A retry keeps the state dropped() chose, without the countdown.
    this.state(this.attempt === 0 ? 'connecting' : this.current);
    const openTimer = setTimeout(() => ws.close(), OPEN_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(openTimer);
      this.pending = new Set(this.o.channels);
      this.sentSince = new Map();
      for (const channel of this.o.channels) {
        const msg = { type: 'subscribe', channel };
        const since = this.last.get(channel);
        if (since !== undefined) msg.since = since;
        this.sentSince.set(channel, since);
        ws.send(JSON.stringify(msg));
      }
    };
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      this.handle(msg);
    };
    ws.onclose = (e) => {
      clearTimeout(openTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      this.dropped(e);
    };
  }

  handle(msg) {
    switch (msg.type) {
      case 'event': {
        const last = this.last.get(msg.channel);
        if (typeof msg.position !== 'number') return;
        if (last !== undefined && msg.position <= last) { this.stats.duplicates++; return; }
        this.last.set(msg.channel, msg.position);
        this.stats.delivered++;
        this.o.onEvent(msg);
        return;
      }
      case 'subscribed':
        this.subscribed(msg);
        return;
      case 'error':
        this.o.onNotice(`Server error ${msg.code ?? ''}: ${msg.message ?? 'no detail'}`.replace(' :', ':'), 'bad');
        return;
    }
  }

  subscribed(msg) {
    const ch = msg.channel;
    const since = this.sentSince.get(ch);
    const reconnect = this.everConnected;
    // subscribed.position is the last position the client now has: after a
    // recovery the missed events came before this frame; after a fresh
    // start (no since, or recovered:false) live events continue above it,
    // and it is the resume point even if no event arrives before a drop.
    if (typeof msg.position === 'number') {
      const last = this.last.get(ch);
      const fresh = since === undefined || msg.recovered === false;
      this.last.set(ch, fresh || last === undefined ? msg.position : Math.max(last, msg.position));
    }
    this.pending.delete(ch);
    if (reconnect) {
      const why = this.dropReason ? ` (after ${this.dropReason})` : '';
      if (since !== undefined && msg.recovered !== false) {
        this.o.onNotice(`Reconnected, resumed from position ${since}${why}`, 'good');
      } else {
        this.o.onNotice(`Reconnected, could not resume${since !== undefined ? ` from position ${since}` : ''}: reloaded${why}`, 'warn');
        this.o.onReset(ch);
      }
    }
    if (this.pending.size === 0) {
      this.dropReason = '';
      this.everConnected = true;
      this.attempt = 0;
      this.state('connected');
    }
  }

  dropped(e) {
    const where = [...this.last].map(([c, p]) => `${c} @ ${p}`).join(', ');
    if (e.code === CLOSE_TOKEN_EXPIRED) {
      this.dropReason = 'the token expired, close code 4001';
      this.o.onNotice(`The token expired (close code 4001): give a new one to resume${where ? ' from ' + where : ''}`, 'warn');
      this.stopped = true;
      this.state('signed out');
      this.o.onTokenExpired?.();
      return;
    }
    if (e.code === CLOSE_SLOW_CONSUMER) {
      this.dropReason = 'the server dropped this dashboard as a slow consumer, close code 4008';
      this.o.onNotice(`The server dropped this dashboard for falling behind (slow consumer, close code 4008); reconnecting${where ? ' from ' + where : ''}`, 'warn');
    } else if (this.everConnected && this.attempt === 0) {
      this.dropReason ||= `connection lost, close code ${e.code}${e.reason ? ': ' + e.reason : ''}`;
      this.o.onNotice(`Connection lost (close code ${e.code}${e.reason ? ': ' + e.reason : ''}); reconnecting`, 'warn');
    }
    this.attempt++;
    const wait = backoffMs(this.attempt);
    // Offline: the browser says so, or the server has been unreachable for
    // several attempts in a row (about 10 s).
    const offline = globalThis.navigator?.onLine === false || this.attempt >= OFFLINE_AFTER_ATTEMPTS;
    this.state(offline ? 'offline' : this.everConnected ? 'reconnecting' : 'connecting', wait);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  state(state, retryInMs) {
    this.current = state;
    this.o.onState({ state, attempt: this.attempt, retryInMs });
  }
}
