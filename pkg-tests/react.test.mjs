// The React recipe of the package's README, run: its files are the source
// of the fixture app pkg-tests/fixtures/vite-react-app (a test holds them
// equal, line for line), which gets the `npm pack`ed package, React and
// TanStack Query, is built by `vite build` as `npm create vite` sets it up,
// served by the reference server and driven in Chromium. Each scenario runs
// for both checkouts of the recipe (the plain hook and TanStack Query's
// useMutation) and in two builds: development, where StrictMode renders
// twice and runs every effect twice (production React ignores StrictMode),
// and production, as the app ships. Each asserts what the page shows and
// the ledger: one charge, under the key the page shows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launch, unique, root } from './harness.mjs';
import { fixtures, vite, run, pack, app } from './apps.mjs';

const fixture = join(fixtures, 'vite-react-app');
/** The app's files the README shows, in its order; the others (main.jsx, session.js) are the test's. */
const RECIPE = ['src/oncely.js', 'src/payment.js', 'src/usePayment.js', 'src/Checkout.jsx', 'src/QueryCheckout.jsx'];
const RECIPES = { hook: 'the plain hook', query: 'useMutation' };
/** How long the page may take to show what the test waits for. */
const PAGE_TIMEOUT = 20_000;

const builds = {}; // "development" and "production": the reference server serving each
const stops = [];
let browser;

before(async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'oncely-react-'));
  stops.push(() => rm(tmp, { recursive: true, force: true }));
  const dir = join(tmp, 'app');
  await app(dir, fixture, await pack(tmp), 'oncely-vite-react-app', {
    linked: ['react', 'react-dom', '@tanstack/react-query', '@vitejs/plugin-react', 'vite'],
  });
  for (const mode of ['development', 'production']) {
    const outDir = join(tmp, mode);
    await run(process.execPath, [vite, 'build', '--logLevel', 'warn', '--outDir', outDir], {
      cwd: dir,
      env: { ...process.env, NODE_ENV: mode },
    });
    // Development React is what runs StrictMode's double renders and effects.
    const code = (await Promise.all((await readdir(join(outDir, 'assets')))
      .filter((file) => file.endsWith('.js'))
      .map((file) => readFile(join(outDir, 'assets', file), 'utf8')))).join('');
    assert.equal(code.includes('unique "key" prop'), mode === 'development', `${mode} build of React`);
    const server = await startServer(outDir);
    stops.push(() => server.stop());
    builds[mode] = server;
  }
  browser = await launch();
  stops.push(() => browser.close());
});

after(async () => {
  for (const stop of stops.reverse()) await stop();
});

