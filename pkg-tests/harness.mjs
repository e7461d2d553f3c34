// What every package test needs: the reference server on loopback (real
// SQLite ledger, fault injection) serving the package and the test pages,
// and Debian's Chromium driven by playwright-core. Nothing outlives a test
// file: `stop()` ends the browser, the server and the temporary directory.
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const pkg = join(root, 'pkg');

/** Starts the reference server serving `www` (a directory) on a free port. */
export async function startServer(www) {
  const dir = await mkdtemp(join(tmpdir(), 'oncely-server-'));
  const bin = join(root, 'target', 'debug', 'oncely-server');
  const child = spawn(bin, ['--addr', '127.0.0.1:0', '--db', join(dir, 'ledger.db'), ...(www ? ['--www', www] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let seen = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`oncely-server exited with ${code} before listening`)));
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      const match = seen.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (match) resolve(match[0]);
    });
  });
  child.stdout.resume();
  return {
    url,
    /** The ledger rows of `account`. */
    async ledger(account) {
      const response = await fetch(`${url}/api/charges`, { headers: { 'x-account': account } });
      if (!response.ok) throw new Error(`GET /api/charges: ${response.status}`);
      const body = await response.json();
      return Array.isArray(body) ? body : body.charges;
    },
    /** Switches faults on for `account` (see server/src/faults.rs). */
    async faults(account, settings) {
      const response = await fetch(`${url}/api/faults`, {
        method: 'POST',
        headers: { 'x-account': account, 'content-type': 'application/json' },
        body: JSON.stringify(settings),
      });
      if (!response.ok) throw new Error(`POST /api/faults: ${response.status} ${await response.text()}`);
    },
    /** Switches every fault of `account` off. */
    async clearFaults(account) {
      const response = await fetch(`${url}/api/faults`, { method: 'DELETE', headers: { 'x-account': account } });
      if (!response.ok) throw new Error(`DELETE /api/faults: ${response.status} ${await response.text()}`);
    },
    async stop() {
      child.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A directory holding the package at /pkg/ and `pages` (a folder) at /. */
export async function site(pages) {
  const dir = await mkdtemp(join(tmpdir(), 'oncely-site-'));
  await cp(pkg, join(dir, 'pkg'), { recursive: true });
  if (pages) await cp(pages, dir, { recursive: true });
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Debian's Chromium, headless, with a fresh profile. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** A name no other test uses (accounts, namespaces, intents). */
export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** What a file of browser tests shares: `pages` (a folder) served with the
 *  package by the reference server, and Chromium; `stop()` ends all three. */
export async function stage(pages) {
  const served = await site(pages);
  const stops = [() => served.remove()];
  const stop = async () => {
    for (const end of stops.reverse()) await end();
  };
  try {
    const server = await startServer(served.dir);
    stops.push(() => server.stop());
    const browser = await launch();
    stops.push(() => browser.close());
    return { server, browser, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A new tab of `context` on the test page of `server`, with the package
 *  loaded as `window.oncely`. */
export async function testPage(server, context) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(`${server.url}/index.html`);
  await page.evaluate(async () => {
    window.oncely = await import('/pkg/index.js');
  });
  return page;
}

/** All that the IndexedDB of `namespace` holds in `page`, as one text: each record's readable fields and its bytes. */
export function storedText(page, namespace) {
  return page.evaluate(
    (namespace) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open(`oncely:${namespace}`);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const all = open.result.transaction('intents').objectStore('intents').getAll();
          all.onsuccess = () => {
            open.result.close();
            resolve(all.result.map(({ record, ...shown }) => JSON.stringify(shown) + new TextDecoder().decode(record)).join(''));
          };
        };
      }),
    namespace,
  );
}

/** Counts the POSTs to /api/charges `page` sends (`.posts`). */
export function countCharges(page) {
  const seen = { posts: 0 };
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/api/charges')) seen.posts += 1;
  });
  return seen;
}

/** A new tab of `context` on `path` of `server`, the document served
 *  cross-origin isolated (COOP + COEP on it alone; the API requests go
 *  straight to the server): performance.now() then has 5 µs resolution
 *  instead of 100 µs. `isolated` says whether the browser granted it. */
export async function isolatedPage(server, context, path) {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.route(`${server.url}${path}`, async (route) => {
    const response = await route.fetch();
    await route.fulfill({
      response,
      headers: {
        ...response.headers(),
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      },
    });
  });
  await page.goto(`${server.url}${path}`);
  return { page, isolated: await page.evaluate(() => crossOriginIsolated) };
}

/** Nearest-rank percentile. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Prints `rows` (objects with the same keys, in column order) as aligned
 *  columns, the first left-aligned and the others right-aligned (or all
 *  left-aligned: `left`); `cell` writes one value (by default numbers with
 *  two decimals, except in a column named "n"). */
export function printTable(rows, { cell = (value, column) => (column === 'n' || typeof value !== 'number' ? String(value) : value.toFixed(2)), left = false } = {}) {
  const columns = Object.keys(rows[0]);
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column], column).length)));
  const line = (values) => values.map((value, i) => (i === 0 || left ? value.padEnd(widths[i]) : value.padStart(widths[i]))).join('  ').trimEnd();
  console.log(line(columns));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of rows) console.log(line(columns.map((column) => cell(row[column], column))));
}
