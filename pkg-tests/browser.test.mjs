// The package in headless Chromium against the reference server: what a
// web app relies on when the network lies, a tab reloads or a second tab
// races the first. Every test reads the ledger through GET /api/charges.
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

function charge(account, intent, amount = 4200) {
  return {
    intent,
    method: 'POST',
    url: '/api/charges',
    headers: { 'content-type': 'application/json', 'x-account': account },
    body: JSON.stringify({ amount, currency: 'eur' }),
  };
}

test('a lost response after the commit ends in one ledger row, one key', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('lost');
  await server.faults(account, { drop_next: 1 });
  const result = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace, retry: { baseDelayMs: 50 } });
    const outcome = await client.send(request);
    return { status: outcome.status, key: outcome.key, serverReplayed: outcome.headers.get('idempotent-replayed') };
  }, { request: charge(account, 'order-1'), namespace: unique('ns') });
  assert.equal(result.status, 201);
  // The answer came from the server's replay of the committed charge (the
  // browser itself may re-send a POST whose reused connection closed
  // without a response; oncely's next attempt would, under the same key).
  assert.equal(result.serverReplayed, 'true');
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key ?? ledger[0].key, result.key);
  await context.close();
});


test('what a tab does right after a send sees its outcome: nothing pending, the intent replays', async () => {
  // The outcome is written once the caller has it; every call that follows
  // must still find the intent settled, in either store.
  const context = await browser.newContext();
  const page = await tab(context);
  const count = countCharges(page);
  const account = unique('after');
  const results = await page.evaluate(async ({ request, namespace }) => {
    const results = [];
    for (const store of ['indexeddb', 'memory']) {
      const client = await oncely.Oncely.open({ namespace, store });
      const intent = { ...request, intent: `${request.intent}-${store}` };
      const first = await client.send(intent);
      const pending = (await client.pending()).length;
      const again = await client.send(intent);
      results.push({ store, pending, keys: first.key === again.key, replayed: [first.replayed, again.replayed] });
    }
    return results;
  }, { request: charge(account, 'order-after'), namespace: unique('ns') });
  for (const result of results) {
    assert.deepEqual(result, { store: result.store, pending: 0, keys: true, replayed: [false, true] });
  }
  assert.equal(count.posts, 2, 'one request per intent');
  assert.equal((await server.ledger(account)).length, 2);
  await context.close();
});

test('an attempt slower than the deadline is cut off: "gave_up" with its key; a later call settles under it', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('slow');
  const namespace = unique('ns');
  await server.faults(account, { slow_ms: 1500 });
  const first = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace, retry: { deadlineMs: 300 } });
    try {
      await client.send(request);
      return { thrown: false };
    } catch (error) {
      return { code: error.code, key: error.key, message: error.message, pending: (await client.pending()).length };
    }
  }, { request: charge(account, 'order-slow'), namespace });
  assert.equal(first.code, 'gave_up');
  assert.match(first.message, /timed out/);
  assert.equal(first.pending, 1, 'the intent stays recorded, to be settled later');
  // The server finishes the charge it was slow on; the next call asks again
  // under the same key and gets that charge.
  await server.faults(account, { slow_ms: 0 });
  for (let waited = 0; (await server.ledger(account)).length === 0 && waited < 10_000; waited += 50) {
    await new Promise((wake) => setTimeout(wake, 50));
  }
  const second = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace });
    const outcome = await client.send(request);
    return { status: outcome.status, key: outcome.key, serverReplayed: outcome.headers.get('idempotent-replayed') };
  }, { request: charge(account, 'order-slow'), namespace });
  assert.deepEqual(second, { status: 201, key: first.key, serverReplayed: 'true' });
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

