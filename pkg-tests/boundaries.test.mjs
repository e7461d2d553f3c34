// The promise at its boundaries, in the npm package in Chromium: who sends
// (credentials, the signed-in user), when (retention), how a caller stops
// waiting, what is stored, and what a page's policy refuses. Each test
// fails without the rule it names.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { stage, unique, root, testPage, countCharges, storedText } from './harness.mjs';

let staged, server, browser;

before(async () => {
  staged = await stage(join(root, 'pkg-tests', 'site'));
  ({ server, browser } = staged);
});

after(() => staged?.stop());

/** A new tab on the test page, with the package loaded as `window.oncely`. */
const tab = (context) => testPage(server, context);

/** A charge with no account header: the account is the `account` cookie. */
function charge(intent, amount = 4200) {
  return {
    intent,
    url: '/api/charges',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ amount, currency: 'eur' }),
  };
}


/** Waits until the ledger of `account` holds `rows` charges. */
async function charged(account, rows) {
  for (let i = 0; i < 100 && (await server.ledger(account)).length < rows; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal((await server.ledger(account)).length, rows);
}

async function signIn(context, account) {
  await context.addCookies([{ name: 'account', value: account, url: server.url }]);
}

test("one browser, two users: bob's session never resumes alice's lost payment", async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const count = countCharges(page);
  const [alice, bob] = [unique('alice'), unique('bob')];
  const namespace = unique('shop');
  // Alice pays; the answer is lost after the charge, and she gives up.
  await signIn(context, alice);
  await server.faults(alice, { slow_ms: 600 });
  const key = await page.evaluate(async ({ request, namespace, alice }) => {
    const client = await oncely.Oncely.open({ namespace, user: alice, retry: { maxAttempts: 1, attemptTimeoutMs: 200 } });
    const error = await client.send(request).catch((e) => e);
    return [error.code, error.key];
  }, { request: charge('order-1'), namespace, alice });
  assert.equal(key[0], 'gave_up');
  await charged(alice, 1);
  await server.faults(alice, { slow_ms: 0 });

  // Bob signs in on the same browser: his session resumes nothing of hers.
  await signIn(context, bob);
  const posts = count.posts;
  const bobs = await page.evaluate(async ({ request, namespace, bob }) => {
    const client = await oncely.Oncely.open({ namespace, user: bob });
    const pending = await client.pending();
    const resumed = await client.resume();
    const same = await client.send(request).catch((e) => e.code);
    return { pending: pending.length, resumed: resumed.length, same };
  }, { request: charge('order-1'), namespace, bob });
  assert.deepEqual(bobs, { pending: 0, resumed: 0, same: 'conflict' });
  assert.equal(count.posts, posts, 'nothing sent with bob\'s cookie');
  assert.equal((await server.ledger(bob)).length, 0);

  // Alice again: her payment resumes under its key; the server replays it.
  await signIn(context, alice);
  const hers = await page.evaluate(async ({ namespace, alice }) => {
    const client = await oncely.Oncely.open({ namespace, user: alice });
    return (await client.resume()).map((o) => [o.key, o.status]);
  }, { namespace, alice });
  assert.deepEqual(hers, [[key[1], 201]]);
  assert.equal((await server.ledger(alice)).length, 1);
  await context.close();
});

