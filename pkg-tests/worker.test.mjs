// The package's service-worker part (pkg/worker.js, `serve`) in headless
// Chromium against the reference server: a payment a closed tab left is
// finished by the worker, once. Background Sync is dispatched through the
// DevTools protocol (ServiceWorker.dispatchSyncEvent), as the browser would
// once it is back online.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { stage, unique, root } from './harness.mjs';

let staged, server, browser;

before(async () => {
  staged = await stage(join(root, 'pkg-tests', 'site'));
  ({ server, browser } = staged);
});

after(() => staged?.stop());

function charge(account, intent) {
  return {
    intent,
    method: 'POST',
    url: '/api/charges',
    headers: { 'content-type': 'application/json', 'x-account': account },
    body: JSON.stringify({ amount: 4200, currency: 'eur' }),
  };
}

/** A tab controlled by the site's worker for `namespace`, the package loaded as `window.oncely`. */
async function controlledTab(context, namespace) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(`${server.url}/index.html`);
  await page.evaluate(async (namespace) => {
    await navigator.serviceWorker.register(`/sw.js?ns=${namespace}`, { type: 'module' });
    await navigator.serviceWorker.ready;
    while (!navigator.serviceWorker.controller) await new Promise((wait) => setTimeout(wait, 20));
    window.oncely = await import('/pkg/index.js');
  }, namespace);
  return page;
}

/** The DevTools session of a tab outside the app, and its worker registrations as they come. */
async function devtools(context) {
  const blank = await context.newPage();
  const session = await context.newCDPSession(blank);
  const registrations = new Map();
  session.on('ServiceWorker.workerRegistrationUpdated', ({ registrations: updated }) => {
    for (const registration of updated) registrations.set(registration.scopeURL, registration.registrationId);
  });
  await session.send('ServiceWorker.enable');
  return { session, registrations };
}

async function eventually(what, check, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((wait) => setTimeout(wait, 100));
  }
}

test('paid offline, every tab closed, back online: the worker charges once', async () => {
  const context = await browser.newContext();
  const { session, registrations } = await devtools(context);
  const namespace = unique('ns');
  const account = unique('sw-offline');
  const page = await controlledTab(context, namespace);
  await page.evaluate(async (namespace) => {
    window.client = await oncely.Oncely.open({ namespace, storedHeaders: ['X-Account'] });
  }, namespace);
  await context.setOffline(true);
  const recorded = await page.evaluate(async ({ request }) => {
    // Offline: the send records the intent, then waits for the network.
    client.send(request).catch(() => {});
    for (;;) {
      const [pending] = await client.pending();
      if (pending) return pending;
      await new Promise((wait) => setTimeout(wait, 20));
    }
  }, { request: charge(account, 'order-1') });
  assert.equal(recorded.intent, 'order-1');
  await page.close();
  assert.equal((await server.ledger(account)).length, 0, 'nothing sent while offline');

  await context.setOffline(false);
  const scope = `${server.url}/`;
  const registrationId = await eventually('the worker registration', () => registrations.get(scope));
  await session.send('ServiceWorker.dispatchSyncEvent', {
    origin: server.url,
    registrationId,
    tag: `oncely:${namespace}`,
    lastChance: false,
  });
  const ledger = await eventually('the worker to charge', async () => {
    const rows = await server.ledger(account);
    return rows.length ? rows : null;
  });
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key, recorded.key, 'under the key the page recorded');
  // Another sync later finds nothing left: still one charge.
  await session.send('ServiceWorker.dispatchSyncEvent', { origin: server.url, registrationId, tag: `oncely:${namespace}`, lastChance: false });
  await new Promise((wait) => setTimeout(wait, 500));
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});