test('an intent pending at a reload resumes with its original key: one ledger row', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('reload');
  const namespace = unique('ns');
  await server.faults(account, { slow_ms: 1500 });
  const before = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace });
    const attempted = new Promise((resolve) => client.on('attempt', resolve));
    client.send(request).catch(() => {}); // the reload interrupts it
    await attempted;
    return (await client.pending())[0];
  }, { request: charge(account, 'order-reload'), namespace });
  assert.equal(before.intent, 'order-reload');
  assert.equal(before.state, 'pending');

  await page.reload();
  await page.evaluate(async () => {
    window.oncely = await import('/pkg/index.js');
  });
  const after = await page.evaluate(async ({ namespace, account }) => {
    // The account header is not stored (off the allow-list): the page
    // gives it again, as it would a credential.
    const client = await oncely.Oncely.open({ namespace, retry: { baseDelayMs: 100 }, authorize: () => ({ 'x-account': account }) });
    const pending = await client.pending();
    const outcomes = await client.resume();
    return {
      pending: pending.map((p) => p.key),
      outcomes: outcomes.map((o) => ({ key: o.key, status: o.status, intent: o.intent })),
      left: (await client.pending()).length,
    };
  }, { namespace, account });
  assert.deepEqual(after.pending, [before.key]);
  assert.deepEqual(after.outcomes, [{ key: before.key, status: 201, intent: 'order-reload' }]);
  assert.equal(after.left, 0);
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key ?? ledger[0].key, before.key);
  await context.close();
});

test('the authorize hook gives every attempt its credentials, resumed ones included; none is stored', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('authorize');
  const namespace = unique('ns');
  const seen = [];
  await page.route('**/api/charges', (route) => {
    if (route.request().method() === 'POST') seen.push(route.request().headers().authorization ?? null);
    return route.continue();
  });
  await server.faults(account, { slow_ms: 1500 });
  const key = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace, authorize: () => ({ authorization: 'Bearer before' }) });
    const attempted = new Promise((resolve) => client.on('attempt', resolve));
    client.send(request).catch(() => {}); // the reload interrupts it
    await attempted;
    return (await client.pending())[0].key;
  }, { request: charge(account, 'order-auth'), namespace });

  await page.reload();
  const after = await page.evaluate(async ({ namespace, other, broken, account }) => {
    window.oncely = await import('/pkg/index.js');
    const client = await oncely.Oncely.open({
      namespace,
      retry: { baseDelayMs: 100 },
      authorize: async (intent, request) => ({ authorization: `Bearer fresh ${intent} ${request.method}`, 'x-account': account }),
    });
    const resumed = (await client.resume()).map((o) => [o.key, o.status]);
    // The hook's fresh credentials win over the request's own (stale) ones.
    await client.send({ ...other, headers: { ...other.headers, authorization: 'Bearer stale' } });
    // A hook that throws or gives a header Headers refuses: "invalid", nothing sent.
    const errors = [];
    for (const authorize of [() => { throw new Error('no token'); }, () => ({ 'bad name': 'x' })]) {
      const failing = await oncely.Oncely.open({ store: 'memory', authorize });
      errors.push(await failing.send(broken).then(() => null, (e) => [e.code, e.message]));
    }
    return { resumed, errors };
  }, { namespace, other: charge(account, 'order-own'), broken: charge(account, 'order-broken'), account });

  assert.deepEqual(after.resumed, [[key, 201]]);
  assert.equal(seen[0], 'Bearer before');
  assert.equal(seen.at(-1), 'Bearer fresh order-own POST');
  const resumedWith = seen.slice(1, -1);
  assert.ok(resumedWith.length >= 1 && resumedWith.every((h) => h === 'Bearer fresh order-auth POST'), JSON.stringify(seen));
  assert.deepEqual(after.errors.map((e) => e?.[0]), ['invalid', 'invalid']);
  assert.match(after.errors[0][1], /authorize: no token/);
  // Nothing of any credential in the database.
  assert.equal((await storedText(page, namespace)).includes('Bearer'), false, 'no credential in IndexedDB');
  assert.equal((await server.ledger(account)).length, 2);
  await context.close();
});

