// The demo checkout (www/) end to end in headless Chromium: the page, the
// package it pays through, its service worker (sw.js), the ledger window
// (ledger.html), and the reference server with its faults. Each test reads
// the ledger through GET /api/charges and saves a screenshot in
// target/demo-screenshots/ for a person to look at.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stage, unique, root } from '../pkg-tests/harness.mjs';

const SHOTS = join(root, 'target', 'demo-screenshots');
let staged, server, browser;

before(async () => {
  await mkdir(SHOTS, { recursive: true });
  staged = await stage(join(root, 'www'));
  ({ server, browser } = staged);
});

after(() => staged?.stop());

/** The checkout for `account` in a new tab of `context`, ready to pay, its
 *  service worker (www/sw.js) controlling it. */
async function checkout(context, account) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(`${server.url}/index.html?account=${account}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('body[data-worker="controlling"]');
  return page;
}

async function paid(page) {
  await page.waitForFunction(() => document.getElementById('state').dataset.tone === 'ok', null, { timeout: 60_000 });
  return {
    state: await page.textContent('#state'),
    key: (await page.textContent('#key')).trim(),
  };
}

/** Waits until the page's live ledger shows `count` rows. */
async function ledgerShows(page, count) {
  await page.waitForFunction((n) => document.getElementById('ledger').dataset.count === String(n), count, { timeout: 10_000 });
}

async function arm(page, fault) {
  const armed = page.waitForResponse((r) => r.url().endsWith('/api/faults') && r.request().method() === 'POST');
  await page.click(`.switch[data-fault="${fault}"]`);
  await armed;
}

function shot(page, name) {
  return page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

test('a double click on Pay: one charge', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('double');
  const page = await checkout(context, account);
  let posts = 0;
  page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/api/charges')) posts += 1; });
  await page.dblclick('#pay');
  const { state, key } = await paid(page);
  assert.match(state, /charged once/);
  await page.waitForSelector('#attempts >> text=joined the payment in flight');
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key, key);
  assert.equal(posts, 1, 'the second click sent nothing');
  await ledgerShows(page, 1);
  await shot(page, 'double-click');
  await context.close();
});

test('a lost response after the commit: one charge, and the page shows success', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('lost');
  const page = await checkout(context, account);
  await arm(page, 'drop');
  await page.click('#pay');
  const { state, key } = await paid(page);
  assert.match(state, /Paid .*charged once/);
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key, key);
  await ledgerShows(page, 1);
  await shot(page, 'lost-response');
  await context.close();
});

test('a reload during a slow payment: one charge, the same key before and after', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('reload');
  const page = await checkout(context, account);
  await arm(page, 'slow');
  await page.click('#pay');
  await page.waitForSelector('#attempts >> text=Attempt 1 sent');
  const before = (await page.textContent('#key')).trim();
  assert.match(before, /^[0-9A-Z]{26}$/);
  await shot(page, 'reload-before');
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('#attempts >> text=resuming under key');
  const { key } = await paid(page);
  assert.equal(key, before);
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key, before);
  await ledgerShows(page, 1);
  await shot(page, 'reload-after');
  await context.close();
});

test('a new order while the last one is paying: its answer stays with the order it paid', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('replaced');
  const page = await checkout(context, account);
  await arm(page, 'slow');
  await page.click('#pay');
  await page.click('#new-order');
  await page.waitForSelector('#attempts >> text=previous order’s payment ended', { timeout: 30_000 });
  assert.equal((await server.ledger(account)).length, 1, 'the first order was charged once');
  assert.match(await page.textContent('#pay'), /^Pay /, 'the new order is not paid');
  assert.equal(await page.isDisabled('#pay'), false);
  assert.match(await page.textContent('#state'), /Not paid yet/);
  await shot(page, 'new-order-while-paying');
  await context.close();
});

test('two tabs paying the same cart at once: one charge', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('tabs');
  const first = await checkout(context, account);
  const second = await checkout(context, account);
  await arm(first, 'slow');
  await Promise.all([first.click('#pay'), second.click('#pay')]);
  const [a, b] = await Promise.all([paid(first), paid(second)]);
  assert.equal(a.key, b.key);
  // One tab's own call replays the other's payment; it may show the payment
  // the other tab made (their shared cart) before its call has the lock.
  const replays = (tab) => tab.waitForFunction(() => /replayed/.test(document.getElementById('state').textContent), null, { timeout: 30_000 });
  await Promise.any([replays(first), replays(second)]).catch(() => assert.fail('neither tab replays the other’s payment'));
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key, a.key);
  await Promise.all([ledgerShows(first, 1), ledgerShows(second, 1)]);
  await shot(first, 'two-tabs-first');
  await shot(second, 'two-tabs-second');
  await context.close();
});

test('offline, pay, back online: one charge once online', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('offline');
  const page = await checkout(context, account);
  await context.setOffline(true);
  await page.click('#pay');
  await page.waitForFunction(() => /Offline/.test(document.getElementById('state').textContent));
  assert.equal((await server.ledger(account)).length, 0, 'nothing charged while offline');
  await shot(page, 'offline-waiting');
  await context.setOffline(false);
  const { key } = await paid(page);
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key, key);
  await ledgerShows(page, 1);
  await shot(page, 'offline-then-online');
  await context.close();
});

test('an order replaced while its payment waits offline: that payment still finishes, once; the new order is paid under a new key', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('replaced-offline');
  const page = await checkout(context, account);
  await context.setOffline(true);
  await page.click('#pay');
  await page.waitForFunction(() => /Offline/.test(document.getElementById('state').textContent));
  const replaced = (await page.textContent('#key')).trim();
  await page.click('#new-order');
  // The tab goes away with the old payment still waiting for the network:
  // a new order does not cancel it. The service worker (or the next
  // visit, whichever comes first) finishes it under its key.
  await page.close();
  await context.setOffline(false);
  const next = await checkout(context, account);
  await ledgerShows(next, 1);
  assert.deepEqual((await server.ledger(account)).map((row) => row.idempotency_key), [replaced]);
  assert.match(await next.textContent('#pay'), /^Pay /, 'the new order is not paid');
  await next.click('#pay');
  const { key } = await paid(next);
  assert.notEqual(key, replaced);
  assert.deepEqual((await server.ledger(account)).map((row) => row.idempotency_key), [replaced, key]);
  await ledgerShows(next, 2);
  await shot(next, 'replaced-order-finished');
  await context.close();
});

test('the "Go offline" switch holds the payment until "Back online": one charge', async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const account = unique('switch');
  const page = await checkout(context, account);
  await page.click('.switch[data-fault="offline"]');
  assert.equal(await page.getAttribute('.switch[data-fault="offline"]', 'aria-pressed'), 'true');
  await page.click('#pay');
  await page.waitForFunction(() => /Offline/.test(document.getElementById('state').textContent));
  assert.equal((await server.ledger(account)).length, 0);
  await page.click('.switch[data-fault="offline"]');
  const { key } = await paid(page);
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key, key);
  await ledgerShows(page, 1);
  await shot(page, 'offline-switch-narrow');
  await context.close();
});

test('the keyboard alone can pay: Tab to Pay, Enter', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('keyboard');
  const page = await checkout(context, account);
  let focused = '';
  for (let presses = 0; presses < 25 && focused !== 'pay'; presses += 1) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement?.id ?? '');
  }
  assert.equal(focused, 'pay', 'Pay is reachable with Tab');
  await page.keyboard.press('Enter');
  await paid(page);
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

/** The ledger window the checkout's "Close the tab" switch opens (slowing
 *  the server unless the tab is offline), once it and the switch are set. */
async function closeTheTab(page) {
  const [ledger] = await Promise.all([page.context().waitForEvent('page'), page.click('#close-tab')]);
  ledger.on('pageerror', (error) => console.error('ledger page error:', error));
  await ledger.waitForSelector('body[data-ready="true"]');
  assert.match(ledger.url(), /\/ledger\.html\?account=/);
  await page.waitForSelector('#close-tab-note:not([hidden])');
  return ledger;
}

/** The service worker's notice in the ledger window about the payment under `key`. */
async function workerNotice(ledger, key) {
  const notice = await ledger.waitForSelector(`#notices li[data-key="${key}"]`, { timeout: 30_000 });
  return { tone: await notice.getAttribute('class'), text: await notice.textContent() };
}

