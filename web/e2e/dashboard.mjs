// Browser test of the operations dashboard, in headless Debian Chromium via
// playwright-core (never a downloaded browser).
//
//   node web/e2e/dashboard.mjs <baseURL> <artifactDir>
//
// baseURL is where the browser opens the page. Optional environment:
//   ORDERFLOW_API_URL    where commands are sent (default: baseURL)
//   ORDERFLOW_FAULT_URL  a control endpoint that cuts the browser's
//                        connections (POST <url>/cut, POST <url>/restore);
//                        web/browser_test.go puts a TCP proxy between the
//                        browser and the server for this. Without it the
//                        reconnect check is not run, and the script says so.
//   ORDERFLOW_TOKEN      the bearer token (required): the page gets it pasted
//                        into its form, then in a #token= fragment (what
//                        make run prints); the script's commands send it too
//   ORDERFLOW_SUBJECT    the token's subject: the customer its orders are for
//   CHROMIUM             the browser binary (default /usr/bin/chromium)
//
// It exits non-zero on the first failed check and prints the screenshot
// paths it saved.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) {
  console.error('usage: node dashboard.mjs <baseURL> <artifactDir>');
  process.exit(2);
}
const api = process.env.ORDERFLOW_API_URL || base;
const token = process.env.ORDERFLOW_TOKEN;
const subject = process.env.ORDERFLOW_SUBJECT;
if (!token || !subject) {
  console.error('ORDERFLOW_TOKEN and ORDERFLOW_SUBJECT are required');
  process.exit(2);
}
// WAIT_MS bounds every wait for the page. It is a hang guard, not a latency
// target: on a machine whose cores are busy with other tests a healthy page
// can take seconds, and the measured times are printed instead (how fast the
// dashboard is belongs to `orderflow bench pipeline`, not to a test).
const WAIT_MS = 30_000;
// A request the network failed, as Chromium reports it on the console.
const NETWORK_FAILURE = /^Failed to load resource: net::ERR_|^WebSocket connection to .* failed/;

mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(path.join(tmpdir(), 'orderflow-chromium-'));
// Everything the page reports (script errors, failed loads, console errors)
// is recorded with the time it arrived. While the browser's connections are
// cut (from the cut until the page has shown that it recovered) failed
// network requests are the expected effect of the fault and are checked
// separately: the page must show them and recover. Anything else fails.
const reports = [];
const fault = { url: process.env.ORDERFLOW_FAULT_URL, cutAt: Infinity, healedAt: Infinity };
let context;

function step(msg) { console.log(`[dashboard] ${msg}`); }