test('two tabs racing one intent send one request (Web Locks); the second replays', async () => {
  const context = await browser.newContext();
  const [first, second] = [await tab(context), await tab(context)];
  const counts = [countCharges(first), countCharges(second)];
  const account = unique('tabs');
  const namespace = unique('ns');
  await server.faults(account, { slow_ms: 400 });
  const pay = (page) => page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace });
    const outcome = await client.send(request);
    return { key: outcome.key, status: outcome.status, replayed: outcome.replayed, locks: client.webLocks };
  }, { request: charge(account, 'cart-7f3'), namespace });
  const [a, b] = await Promise.all([pay(first), pay(second)]);
  assert.ok(a.locks && b.locks, 'Chromium has Web Locks');
  assert.equal(a.key, b.key);
  assert.deepEqual([a.status, b.status], [201, 201]);
  assert.equal([a.replayed, b.replayed].filter(Boolean).length, 1, 'exactly one tab replays');
  assert.equal(counts[0].posts + counts[1].posts, 1, 'one request between the two tabs');
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

test('a tab that finds the intent\'s lock held reads the record again once it holds it', async () => {
  // A record is added while the lock is asked for. Where another tab holds
  // the lock, that tab may change the record meanwhile: here the first
  // tab's record is removed and a different request recorded under the
  // intent while the lock is held elsewhere. Once it has the lock, the first
  // tab must see that record (a conflict), not fly the one it had added.
  const context = await browser.newContext();
  const [first, holder] = [await tab(context), await tab(context)];
  const counts = [countCharges(first), countCharges(holder)];
  const account = unique('held');
  const namespace = unique('ns');
  const intent = 'order-held';
  await holder.evaluate(async ({ lock }) => {
    await new Promise((held) => {
      navigator.locks.request(lock, () => new Promise((release) => {
        window.releaseLock = release;
        held();
      }));
    });
  }, { lock: `oncely:${namespace}/${intent}` });
  await first.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace });
    window.paying = client.send(request).then(
      (outcome) => ({ status: outcome.status }),
      (error) => ({ code: error.code }),
    );
  }, { request: charge(account, intent, 100), namespace });
  const second = await holder.evaluate(async ({ request, namespace, intent }) => {
    const client = await oncely.Oncely.open({ namespace });
    const recorded = async () => (await client.pending()).some((record) => record.intent === intent);
    while (!(await recorded())) await new Promise((wake) => setTimeout(wake, 10));
    const firstKey = (await client.pending())[0].key;
    // Removed under the lock this tab holds (as a flight of it could change
    // it; forget() itself waits for the lock).
    await new Promise((removed, failed) => {
      const open = indexedDB.open(`oncely:${namespace}`);
      open.onerror = () => failed(open.error);
      open.onsuccess = () => {
        const tx = open.result.transaction('intents', 'readwrite');
        tx.objectStore('intents').delete(intent);
        tx.oncomplete = () => removed(open.result.close());
        tx.onerror = () => failed(tx.error);
      };
    });
    const paying = client.send(request); // records itself, then waits for the lock
    while (!(await recorded())) await new Promise((wake) => setTimeout(wake, 10));
    window.releaseLock();
    const outcome = await paying;
    return { status: outcome.status, key: outcome.key, firstKey };
  }, { request: charge(account, intent, 999), namespace, intent });
  const firstResult = await first.evaluate(() => window.paying);
  assert.deepEqual(firstResult, { code: 'conflict' });
  assert.equal(second.status, 201);
  assert.notEqual(second.key, second.firstKey);
  assert.equal(counts[0].posts + counts[1].posts, 1, 'one request: the recorded one');
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  await context.close();
});

