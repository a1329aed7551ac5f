// The dashboard's bearer token. Every API call and the WebSocket need one
// (README, "Authentication and authorization"). The page gets it in one of
// two ways, and keeps it in this tab's sessionStorage only (never a
// cookie, never localStorage: it leaves with the tab):
//   - a URL fragment, #token=<jwt>: what `make run` prints. A fragment is
//     never sent to a server, so no access log sees it; the page removes it
//     from the address bar at once;
//   - pasted into the form the page shows when it has none, or when the
//     server refused the one it had.
// The WebSocket cannot carry an Authorization header from a browser: the
// token goes as a subprotocol beside the protocol's own, and the hub
// answers with orderflow.v1 alone (streams/hub/doc.go).

const KEY = 'orderflow.token';

// STREAM_PROTOCOL is the hub's protocol name; BEARER_PREFIX marks the
// subprotocol carrying the token.
export const STREAM_PROTOCOL = 'orderflow.v1';
export const BEARER_PREFIX = 'bearer.';

// takeToken moves a #token= fragment into sessionStorage (and out of the
// address bar) and returns the tab's token, or null.
export function takeToken(loc = globalThis.location, store = globalThis.sessionStorage, history = globalThis.history) {
  const m = /(?:^#|&)token=([^&]+)/.exec(loc?.hash ?? '');
  if (m) {
    store.setItem(KEY, decodeURIComponent(m[1]));
    history?.replaceState(null, '', loc.pathname + loc.search);
  }
  return store.getItem(KEY);
}

export function setToken(token, store = globalThis.sessionStorage) {
  store.setItem(KEY, token.trim().replace(/^Bearer\s+/i, ''));
}

export function clearToken(store = globalThis.sessionStorage) {
  store.removeItem(KEY);
}

export function token(store = globalThis.sessionStorage) {
  return store.getItem(KEY);
}

// headers are a request's headers with the tab's token.
export function headers(extra = {}, store = globalThis.sessionStorage) {
  const t = token(store);
  return t ? { ...extra, Authorization: `Bearer ${t}` } : { ...extra };
}

// protocols are the WebSocket subprotocols that carry the tab's token.
export function protocols(store = globalThis.sessionStorage) {
  const t = token(store);
  return t ? [STREAM_PROTOCOL, BEARER_PREFIX + t] : [STREAM_PROTOCOL];
}
