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
const fault = process.env.ORDERFLOW_FAULT_URL;
const LIVE_MS = 1000; // an event must show within this long of its command's answer

mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(path.join(tmpdir(), 'orderflow-chromium-'));
const problems = [];
let context;

function step(msg) { console.log(`[dashboard] ${msg}`); }

async function command(method, urlPath, body) {
  const res = await fetch(new URL(urlPath, api), {
    method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
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
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });

  step(`opening ${base}`);
  await page.goto(base);
  await page.locator('#conn[data-state="connected"]').waitFor({ timeout: 15000 });
  step('connected');
  const label = (await page.textContent('#conn-label')).trim();
  if (label !== 'Connected') throw new Error(`connection label is ${JSON.stringify(label)}`);
  // The counts are loaded from the query API before we compare.
  await page.waitForFunction(() => /^\d/.test(document.querySelector('[data-count="draft"]').textContent), null, { timeout: 10000 });

  const counts = () => page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('[data-count]')].map((el) => [el.dataset.count, Number(el.textContent.replace(/\D/g, ''))])));

  // live runs a command and checks, within LIVE_MS of its answer, that the
  // feed shows its events and the counts moved by `delta`.
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
      }, { id: out.order_id, types: eventTypes, want }, { timeout: LIVE_MS, polling: 'raf' });
    } catch {
      throw new Error(`${what}: within ${LIVE_MS} ms the page did not show ${eventTypes.join(', ')} for ${out.order_id} ` +
        `with counts ${JSON.stringify(want)}; it shows ${JSON.stringify(await counts())}`);
    }
    step(`${what}: ${eventTypes.join(', ')} and counts shown after ${Date.now() - t0} ms`);
    return out;
  }

  const created = await live('create', () => command('POST', '/v1/orders', {
    customer_id: 'cust-e2e', currency: 'EUR', items: [{ sku: 'MUG-01', name: 'Mug', quantity: 2, unit_price_minor: 1250 }],
  }), ['OrderCreated', 'ItemAdded'], { draft: +1 });
  const id = created.order_id;
  await live('place', () => command('POST', `/v1/orders/${id}/place`, {}), ['OrderPlaced'], { draft: -1, placed: +1 });
  await live('pay', () => command('POST', `/v1/orders/${id}/payments`, { amount_minor: 2500, currency: 'EUR', reference: 'pay-e2e' }),
    ['PaymentRecorded'], { placed: -1, paid: +1 });
  const chip = (await page.textContent('#legend')).trim();
  if (!/EUR/.test(chip) || !/25[.,]00/.test(chip)) throw new Error(`revenue legend shows ${JSON.stringify(chip)}, want EUR 25.00`);
  step(`revenue legend: ${chip}`);

  await page.waitForTimeout(2500); // one lag poll, and the row highlight fades
  const shot = path.resolve(artifacts, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);

  if (!fault) {
    step('ORDERFLOW_FAULT_URL not set: reconnect check not run');
  } else {
    // Cut the browser off, ship the order while it is away, let it back in:
    // it must resume from its last position and show the missed event once.
    const lastPosition = Number(await page.getAttribute('#feed-rows tr:first-child', 'data-position'));
    const before = await counts();
    await fetch(`${fault}/cut`, { method: 'POST' });
    await page.locator('#conn[data-state="reconnecting"]').waitFor({ timeout: 5000 });
    step(`cut: ${(await page.textContent('#conn-label')).trim()}`);
    await command('POST', `/v1/orders/${id}/ship`, { carrier: 'DHL', tracking_number: 'JD014600000001' });
    await fetch(`${fault}/restore`, { method: 'POST' });
    const notice = page.locator('#notice-text', { hasText: `Reconnected, resumed from position ${lastPosition}` });
    await notice.waitFor({ timeout: 10000 });
    step(`notice: ${(await notice.textContent()).trim()}`);
    await page.locator('#conn[data-state="connected"]').waitFor({ timeout: 5000 });
    await page.locator(`#feed-rows tr[data-order-id="${id}"][data-event-type="OrderShipped"]`).waitFor({ timeout: 5000 });
    const after = await counts();
    if (after.paid !== before.paid - 1 || after.shipped !== before.shipped + 1) {
      throw new Error(`after the resume counts are ${JSON.stringify(after)}, want paid ${before.paid - 1} and shipped ${before.shipped + 1}`);
    }
    const positions = await page.$$eval('#feed-rows tr', (rows) => rows.map((r) => Number(r.dataset.position)));
    if (new Set(positions).size !== positions.length) throw new Error(`the feed repeats a position: ${positions}`);
    if (positions.some((p, i) => i > 0 && p >= positions[i - 1])) throw new Error(`the feed is not in position order: ${positions}`);
    step(`resumed: OrderShipped shown once, feed positions ${positions.join(',')}`);
    const shot2 = path.resolve(artifacts, 'dashboard-reconnected.png');
    await page.screenshot({ path: shot2, fullPage: true });
    console.log(`screenshot: ${shot2}`);
  }

  if (problems.length) throw new Error(`the page reported problems:\n  ${problems.join('\n  ')}`);
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