test('retry options are taken as given: a base delay of 0 retries at once', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('no-delay');
  await server.faults(account, { fail_next: [{ status: 503 }, { status: 503 }] });
  const result = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace, retry: { baseDelayMs: 0 } });
    const delays = [];
    client.on('retry', (event) => delays.push(event.delayMs));
    const outcome = await client.send(request);
    return { status: outcome.status, attempts: outcome.attempts, delays };
  }, { request: charge(account, 'order-no-delay'), namespace: unique('ns') });
  assert.deepEqual(result, { status: 201, attempts: 3, delays: [0, 0] });
  await context.close();
});

test('a changed request under a recorded intent is an OncelyError "conflict"; nothing is sent', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const count = countCharges(page);
  const account = unique('conflict');
  const result = await page.evaluate(async ({ first, changed, namespace }) => {
    const client = await oncely.Oncely.open({ namespace });
    await client.send(first);
    try {
      await client.send(changed);
      return { thrown: false };
    } catch (error) {
      return {
        thrown: true,
        isOncelyError: error instanceof oncely.OncelyError,
        isError: error instanceof Error,
        code: error.code,
        intent: error.intent,
        message: error.message,
      };
    }
  }, { first: charge(account, 'order-9', 100), changed: charge(account, 'order-9', 999), namespace: unique('ns') });
  assert.equal(result.thrown, true);
  assert.equal(result.isOncelyError, true);
  assert.equal(result.isError, true);
  assert.equal(result.code, 'conflict');
  assert.equal(result.intent, 'order-9');
  assert.match(result.message, /nothing was sent/);
  assert.equal(count.posts, 1);
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

test('an intent forgotten by another client while a send looks it up is recorded anew and sent once', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const count = countCharges(page);
  const account = unique('forgotten');
  const result = await page.evaluate(async ({ request, namespace }) => {
    const [a, b] = [await oncely.Oncely.open({ namespace }), await oncely.Oncely.open({ namespace })];
    const first = await a.send(request);
    // a finds the record, then reads it under its lock: b removed it meanwhile.
    const sending = a.send(request);
    const forgot = await b.forget(request.intent);
    const second = await sending.then((o) => ({ status: o.status, key: o.key, replayed: o.replayed }), (e) => `${e.name}: ${e.message}`);
    // Right after a send, another client sees the outcome.
    const pending = (await b.pending()).length;
    const third = await b.send(request);
    return { forgot, second, newKey: second.key !== first.key, pending, third: { key: third.key === second.key, replayed: third.replayed } };
  }, { request: charge(account, 'order-forgotten'), namespace: unique('ns') });
  assert.deepEqual(result, {
    forgot: true,
    second: { status: 201, key: result.second.key, replayed: false },
    newKey: true,
    pending: 0,
    third: { key: true, replayed: true },
  });
  assert.equal(count.posts, 2, 'the first intent, then the one recorded anew');
  assert.equal((await server.ledger(account)).length, 2);
  await context.close();
});

test('forget() while another client flies the intent waits for it to land; the removal holds', async () => {
  // Two clients of one origin (as two tabs): b forgets the intent a is
  // sending to a slow server. b removes it once a's outcome is written, so
  // that write never brings the intent back: the next call is a new intent.
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('forget-flying');
  await server.faults(account, { slow_ms: 400 });
  const result = await page.evaluate(async ({ request, namespace }) => {
    const [a, b] = [await oncely.Oncely.open({ namespace }), await oncely.Oncely.open({ namespace })];
    const sending = a.send(request);
    await new Promise((wake) => setTimeout(wake, 100)); // a is in flight
    const order = [];
    const landed = sending.then((o) => (order.push('landed'), o));
    const forgot = await b.forget(request.intent).then((removed) => (order.push('forgot'), removed));
    const first = await landed;
    const pending = (await a.pending()).length + (await b.pending()).length;
    const next = await a.send(request);
    return { forgot, order, pending, newKey: next.key !== first.key, replayed: next.replayed };
  }, { request: charge(account, 'order-forget-flying'), namespace: unique('ns') });
  assert.deepEqual(result, { forgot: true, order: ['landed', 'forgot'], pending: 0, newKey: true, replayed: false });
  assert.equal((await server.ledger(account)).length, 2, 'the intent, then the one after forget()');
  await context.close();
});

