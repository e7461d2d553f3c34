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

/**
 * Closes a tab left offline as a user would: it sends nothing more.
 * (Chromium's emulated offline leaks as a page goes: a page being closed or
 * navigated away has been seen to hear "online" and send its waiting
 * request, past the emulation and request interception alike. Meanwhile
 * the server refuses the account's charges, storing nothing, as an
 * unreachable one would.)
 */
async function leave(page, account) {
  await server.faults(account, { fail_next: Array(8).fill({ status: 503 }) });
  await page.goto('about:blank');
  await page.close();
  await server.clearFaults(account);
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

/** Dispatches the namespace's Background Sync to the site's worker. */
async function sync({ session, registrations }, namespace) {
  const registrationId = await eventually('the worker registration', () => registrations.get(`${server.url}/`));
  await session.send('ServiceWorker.dispatchSyncEvent', {
    origin: server.url,
    registrationId,
    tag: `oncely:${namespace}`,
    lastChance: false,
  });
}

/** Tells the site's worker what a page knows (`{ user }`, `{ token }`), once it has heard. */
function tell(page, message) {
  return page.evaluate(
    (message) =>
      new Promise((heard) => {
        const channel = new MessageChannel();
        channel.port1.onmessage = () => heard();
        navigator.serviceWorker.controller.postMessage(message, [channel.port2]);
      }),
    message,
  );
}

/** Records offline in a new tab of `namespace` (opened with `options`), then leaves it; resolves with the pending intent. */
async function payOffline(context, namespace, options, request, account) {
  const page = await controlledTab(context, namespace);
  await page.evaluate(async (options) => {
    window.client = await oncely.Oncely.open(options);
  }, { namespace, storedHeaders: ['X-Account'], ...options });
  await context.setOffline(true);
  const recorded = await page.evaluate(async (request) => {
    client.send(request).catch(() => {});
    for (;;) {
      const [pending] = await client.pending();
      if (pending) return pending;
      await new Promise((wait) => setTimeout(wait, 20));
    }
  }, request);
  await leave(page, account);
  await context.setOffline(false);
  return recorded;
}

/** What the site's worker resumed so far (its `onResumed`), and a sync that waits for one more. */
function resumes(context, tools, namespace) {
  const [worker] = context.serviceWorkers();
  const seen = () => worker.evaluate(() => self.resumes);
  return {
    seen,
    async synced() {
      const count = (await seen()).length;
      await sync(tools, namespace);
      return eventually('the sync to be handled', async () => ((await seen()).length > count ? (await seen()).at(-1) : null));
    },
  };
}

test('paid offline, every tab closed, back online: the worker charges once', async () => {
  const context = await browser.newContext();
  const tools = await devtools(context);
  const namespace = unique('ns');
  const account = unique('sw-offline');
  // (Offline is emulated for the page only: the worker, asked for a sync as
  // the intent was recorded, may already be waiting for the tab's lock, and
  // charge as soon as the tab is gone.)
  const recorded = await payOffline(context, namespace, {}, charge(account, 'order-1'), account);
  assert.equal(recorded.intent, 'order-1');
  await sync(tools, namespace);
  const ledger = await eventually('the worker to charge', async () => {
    const rows = await server.ledger(account);
    return rows.length ? rows : null;
  });
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key, recorded.key, 'under the key the page recorded');
  const [worker] = context.serviceWorkers();
  const charged = await eventually('the worker to hear its outcome', async () => {
    const results = (await worker.evaluate(() => self.resumes)).flatMap((resume) => resume.results);
    return results.some((result) => result.status) ? results.filter((result) => result.status) : null;
  });
  assert.deepEqual(charged, [{ intent: 'order-1', key: recorded.key, code: undefined, status: 201 }], 'the worker charged it');
  // Another sync later finds nothing left: still one charge.
  await sync(tools, namespace);
  await new Promise((wait) => setTimeout(wait, 500));
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

test('the answer lost as the tab closes: charged once, and the next visit shows that charge', async () => {
  const context = await browser.newContext();
  const tools = await devtools(context);
  const namespace = unique('ns');
  const account = unique('sw-lost');
  // The server answers slowly: the tab is closed while the charge is made.
  await server.faults(account, { slow_ms: 1200 });
  const page = await controlledTab(context, namespace);
  const sent = page.waitForRequest((request) => request.method() === 'POST' && request.url().endsWith('/api/charges'));
  await page.evaluate(({ request, namespace }) => {
    window.paying = oncely.Oncely.open({ namespace, storedHeaders: ['X-Account'] }).then((client) => client.send(request));
  }, { request: charge(account, 'order-1'), namespace });
  await sent;
  await page.close();
  await sync(tools, namespace);
  const ledger = await eventually('the charge', async () => {
    const rows = await server.ledger(account);
    return rows.length ? rows : null;
  });
  // The next visit: nothing pending, and the intent replays the one charge.
  const next = await controlledTab(context, namespace);
  const visit = await eventually('the worker to record the outcome', () =>
    next.evaluate(async ({ request, namespace }) => {
      const client = await oncely.Oncely.open({ namespace, storedHeaders: ['X-Account'] });
      if ((await client.pending()).length) return null;
      const outcome = await client.send(request);
      return { status: outcome.status, replayed: outcome.replayed, key: outcome.key, body: await outcome.json() };
    }, { request: charge(account, 'order-1'), namespace }),
  );
  assert.equal(visit.status, 201);
  assert.equal(visit.replayed, true, 'replayed from the store, nothing sent');
  assert.equal(ledger.length, 1);
  assert.equal(visit.key, ledger[0].idempotency_key);
  assert.equal(visit.body.id, ledger[0].id, 'the first charge, shown');
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

test('a page and the worker resuming one intent at once: one send', async () => {
  const context = await browser.newContext();
  const tools = await devtools(context);
  const namespace = unique('ns');
  const account = unique('sw-race');
  await server.faults(account, { fail_next: [{ status: 503 }] });
  const page = await controlledTab(context, namespace);
  // Given up after one attempt (a 503): unsettled, for both to resume.
  const failed = await page.evaluate(async ({ request, namespace }) => {
    window.client = await oncely.Oncely.open({ namespace, storedHeaders: ['X-Account'], retry: { maxAttempts: 1 } });
    return client.send(request).catch((error) => error.code);
  }, { request: charge(account, 'order-1'), namespace });
  assert.equal(failed, 'gave_up');
  await server.faults(account, { slow_ms: 600 });
  const [resumed] = await Promise.all([page.evaluate(() => client.resume().then((results) => results.map((r) => r.replayed ?? r.code))), sync(tools, namespace)]);
  const outcome = await eventually('the intent settled', () =>
    page.evaluate(async (request) => ((await client.pending()).length ? null : client.send(request).then((o) => ({ attempts: o.attempts, replayed: o.replayed }))), charge(account, 'order-1')),
  );
  // One attempt refused (503), one that charged: a third would be a second send.
  assert.equal(outcome.attempts, 2, `one send between them (the page's resume: ${resumed})`);
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

test('a worker stopped mid-request, then a sync: the same key, one charge', async () => {
  const context = await browser.newContext();
  const tools = await devtools(context);
  const versions = [];
  tools.session.on('ServiceWorker.workerVersionUpdated', ({ versions: updated }) => {
    for (const version of updated) if (version.runningStatus === 'running') versions.push(version.versionId);
  });
  const namespace = unique('ns');
  const account = unique('sw-stopped');
  const recorded = await payOffline(context, namespace, {}, charge(account, 'order-1'), account);
  // The worker's request is slow; the worker is stopped while it is out.
  await server.faults(account, { slow_ms: 1500 });
  await sync(tools, namespace);
  await new Promise((wait) => setTimeout(wait, 500));
  const versionId = await eventually('a running worker', () => versions.at(-1));
  await tools.session.send('ServiceWorker.stopWorker', { versionId });
  await server.faults(account, { slow_ms: 0 });
  await sync(tools, namespace);
  const ledger = await eventually('the charge', async () => {
    const rows = await server.ledger(account);
    return rows.length ? rows : null;
  });
  await new Promise((wait) => setTimeout(wait, 1500));
  assert.equal((await server.ledger(account)).length, 1, 'one charge');
  assert.equal(ledger[0].idempotency_key, recorded.key, 'under the key the page recorded');
  await context.close();
});

test("the worker sends only its user's intents: signed out or another user, nothing", async () => {
  const context = await browser.newContext();
  const tools = await devtools(context);
  const namespace = unique('ns');
  const account = unique('sw-user');
  const recorded = await payOffline(context, namespace, { user: 'alice' }, charge(account, 'order-1'), account);
  const worker = resumes(context, tools, namespace);
  // Signed out: the worker knows no user, and sends nothing of Alice's.
  assert.deepEqual(await worker.synced(), { user: undefined, results: [] });
  // Bob signed in: nothing of Alice's either.
  const other = await controlledTab(context, namespace);
  await tell(other, { user: 'bob' });
  assert.deepEqual(await worker.synced(), { user: 'bob', results: [] });
  assert.equal((await server.ledger(account)).length, 0, 'nothing sent for Alice while she is away');
  // Alice back: her intent, under the key her page recorded, once.
  await tell(other, { user: 'alice' });
  assert.deepEqual((await worker.synced()).results, [{ intent: 'order-1', key: recorded.key, code: undefined, status: 201 }]);
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key, recorded.key);
  await context.close();
});

test('the worker sends with the credentials of its authorize hook, never stored ones; without them, nothing', async () => {
  const context = await browser.newContext();
  const tools = await devtools(context);
  const authorizations = [];
  // Every charge, the worker's included, as it leaves the browser.
  await context.route('**/api/charges', (route) => {
    if (route.request().method() === 'POST') authorizations.push(route.request().headers().authorization);
    return route.continue();
  });
  const namespace = unique('ns');
  const account = unique('sw-credentials');
  const request = charge(account, 'order-1');
  request.headers.authorization = 'Bearer from-the-page';
  const recorded = await payOffline(context, namespace, {}, request, account);
  const worker = resumes(context, tools, namespace);
  // The page's token was never stored: with none from its hook, the
  // worker sends nothing and the intent stays for later.
  const without = await worker.synced();
  assert.deepEqual(without.results.map((result) => [result.intent, result.code]), [['order-1', 'credentials']]);
  assert.equal((await server.ledger(account)).length, 0);
  // Signed in again: the hook's fresh token.
  const page = await controlledTab(context, namespace);
  await tell(page, { token: 'fresh' });
  assert.deepEqual((await worker.synced()).results, [{ intent: 'order-1', key: recorded.key, code: undefined, status: 201 }]);
  assert.equal(authorizations.at(-1), 'Bearer fresh');
  assert.deepEqual(new Set(await context.serviceWorkers()[0].evaluate(() => self.authorizedFor)), new Set([undefined]), 'the hook is told whose intents (here: nobody signed in)');
  assert.ok(!authorizations.includes(undefined), `no charge left without credentials: ${authorizations}`);
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

test('a resume asked for while one runs is a new one: an intent recorded meanwhile is sent', async () => {
  const context = await browser.newContext();
  const tools = await devtools(context);
  const namespace = unique('ns');
  const first = unique('sw-first');
  const second = unique('sw-second');
  // A tab holds the first intent's lock: the worker's resume of it waits.
  const holder = await controlledTab(context, namespace);
  await holder.evaluate(
    (name) => new Promise((held) => navigator.locks.request(name, () => (held(), new Promise((release) => (window.release = release))))),
    `oncely:${namespace}/order-a`,
  );
  await payOffline(context, namespace, {}, charge(first, 'order-a'), first);
  const [worker] = context.serviceWorkers();
  await worker.evaluate(() => {
    self.running = self.resume();
  });
  // Recorded while that resume (which listed order-a alone) waits.
  await payOffline(context, namespace, {}, charge(second, 'order-b'), second);
  await worker.evaluate(() => {
    self.asked = self.resume().then((results) => results.map((result) => [result.intent, result.status]));
  });
  await holder.evaluate(() => window.release());
  const asked = await worker.evaluate(() => self.asked);
  assert.deepEqual(asked, [['order-b', 201]], 'the resume asked for later sent the intent recorded later');
  assert.equal((await server.ledger(first)).length, 1);
  assert.equal((await server.ledger(second)).length, 1);
  await context.close();
});