/** The POSTs to /api/charges of `page` and of the service workers of its context. */
function chargesSent(page) {
  const sent = { page: 0, worker: 0 };
  const charge = (request) => request.method() === 'POST' && request.url().endsWith('/api/charges');
  page.on('request', (request) => { if (charge(request)) sent.page += 1; });
  page.context().on('request', (request) => { if (charge(request) && request.serviceWorker()) sent.worker += 1; });
  return sent;
}

test('close the tab while a slow payment is out: the ledger window shows one charge, under the key the tab showed', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('close-slow');
  const page = await checkout(context, account);
  const ledger = await closeTheTab(page);
  assert.equal(await page.getAttribute('.switch[data-fault="slow"]', 'aria-pressed'), 'true', 'the scenario slows the server');
  await page.click('#pay');
  await page.waitForSelector('#attempts >> text=Attempt 1 sent');
  const key = (await page.textContent('#key')).trim();
  assert.match(key, /^[0-9A-Z]{26}$/);
  await ledger.waitForSelector(`#waiting li[data-key="${key}"]`);
  await shot(page, 'close-tab-slow-checkout');
  await page.close();
  const notice = await workerNotice(ledger, key);
  assert.match(notice.tone, /\bok\b/);
  assert.match(notice.text, /service worker finished order #\w+’s payment/);
  await ledgerShows(ledger, 1);
  await ledger.waitForSelector('#waiting-empty:not([hidden])');
  assert.deepEqual((await server.ledger(account)).map((row) => row.idempotency_key), [key]);
  await shot(ledger, 'close-tab-slow-ledger');
  // Nothing more comes of it.
  await new Promise((wait) => setTimeout(wait, 1500));
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

/** Pays in `page`, its "Go offline" switch on: the payment waits, shown in
 *  the `ledger` window, nothing charged; then closes the tab. The key. */
async function payOfflineThenClose(page, ledger, account, name) {
  await page.click('#pay');
  await page.waitForFunction(() => /Offline.*service worker/.test(document.getElementById('state').textContent));
  const key = (await page.textContent('#key')).trim();
  await ledger.waitForSelector(`#waiting li[data-key="${key}"]`);
  assert.equal((await server.ledger(account)).length, 0, 'nothing charged while the tab is offline');
  await shot(page, `${name}-checkout`);
  await shot(ledger, `${name}-waiting`);
  await page.close();
  return key;
}

/** The `ledger` window shows the payment under `key` charged once, sent
 *  by the service worker alone (the tab's offline is its own: the worker
 *  is online, and sends as soon as the tab's lock on the payment is gone). */
async function chargedByTheWorker(ledger, account, key, sent) {
  const notice = await workerNotice(ledger, key);
  assert.match(notice.text, /service worker finished order #\w+’s payment after its tab was closed: the server charged it \(HTTP 201\)/);
  await ledgerShows(ledger, 1);
  await ledger.waitForSelector('#waiting-empty:not([hidden])');
  assert.deepEqual((await server.ledger(account)).map((row) => row.idempotency_key), [key]);
  assert.deepEqual(sent, { page: 0, worker: 1 }, 'the worker sent the one request');
}

test('close the tab while offline: the service worker sends the payment, once; the checkout reopened shows it paid, replayed', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const account = unique('close-offline');
  const page = await checkout(context, account);
  const sent = chargesSent(page);
  await page.click('.switch[data-fault="offline"]');
  const ledger = await closeTheTab(page);
  assert.equal(await page.getAttribute('.switch[data-fault="slow"]', 'aria-pressed'), 'false', 'offline, the payment waits: no need to slow the server');
  const key = await payOfflineThenClose(page, ledger, account, 'close-tab-offline');
  await chargedByTheWorker(ledger, account, key, sent);
  await shot(ledger, 'close-tab-offline-ledger');
  // The checkout again: the payment shown done, replayed from this
  // browser's record; nothing sent.
  const again = await checkout(context, account);
  const shown = await paid(again);
  assert.equal(shown.key, key);
  assert.match(shown.state, /Paid .*charged once.*replayed/);
  await again.waitForSelector('#attempts >> text=stored outcome was replayed, nothing sent');
  assert.equal(await again.isDisabled('#pay'), true);
  await ledgerShows(again, 1);
  assert.equal((await server.ledger(account)).length, 1);
  assert.equal(sent.worker, 1);
  await shot(again, 'close-tab-offline-reopened');
  await context.close();
});

test('without Background Sync (as in Firefox and Safari), the closing tab hands its payment to the service worker: one charge', async () => {
  const context = await browser.newContext({ viewport: { width: 640, height: 820 } });
  const account = unique('close-nosync');
  const page = await checkout(context, account);
  // No sync is asked for as the payment is recorded: only the message
  // the tab sends its worker as it goes (pagehide) starts the resume.
  await page.evaluate(() => Object.defineProperty(ServiceWorkerRegistration.prototype, 'sync', { get: () => undefined }));
  const sent = chargesSent(page);
  await page.click('.switch[data-fault="offline"]');
  const [ledger] = await Promise.all([context.waitForEvent('page'), page.click('#watch-ledger')]);
  await ledger.waitForSelector('body[data-ready="true"]');
  const key = await payOfflineThenClose(page, ledger, account, 'close-tab-no-sync');
  await chargedByTheWorker(ledger, account, key, sent);
  await context.close();
});