test('prune removes the intents past retention whose outcome is known; their names start anew', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('prune');
  await server.faults(account, { fail_next: [{ status: 503 }] });
  const result = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace, retry: { maxAttempts: 1 } });
    const send = (intent) => client.send({ ...request, intent }).catch((error) => error);
    // Two days ago (by the page's clock): one charged, one given up on.
    const realNow = Date.now;
    Date.now = () => realNow() - 2 * 86_400_000;
    const waiting = await send('order-waiting'); // 503: gave up, unsettled
    const old = await send('order-old');
    Date.now = realNow;
    await send('order-new');
    const refused = await send('order-old');
    const pruned = await client.prune();
    const anew = await send('order-old');
    return {
      waiting: waiting.code,
      refused: refused.code,
      pruned,
      left: (await client.pending()).map((record) => record.intent),
      anew: { status: anew.status, newKey: anew.key !== old.key, replayed: anew.replayed },
      again: await client.prune(),
    };
  }, { request: charge(account, 'unused'), namespace: unique('ns') });
  assert.deepEqual(result, {
    waiting: 'gave_up',
    refused: 'expired',
    pruned: 1,
    left: ['order-waiting'],
    anew: { status: 201, newKey: true, replayed: false },
    again: 0,
  });
  assert.equal((await server.ledger(account)).length, 3, 'old, new, and old anew');
  await context.close();
});

test('a damaged record is a "storage" error naming its intent in pending() and resume(), kept by prune; it blocks no other intent', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('damaged');
  await server.faults(account, { fail_next: [{ status: 503 }] });
  const result = await page.evaluate(async ({ request, namespace }) => {
    // X-Account stored (an app's choice): resume sends it without a hook.
    const client = await oncely.Oncely.open({ namespace, retry: { maxAttempts: 1 }, storedHeaders: ['X-Account'] });
    const failed = await client.send({ ...request, intent: 'order-waiting' }).catch((error) => error.code);
    // Bytes oncely never wrote, under an intent's name (a damaged disk, a foreign writer).
    await new Promise((resolve, reject) => {
      const open = indexedDB.open(`oncely:${namespace}`, 1);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const tx = open.result.transaction('intents', 'readwrite');
        tx.objectStore('intents').put(new Uint8Array([7, 7, 7]), 'order-damaged');
        tx.oncomplete = () => resolve(open.result.close());
        tx.onerror = () => reject(tx.error);
      };
    });
    const shape = (entry) =>
      entry instanceof oncely.OncelyError
        ? { code: entry.code, intent: entry.intent, named: entry.message.includes('"order-damaged"') }
        : [entry.intent, entry.state ?? entry.status];
    const listing = (await client.pending()).map(shape);
    const resuming = (await client.resume()).map(shape);
    const sending = await client.send({ ...request, intent: 'order-damaged' }).catch((error) => [error.code, error.intent]);
    const pruned = await client.prune();
    const forgotten = await client.forget('order-damaged');
    const after = (await client.pending()).map(shape);
    return { failed, listing, resuming, sending, pruned, forgotten, after };
  }, { request: charge(account, 'unused'), namespace: unique('ns') });
  const named = { code: 'storage', intent: 'order-damaged', named: true };
  assert.deepEqual(result, {
    failed: 'gave_up',
    listing: [named, ['order-waiting', 'failed']],
    resuming: [named, ['order-waiting', 201]],
    sending: ['storage', 'order-damaged'],
    pruned: 0,
    forgotten: true,
    after: [],
  });
  assert.equal((await server.ledger(account)).length, 1, 'the resumed charge; nothing sent for the damaged record');
  await context.close();
});