async function command(method, urlPath, body) {
  const res = await fetch(new URL(urlPath, api), {
    method, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function main() {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 1000 },
    colorScheme: 'dark',
  });
  const page = context.pages()[0] ?? await context.newPage();
  // CSP violations, failed loads and script errors all land here.
  page.on('pageerror', (e) => reports.push({ at: Date.now(), text: `page error: ${e.message}`, network: false }));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    reports.push({ at: Date.now(), text: `console error: ${text} (${m.location().url || 'no url'})`, network: NETWORK_FAILURE.test(text) });
  });
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText;
    // ERR_ABORTED is the page cancelling a request itself (its health poll
    // gives up after a deadline and shows "unreachable"): handled, not a fault.
    if (why === 'net::ERR_ABORTED') { step(`page cancelled ${r.method()} ${r.url()}`); return; }
    reports.push({ at: Date.now(), text: `request failed: ${r.method()} ${r.url()}: ${why}`, network: true });
  });

  // Without a token the page asks for one and connects to nothing; the
  // token pasted into its form connects it.
  step(`opening ${base} without a token`);
  await page.goto(base);
  await page.locator('#signin').waitFor({ state: 'visible', timeout: WAIT_MS });
  const state = await page.getAttribute('#conn', 'data-state');
  if (state !== 'signed out') throw new Error(`without a token the connection state is ${state}`);
  step('the page asks for a token');
  await page.fill('#signin-token', token);
  await page.click('#signin button[type="submit"]');
  await page.locator('#conn[data-state="connected"]').waitFor({ timeout: WAIT_MS });
  if (await page.isVisible('#signin')) throw new Error('the token form is still shown once connected');
  step('connected with the pasted token');
  const label = (await page.textContent('#conn-label')).trim();
  if (label !== 'Connected') throw new Error(`connection label is ${JSON.stringify(label)}`);
  // The counts are loaded from the query API before we compare.
  await page.waitForFunction(() => /^\d/.test(document.querySelector('[data-count="draft"]').textContent), null, { timeout: WAIT_MS });

  const counts = () => page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('[data-count]')].map((el) => [el.dataset.count, Number(el.textContent.replace(/\D/g, ''))])));

  // live runs a command and waits until the feed shows its events and the
  // counts moved by `delta`; it prints how long that took.
  async function live(what, run, eventTypes, delta) {
    const before = await counts();
    const out = await run();
    const t0 = Date.now();
    const want = { ...before };
    for (const [s, d] of Object.entries(delta)) want[s] += d;
    try {
      await page.waitForFunction(({ id, types, want }) => {
        const rows = types.every((t) => document.querySelector(`#feed-rows tr[data-order-id="${id}"][data-event-type="${t}"]`));
        const got = Object.fromEntries([...document.querySelectorAll('[data-count]')]
          .map((el) => [el.dataset.count, Number(el.textContent.replace(/\D/g, ''))]));
        return rows && Object.entries(want).every(([s, n]) => got[s] === n);
      }, { id: out.order_id, types: eventTypes, want }, { timeout: WAIT_MS, polling: 'raf' });
    } catch {
      throw new Error(`${what}: within ${WAIT_MS} ms the page did not show ${eventTypes.join(', ')} for ${out.order_id} ` +
        `with counts ${JSON.stringify(want)}; it shows ${JSON.stringify(await counts())}`);
    }
    step(`${what}: ${eventTypes.join(', ')} and counts shown after ${Date.now() - t0} ms`);
    return out;
  }

  const created = await live('create', () => command('POST', '/v1/orders', {
    customer_id: subject, currency: 'EUR', items: [{ sku: 'MUG-01', name: 'Mug', quantity: 2, unit_price_minor: 1250 }],
  }), ['OrderCreated', 'ItemAdded'], { draft: +1 });
  const id = created.order_id;
  await live('place', () => command('POST', `/v1/orders/${id}/place`, {}), ['OrderPlaced'], { draft: -1, placed: +1 });
  await live('pay', () => command('POST', `/v1/orders/${id}/payments`, { amount_minor: 2500, currency: 'EUR', reference: 'pay-e2e' }),
    ['PaymentRecorded'], { placed: -1, paid: +1 });
  const chip = (await page.textContent('#legend')).trim();
  if (!/EUR/.test(chip) || !/25[.,]00/.test(chip)) throw new Error(`revenue legend shows ${JSON.stringify(chip)}, want EUR 25.00`);
  step(`revenue legend: ${chip}`);

  // The screenshot shows a page that has polled the pipeline's health once
  // (the lag table and readiness filled in), not one still loading.
  await healthy(page, 0);
  const shot = path.resolve(artifacts, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);

  if (!fault.url) {
    step('ORDERFLOW_FAULT_URL not set: reconnect check not run');
  } else {
    // Cut the browser off, ship the order while it is away, let it back in:
    // it must show that it is cut off (stream reconnecting, health
    // unreachable), resume from its last position, show the missed event
    // once, and poll its health again.
    const lastPosition = Number(await page.getAttribute('#feed-rows tr:first-child', 'data-position'));
    const before = await counts();
    fault.cutAt = Date.now();
    await fetch(`${fault.url}/cut`, { method: 'POST' });
    await page.locator('#conn[data-state="reconnecting"]').waitFor({ timeout: WAIT_MS });
    step(`cut: ${(await page.textContent('#conn-label')).trim()}`);
    // The next health poll fails: the page must say so rather than show the
    // last good answer as current.
    await page.locator('#ready-badge', { hasText: 'unreachable' }).waitFor({ timeout: WAIT_MS });
    step('cut: readiness shows unreachable');
    await command('POST', `/v1/orders/${id}/ship`, { carrier: 'DHL', tracking_number: 'JD014600000001' });
    const restoredAt = Date.now();
    await fetch(`${fault.url}/restore`, { method: 'POST' });
    const notice = page.locator('#notice-text', { hasText: `Reconnected, resumed from position ${lastPosition}` });
    await notice.waitFor({ timeout: WAIT_MS });
    step(`notice: ${(await notice.textContent()).trim()} (${Date.now() - restoredAt} ms after the restore)`);
    await page.locator('#conn[data-state="connected"]').waitFor({ timeout: WAIT_MS });
    await page.locator(`#feed-rows tr[data-order-id="${id}"][data-event-type="OrderShipped"]`).waitFor({ timeout: WAIT_MS });
    // Recovered: a health poll that started after the restore succeeded.
    await healthy(page, restoredAt);
    fault.healedAt = Date.now();
    step(`recovered: health polled again ${fault.healedAt - restoredAt} ms after the restore`);
    await waitCounts(page, { paid: before.paid - 1, shipped: before.shipped + 1 });
    const positions = await page.$$eval('#feed-rows tr', (rows) => rows.map((r) => Number(r.dataset.position)));
    if (new Set(positions).size !== positions.length) throw new Error(`the feed repeats a position: ${positions}`);
    if (positions.some((p, i) => i > 0 && p >= positions[i - 1])) throw new Error(`the feed is not in position order: ${positions}`);
    step(`resumed: OrderShipped shown once, feed positions ${positions.join(',')}`);
    const shot2 = path.resolve(artifacts, 'dashboard-reconnected.png');
    await page.screenshot({ path: shot2, fullPage: true });
    console.log(`screenshot: ${shot2}`);
  }

  // The link make run prints: a fresh tab (its own sessionStorage) opened
  // at #token=… connects, and the token leaves the address bar at once.
  const tab = await context.newPage();
  tab.on('pageerror', (e) => reports.push({ at: Date.now(), text: `second tab: page error: ${e.message}`, network: false }));
  await tab.goto(`${base}#token=${encodeURIComponent(token)}`);
  await tab.locator('#conn[data-state="connected"]').waitFor({ timeout: WAIT_MS });
  const left = await tab.evaluate(() => location.href);
  if (left.includes('token')) throw new Error(`the token stayed in the address bar: ${left}`);
  if (await tab.isVisible('#signin')) throw new Error('the token form is shown on a tab opened with #token=');
  step('a tab opened at #token= connects, and the fragment is gone from its address');
  await tab.close();

  // Failed requests while the connections were cut are the fault's
  // expected effect (the page showed it and recovered, checked above);
  // everything else the page reported is a defect.
  const expected = reports.filter((r) => r.network && r.at >= fault.cutAt && r.at <= fault.healedAt);
  const problems = reports.filter((r) => !expected.includes(r));
  if (expected.length) step(`the cut failed ${expected.length} request(s) in the page, as it should: ${[...new Set(expected.map((r) => r.text))].join('; ')}`);
  if (problems.length) throw new Error(`the page reported problems:\n  ${problems.map((r) => r.text).join('\n  ')}`);
}