test('a resume without the credentials an intent was sent with sends nothing; "credentials", reported and emitted', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const count = countCharges(page);
  const account = unique('creds');
  await server.faults(account, { slow_ms: 600 });
  const namespace = unique('ns');
  await page.evaluate(async ({ request, namespace, account }) => {
    // The attempt times out while the server charges: the answer is lost.
    const signedIn = await oncely.Oncely.open({ namespace, retry: { maxAttempts: 1, attemptTimeoutMs: 200 }, authorize: () => ({ 'x-account': account, authorization: 'Bearer t' }) });
    await signedIn.send(request).catch(() => {});
  }, { request: charge('order-1'), namespace, account });
  await charged(account, 1);
  await server.faults(account, { slow_ms: 0 });
  const result = await page.evaluate(async ({ namespace, account }) => {
    const signedIn = await oncely.Oncely.open({ namespace, authorize: () => ({ 'x-account': account, authorization: 'Bearer t' }) });
    // Signed out: no hook. resume() reports the intent it could not send.
    const signedOut = await oncely.Oncely.open({ namespace });
    const failed = [];
    signedOut.on('failed', (event) => failed.push(event.error.code));
    const [error] = await signedOut.resume();
    const pending = (await signedOut.pending()).length;
    // Signed in again: sent, and the server replays the one charge.
    const [outcome] = await signedIn.resume();
    return {
      error: [error instanceof oncely.OncelyError, error.code, /authorization/.test(error.message), /x-account/.test(error.message)],
      failed,
      pending,
      outcome: [outcome.status, outcome.headers.get('idempotent-replayed')],
    };
  }, { namespace, account });
  assert.deepEqual(result, {
    error: [true, 'credentials', true, true],
    failed: ['credentials'],
    pending: 1,
    outcome: [201, 'true'],
  });
  assert.equal(count.posts, 2, 'the first attempt and the resume with credentials; nothing without');
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

test('only the allow-listed headers reach IndexedDB: no credential in any raw record', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('raw');
  const namespace = unique('ns');
  const raw = await page.evaluate(async ({ request, namespace, account }) => {
    const client = await oncely.Oncely.open({ namespace, storedHeaders: ['X-Trace'], secretHeaders: ['User-Agent'] });
    await client.send({
      ...request,
      headers: {
        ...request.headers,
        'x-account': account,
        'x-api-key': 'APIKEYSECRET',
        'api-key': 'BAREKEYSECRET',
        'x-csrf-token': 'CSRFSECRET',
        'x-session-token': 'TOKENSECRET',
        'x-client-secret': 'CLIENTSECRET',
        'x-customer': 'CUSTOMERSECRET',
        'x-trace': 'visible-trace',
      },
    });
    const refused = await client.send({ ...request, intent: 'by-query', url: '/api/charges?api_key=QUERYSECRET' }).catch((e) => e.code);
    return { refused };
  }, { request: charge('order-1'), namespace, account });
  const text = await storedText(page, namespace);
  assert.equal(raw.refused, 'invalid');
  assert.ok(text.includes('visible-trace') && text.includes('application/json'), 'the records were read');
  for (const secret of ['APIKEYSECRET', 'BAREKEYSECRET', 'CSRFSECRET', 'TOKENSECRET', 'CLIENTSECRET', 'CUSTOMERSECRET', 'QUERYSECRET']) {
    assert.ok(!text.includes(secret), `${secret} was stored`);
  }
  await context.close();
});

test('a signal stops the wait, not the intent: the payment lands once, and replays', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('signal');
  await signIn(context, account);
  await server.faults(account, { slow_ms: 800 });
  const result = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace });
    const stop = new AbortController();
    const sending = client.send({ ...request, signal: stop.signal });
    setTimeout(() => stop.abort(), 100);
    const stopped = await sending.catch((e) => e.name);
    const early = await client.send({ ...request, signal: AbortSignal.abort() }).catch((e) => e.name);
    // The flight goes on: a later call joins it or replays its outcome.
    const outcome = await client.send(request);
    const other = { ...request, intent: 'order-2' };
    const fetched = await client.fetch('/api/charges', { ...other, method: 'POST', signal: AbortSignal.timeout(50) }).catch((e) => e.name);
    await client.send(other);
    return { stopped, early, status: outcome.status, fetched };
  }, { request: charge('order-1'), namespace: unique('ns') });
  assert.deepEqual(result, { stopped: 'AbortError', early: 'AbortError', status: 201, fetched: 'TimeoutError' });
  assert.equal((await server.ledger(account)).length, 2, 'one charge per intent');
  await context.close();
});

test('no attempt leaves after the retention: a backoff that would cross it ends "expired"', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const count = countCharges(page);
  const account = unique('retention');
  await signIn(context, account);
  // The server asks to wait a second; the retention ends before then.
  await server.faults(account, { fail_next: [{ status: 503, headers: { 'Retry-After': '1' } }] });
  const result = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace, retentionMs: 1000 });
    const started = Date.now();
    const attempts = [];
    client.on('attempt', (event) => attempts.push(event.at - started));
    const error = await client.send(request).catch((e) => e);
    return { code: error.code, attempts };
  }, { request: charge('order-1'), namespace: unique('ns') });
  assert.equal(result.code, 'expired');
  assert.ok(result.attempts.every((at) => at < 1000), JSON.stringify(result.attempts));
  assert.equal(count.posts, result.attempts.length);
  await context.close();
});

test('every wait is bounded: another tab holding the intent, and an authorize hook that never answers', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const count = countCharges(page);
  const result = await page.evaluate(async ({ request, namespace }) => {
    // Another context holds the intent's lock and never lets go.
    navigator.locks.request(`oncely:${namespace}/order-1`, () => new Promise(() => {}));
    const client = await oncely.Oncely.open({ namespace, retry: { deadlineMs: 300 } });
    const locked = await client.send(request).catch((e) => e.code);
    const forgetting = await client.forget('order-1').catch((e) => e.code);
    const hanging = await oncely.Oncely.open({ namespace, retry: { deadlineMs: 300 }, authorize: () => new Promise(() => {}) });
    const unanswered = await hanging.send({ ...request, intent: 'order-2' }).catch((e) => [e.code, /in time/.test(e.message)]);
    return { locked, forgetting, unanswered };
  }, { request: charge('order-1'), namespace: unique('ns') });
  assert.deepEqual(result, { locked: 'gave_up', forgetting: 'gave_up', unanswered: ['invalid', true] });
  assert.equal(count.posts, 0);
  await context.close();
});