test('DevTools shows each record readable (intent, key, state, attempts, method, URL, status); bytes alone are still read', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('readable');
  await server.faults(account, { fail_next: [{ status: 503 }] });
  const result = await page.evaluate(async ({ paid, waiting, namespace }) => {
    const client = await oncely.Oncely.open({ namespace, retry: { maxAttempts: 1 } });
    const failed = await client.send(waiting).catch((error) => error.code);
    const outcome = await client.send(paid);
    // The database as DevTools shows it.
    const database = () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open(`oncely:${namespace}`, 1);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => resolve(open.result);
      });
    const db = await database();
    const values = await new Promise((resolve) => {
      const all = db.transaction('intents').objectStore('intents').getAll();
      all.onsuccess = () => resolve(all.result);
    });
    const shown = values.map(({ record, ...fields }) => ({ ...fields, bytes: record instanceof Uint8Array }));
    // A value of the record's bytes alone, as the first versions wrote it.
    await new Promise((resolve, reject) => {
      const tx = db.transaction('intents', 'readwrite');
      tx.objectStore('intents').put(values.find((value) => value.intent === paid.intent).record, paid.intent);
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
    db.close();
    const again = await client.send(paid);
    return { key: outcome.key, shown, failed, again: [again.status, again.key, again.replayed], pending: await client.pending() };
  }, { paid: charge(account, 'order-paid'), waiting: charge(account, 'order-waiting'), namespace: unique('ns') });
  const [paid, waiting] = result.shown;
  const url = `${server.url}/api/charges`;
  assert.deepEqual(paid, { intent: 'order-paid', key: result.key, state: 'settled', attempts: 1, createdAt: paid.createdAt, status: 201, method: 'POST', url, bytes: true });
  assert.ok(Math.abs(Date.now() - paid.createdAt) < 60_000, 'created now, in ms since the epoch');
  assert.equal(result.failed, 'gave_up');
  assert.deepEqual(waiting, { intent: 'order-waiting', key: waiting.key, state: 'failed', attempts: 1, createdAt: waiting.createdAt, status: 503, method: 'POST', url, bytes: true });
  assert.deepEqual(result.again, [201, result.key, true], 'bytes alone: read, replayed');
  // pending() answers the same fields (the bytes stay inside).
  assert.deepEqual(result.pending, [{ ...waiting, bytes: undefined }].map(({ bytes, ...fields }) => fields));
  assert.equal((await server.ledger(account)).length, 1);
  await context.close();
});

test('texts beyond ASCII cross into the core and back intact', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const account = unique('utf8');
  await server.faults(account, { fail_next: [{ status: 503 }] });
  const names = ['commande-été-☕-注文', 'ставка-🎟️'];
  const result = await page.evaluate(async ({ request, names, namespace }) => {
    const client = await oncely.Oncely.open({ namespace, retry: { maxAttempts: 1 } });
    const url = `${request.url}?note=${encodeURIComponent('ça va')}&x=ü`;
    // The first is answered 503 once and given up on: left pending.
    const failed = await client.send({ ...request, intent: names[1], url }).catch((error) => ({ code: error.code, intent: error.intent }));
    const sent = await client.send({ ...request, intent: names[0], url });
    const again = await client.send({ ...request, intent: names[0], url });
    return {
      failed,
      sent: { intent: sent.intent, status: sent.status },
      again: { intent: again.intent, replayed: again.replayed, sameKey: again.key === sent.key },
      pending: (await client.pending()).map((record) => record.intent),
    };
  }, { request: charge(account, 'unused'), names, namespace: unique('ns') });
  assert.deepEqual(result, {
    failed: { code: 'gave_up', intent: names[1] },
    sent: { intent: names[0], status: 201 },
    again: { intent: names[0], replayed: true, sameKey: true },
    pending: [names[1]],
  });
  await context.close();
});