// healthy waits until a health poll that started at or after `since` (ms)
// answered: readiness says ready and the lag table has rows.
async function healthy(page, since) {
  await page.waitForFunction((since) => {
    const note = document.getElementById('health-note');
    const at = Number(note.dataset.polledAt || 0);
    return at >= since && document.getElementById('ready-badge').textContent === 'ready' &&
      !/unavailable/.test(document.getElementById('lag-rows').textContent) &&
      document.querySelectorAll('#lag-rows tr').length > 0;
  }, since, { timeout: WAIT_MS });
}

// waitCounts waits until the status tiles show want (a subset of statuses).
async function waitCounts(page, want) {
  try {
    await page.waitForFunction((want) => Object.entries(want).every(([s, n]) =>
      Number(document.querySelector(`[data-count="${s}"]`).textContent.replace(/\D/g, '')) === n), want, { timeout: WAIT_MS });
  } catch {
    const got = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('[data-count]')]
      .map((el) => [el.dataset.count, el.textContent])));
    throw new Error(`after the resume the counts are ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

try {
  await main();
  step('ok');
} catch (err) {
  console.error(`[dashboard] FAIL: ${err.message}`);
  if (context) {
    const p = context.pages()[0];
    if (p) {
      const shot = path.resolve(artifacts, 'dashboard-failure.png');
      await p.screenshot({ path: shot, fullPage: true }).catch(() => {});
      console.error(`screenshot: ${shot}`);
    }
  }
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