test('a classify hook decides what a response means; bodies that never repeat are refused', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('classify');
  await signIn(context, account);
  await server.faults(account, { fail_next: [{ status: 503 }] });
  const result = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace, classify: (response) => (response?.status === 503 ? 'settle' : undefined) });
    const settled = await client.send(request);
    const form = new FormData();
    form.append('amount', '4200');
    const refused = await client.fetch('/api/charges', { intent: 'order-form', method: 'POST', body: form }).catch((e) => [e.code, /FormData/.test(e.message)]);
    return { settled: settled.status, refused };
  }, { request: charge('order-1'), namespace: unique('ns') });
  assert.deepEqual(result, { settled: 503, refused: ['invalid', true] });
  await context.close();
});

test('persistent storage is asked for only when the app opts in', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const asked = await page.evaluate(async (namespace) => {
    let asked = 0;
    navigator.storage.persist = async () => (asked++, true);
    const quiet = await oncely.Oncely.open({ namespace });
    const before = [asked, await quiet.persisted()];
    const opted = await oncely.Oncely.open({ namespace, persist: true });
    return [before, [asked, await opted.persisted()]];
  }, unique('ns'));
  assert.deepEqual(asked, [[0, false], [1, true]]);
  await context.close();
});

test("a page whose Content-Security-Policy refuses WebAssembly gets code \"csp\" naming 'wasm-unsafe-eval'", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.route('**/csp.html', (route) =>
    route.fulfill({
      contentType: 'text/html',
      headers: { 'content-security-policy': "script-src 'self' 'unsafe-inline'" },
      body: '<!doctype html><title>csp</title>',
    }),
  );
  await page.goto(`${server.url}/csp.html`);
  const error = await page.evaluate(async () => {
    const { Oncely } = await import('/pkg/index.js');
    return Oncely.open({ store: 'memory' }).then(
      () => null,
      (e) => [e.code, /wasm-unsafe-eval/.test(e.message), /connect-src/.test(e.message)],
    );
  });
  assert.deepEqual(error, ['csp', true, true]);
  await context.close();
});

test('a database another tab deletes or upgrades is opened again, or refused with a clear "storage" error', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('reopen');
  await signIn(context, account);
  const result = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace });
    await client.send(request);
    // Another tab deletes the database: this one is closed under the client.
    await new Promise((done) => (indexedDB.deleteDatabase(`oncely:${namespace}`).onsuccess = done));
    const again = await client.send({ ...request, intent: 'order-2' });
    // Another tab upgrades it (a newer oncely): refused, plainly.
    await new Promise((done) => {
      const open = indexedDB.open(`oncely:${namespace}`, 2);
      open.onsuccess = () => done(open.result.close());
    });
    const upgraded = await client.send({ ...request, intent: 'order-3' }).catch((e) => [e.code, /newer oncely/.test(e.message)]);
    return { again: again.status, upgraded };
  }, { request: charge('order-1'), namespace: unique('ns') });
  assert.deepEqual(result, { again: 201, upgraded: ['storage', true] });
  await context.close();
});

test('without Web Locks, a stale write of one context never overwrites the outcome another recorded', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('nolocks');
  await signIn(context, account);
  await server.faults(account, { fail_next: [{ status: 503 }] });
  // The wire, held on demand: B's late attempt waits here while the test
  // reads what the store holds.
  let hold = null;
  await page.route('**/api/charges', async (route) => {
    if (hold && route.request().method() === 'POST') await hold.promise;
    await route.continue();
  });
  const namespace = unique('ns');
  await page.evaluate(async ({ request, namespace }) => {
    Object.defineProperty(navigator, 'locks', { value: undefined });
    let release;
    window.gate = new Promise((resolve) => (release = resolve));
    window.release = release;
    let calls = 0;
    // B: its second attempt's hook waits for the gate.
    const b = await oncely.Oncely.open({ namespace, retry: { baseDelayMs: 0 }, authorize: () => (++calls === 2 ? window.gate : {}) });
    window.sentByB = b.send(request);
    const a = await oncely.Oncely.open({ namespace });
    // B's first attempt got the 503 and waits for its hook: A sends the
    // same intent (no lock to stop it) and records the outcome.
    while (calls < 2) await new Promise((r) => setTimeout(r, 10));
    window.outcomeOfA = (await a.send(request)).status;
  }, { request: charge('order-1'), namespace });
  hold = {};
  hold.promise = new Promise((resolve) => (hold.resolve = resolve));
  const stored = await page.evaluate(async (namespace) => {
    window.release({}); // B goes on: it records its attempt, then sends
    await new Promise((r) => setTimeout(r, 300));
    const reader = await oncely.Oncely.open({ namespace, store: 'indexeddb' });
    return (await reader.pending()).map((p) => p.state);
  }, namespace);
  hold.resolve();
  const b = await page.evaluate(async () => [window.outcomeOfA, (await window.sentByB).status]);
  assert.deepEqual(stored, [], 'the outcome A recorded is still there while B sends');
  assert.deepEqual(b, [201, 201]);
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});