test('bad input is an OncelyError "invalid" before anything is recorded or sent', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const count = countCharges(page);
  const account = unique('invalid');
  const results = await page.evaluate(async ({ request, namespace }) => {
    const client = await oncely.Oncely.open({ namespace });
    const bad = {
      'a GET with a body': { ...request, method: 'GET' },
      'a header name with a space': { ...request, headers: { 'x bad': '1' } },
      'a header value with a line break': { ...request, headers: { 'x-note': 'a\nb' } },
      'a method that is not a token': { ...request, method: 'PO ST' },
      'a URL that does not parse': { ...request, url: 'http://[::1' },
      'an empty intent name': { ...request, intent: '' },
      'an intent that is not a string': { ...request, intent: 42 },
      'a body that is a number': { ...request, body: 7 },
    };
    const results = {};
    for (const [what, input] of Object.entries(bad)) {
      try {
        await client.send(input);
        results[what] = 'sent';
      } catch (error) {
        results[what] = error instanceof oncely.OncelyError ? error.code : `${error.name}: ${error.message}`;
      }
    }
    // The intent's lock, asked for before its name was judged, is let go.
    const lockFree = await Promise.race([
      navigator.locks.request(`oncely:${namespace}/`, () => true),
      new Promise((wake) => setTimeout(() => wake(false), 2000)),
    ]);
    return { results, recorded: (await client.pending()).length, lockFree };
  }, { request: charge(account, 'order-bad'), namespace: unique('ns') });
  for (const [what, code] of Object.entries(results.results)) assert.equal(code, 'invalid', what);
  assert.equal(results.recorded, 0, 'nothing recorded');
  assert.equal(results.lockFree, true, 'no lock left held');
  assert.equal(count.posts, 0, 'nothing sent');
  await context.close();
});

test('a database the store cannot use is an OncelyError "storage" at once, not a hang', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const result = await page.evaluate(async ({ namespace }) => {
    // A newer version of the database (as a newer oncely would leave), held open.
    await new Promise((resolve, reject) => {
      const request = indexedDB.open(`oncely:${namespace}`, 7);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const started = performance.now();
    const timeout = new Promise((resolve) => setTimeout(() => resolve('hang'), 5000));
    const opened = oncely.Oncely.open({ namespace }).then(() => 'opened', (error) => error);
    const error = await Promise.race([opened, timeout]);
    return {
      code: error?.code,
      isOncelyError: error instanceof oncely.OncelyError,
      message: String(error?.message ?? error),
      ms: performance.now() - started,
    };
  }, { namespace: unique('ns') });
  assert.equal(result.code, 'storage', result.message);
  assert.equal(result.isOncelyError, true);
  assert.ok(result.ms < 5000);
  await context.close();
});

test('offline, a payment waits for the network and is charged once online', async () => {
  const context = await browser.newContext();
  const page = await tab(context);
  const count = countCharges(page);
  const account = unique('offline');
  await page.evaluate(async ({ namespace }) => {
    window.client = await oncely.Oncely.open({ namespace });
  }, { namespace: unique('ns') });
  await context.setOffline(true);
  await page.evaluate(async ({ request }) => {
    const offline = new Promise((resolve) => client.on('offline', resolve));
    window.payment = client.send(request).then((o) => ({ status: o.status, key: o.key, attempts: o.attempts }));
    await offline;
  }, { request: charge(account, 'order-offline') });
  assert.equal(count.posts, 0, 'nothing is sent while offline');
  assert.equal((await server.ledger(account)).length, 0);
  await context.setOffline(false);
  const outcome = await page.evaluate(() => window.payment);
  assert.equal(outcome.status, 201);
  assert.equal(outcome.attempts, 1, 'no attempt was wasted while offline');
  assert.equal(count.posts, 1);
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0].idempotency_key ?? ledger[0].key, outcome.key);
  await context.close();
});