test("the README's React recipe is the test app's source, line for line", async () => {
  const readme = await readFile(join(root, 'pkg-template', 'README.md'), 'utf8');
  const section = readme.match(/^## React\n([\s\S]*?)(?=^## )/m)?.[1];
  assert.ok(section, 'the package README has no "## React" section');
  // Each file as "**`src/…`** …", a blank line, then its code block.
  const shown = [...section.matchAll(/^\*\*`(src\/[\w.]+)`\*\*.*\n\n```jsx?\n([\s\S]*?)^```$/gm)];
  assert.deepEqual(shown.map(([, file]) => file), RECIPE);
  assert.equal(section.match(/^```/gm).length, 2 * RECIPE.length, 'a code block of the section is not a file of the app');
  for (const [, file, code] of shown) {
    assert.equal(code, await readFile(join(fixture, file), 'utf8'), `the README's ${file} differs from the test app's`);
  }
});

/**
 * A fresh browser profile on the checkout of `recipe` for a new account;
 * resolves once Pay is shown (the client is open). `keys` collects the
 * Idempotency-Key of every charge the page sends; `problems`, page errors
 * and console errors and warnings (React's among them).
 */
async function checkout(t, build, recipe) {
  const server = builds[build];
  const account = unique(`react-${recipe}`);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Chromium's own line for each failed charge the test provokes (409, 503) is no problem.
    const provoked = message.text().startsWith('Failed to load resource') && message.location().url.endsWith('/api/charges');
    if ((message.type() === 'error' || message.type() === 'warning') && !provoked) problems.push(`console ${message.type()}: ${message.text()}`);
  });
  const keys = []; // (Chromium itself may send a POST again on a connection closed without an answer: one request here)
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/api/charges')) {
      keys.push(request.headers()['idempotency-key'].replace(/^"|"$/g, ''));
    }
  });
  await page.goto(`${server.url}/index.html?recipe=${recipe}&account=${account}`);
  const pay = page.getByRole('button', { name: /^Pay/ });
  await pay.waitFor({ timeout: PAGE_TIMEOUT });
  return { server, account, page, pay, keys, problems };
}

/** Waits until the page's status line matches `pattern`; resolves with it and the key it shows. */
async function shown(page, pattern) {
  const status = () => page.evaluate(() => document.querySelector('[role=status]')?.textContent);
  await page.waitForFunction(
    (source) => new RegExp(source).test(document.querySelector('[role=status]')?.textContent ?? ''),
    pattern.source,
    { timeout: PAGE_TIMEOUT },
  ).catch(async (error) => {
    throw new Error(`the page's status never matched ${pattern}; it shows ${JSON.stringify(await status())}`, { cause: error });
  });
  const text = await status();
  return { text, key: text.match(/ Key (\S+)$/)?.[1] };
}

/** The page shows the payment paid under `key`, the ledger holds that one charge, every charge sent went under it, and nothing went wrong on the page. */
async function assertPaidOnce({ server, account, page, keys, problems }, key) {
  const paid = await shown(page, /^Paid/);
  assert.equal(paid.key, key, `the page shows: ${paid.text}`);
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1, `ledger rows: ${JSON.stringify(ledger)}`);
  assert.equal(ledger[0].idempotency_key, key);
  assert.equal(ledger[0].amount, 4200);
  assert.equal(ledger[0].currency, 'EUR');
  assert.deepEqual(new Set(keys), new Set([key]), `keys sent: ${keys.join(', ')}`);
  assert.deepEqual(problems, []);
}

for (const build of ['development', 'production']) {
  for (const [recipe, name] of Object.entries(RECIPES)) {
    const title = (what) => `${build} build, ${name}: ${what}`;

    test(title('a double click on Pay charges once; the second click sends nothing'), async (t) => {
      const seen = await checkout(t, build, recipe);
      await seen.pay.dblclick();
      const { key } = await shown(seen.page, /^Paid/);
      await assertPaidOnce(seen, key);
      assert.equal(seen.keys.length, 1, 'the second click joined the first');
    });

    test(title('the answer lost while the user clicks again: the page shows paid, one charge'), async (t) => {
      const seen = await checkout(t, build, recipe);
      // The charge is made, slowly, and its answer never arrives.
      await seen.server.faults(seen.account, { drop_next: 1, slow_ms: 2000 });
      const sent = seen.page.waitForRequest((request) => request.method() === 'POST' && request.url().endsWith('/api/charges'));
      await seen.pay.click();
      await sent;
      // Nothing seems to happen: the user clicks again. (Were the payment
      // over already, Pay would be disabled and this click would time out.)
      await seen.pay.click();
      const { key } = await shown(seen.page, /^Paid/);
      await assertPaidOnce(seen, key);
    });

    test(title('given up (503, Retry-After 120 s), then Pay again: the same key, one charge'), async (t) => {
      const seen = await checkout(t, build, recipe);
      await seen.server.faults(seen.account, { fail_next: [{ status: 503, headers: { 'Retry-After': '120' } }] });
      await seen.pay.click();
      const failed = await shown(seen.page, /^Not confirmed yet\./);
      assert.match(failed.key ?? '', /^\S{8,}$/, `the page shows: ${failed.text}`);
      assert.deepEqual(await seen.server.ledger(seen.account), []);
      await seen.pay.click();
      await assertPaidOnce(seen, failed.key);
      assert.equal(seen.keys.length, 2);
    });

    test(title('a reload while the payment is slow: the page resumes it and shows the same key, one charge'), async (t) => {
      const seen = await checkout(t, build, recipe);
      await seen.server.faults(seen.account, { slow_ms: 2500 });
      const sent = seen.page.waitForRequest((request) => request.method() === 'POST' && request.url().endsWith('/api/charges'));
      await seen.pay.click();
      await sent;
      const [key] = seen.keys;
      await seen.page.reload();
      await assertPaidOnce(seen, key);
    });
  }
}
