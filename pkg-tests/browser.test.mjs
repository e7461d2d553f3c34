// The package in headless Chromium against the reference server: what a
// web app relies on when the network lies, a tab reloads or a second tab
// races the first. Every test reads the ledger through GET /api/charges.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, site, launch, unique, root } from './harness.mjs';

let server, pages, browser;

before(async () => {
  pages = await site(join(root, 'pkg-tests', 'site'));
  server = await startServer(pages.dir);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await pages?.remove();
});

/** A new tab on the test page, with the package loaded as `window.oncely`. */
async function tab(context) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(`${server.url}/index.html`);
  await page.evaluate(async () => {
    window.oncely = await import('/pkg/index.js');
  });
  return page;
}

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
