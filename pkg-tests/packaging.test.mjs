// The package as people get it and use it: `npm pack`ed and installed into
// a fresh Vite app built with zero configuration, loaded by a plain module
// script, inside a dedicated worker, and run by Node through its "node"
// export condition. Each test starts what it needs (temporary directories,
// the reference server, Chromium) and ends all of it, pass or fail; each
// asserts the outcome its page or program reports and the ledger behind it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, site, launch, unique } from './harness.mjs';
import { fixtures, vite, run, pack, app } from './apps.mjs';

const TIMEOUT = 120_000;
/** How long a page may take to report its outcome. */
const PAGE_TIMEOUT = 30_000;

/** Collects clean-ups and runs them in reverse order after the test. */
function scope(t) {
  const cleanups = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        console.error('clean-up failed:', error);
      }
    }
  });
  return {
    defer(cleanup) {
      cleanups.push(cleanup);
    },
    async tempdir(prefix) {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      return dir;
    },
    async server(www) {
      const server = await startServer(www);
      cleanups.push(() => server.stop());
      return server;
    },
    async browser() {
      const browser = await launch();
      cleanups.push(() => browser.close());
      return browser;
    },
  };
}

/**
 * Opens `url` in a new context and waits until the page's <output id="out">
 * reports (data-state "done" or "error"); resolves with its data attributes
 * and the page errors and console errors seen on the way.
 */
async function outcomeOf(browser, url) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') {
        problems.push(`console ${message.type()}: ${message.text()} (${message.location().url})`);
      }
    });
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('out')?.dataset.state, null, { timeout: PAGE_TIMEOUT });
    const result = await page.evaluate(() => ({ ...document.getElementById('out').dataset }));
    return { result, problems };
  } finally {
    await context.close();
  }
}

/** The page reported one 201 charge and the ledger holds exactly that charge. */
async function assertOneCharge(server, account, { result, problems }) {
  assert.equal(result.state, 'done', `the page reported an error: ${result.error}\n${problems.join('\n')}`);
  assert.equal(result.status, '201');
  assert.match(result.key, /^\S{8,}$/);
  assert.equal(result.replayed, 'false');
  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1, `ledger rows: ${JSON.stringify(ledger)}`);
  assert.equal(ledger[0].idempotency_key, result.key);
  assert.equal(ledger[0].amount, 4200);
  assert.equal(ledger[0].currency, 'EUR');
  assert.deepEqual(problems, []);
}

/** Files under `dir`, relative, recursively. */
async function files(dir) {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath ?? entry.path, entry.name).slice(dir.length + 1));
}

test('a fresh Vite app builds with zero configuration and charges once', { timeout: TIMEOUT }, async (t) => {
  const s = scope(t);
  const tmp = await s.tempdir('oncely-vite-');
  const tarball = await pack(tmp);
  const dir = join(tmp, 'app');
  await app(dir, join(fixtures, 'vite-app'), tarball, 'oncely-vite-app');

  // No vite.config.*, no plugin: `vite build` as it comes.
  await run(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: dir });
  const dist = join(dir, 'dist');
  const built = await files(dist);
  const wasm = built.filter((file) => file.endsWith('.wasm'));
  assert.equal(wasm.length, 1, `Vite should emit the WebAssembly as one asset: ${built.join(', ')}`);
  let pointed = false;
  for (const file of built.filter((file) => file.endsWith('.js'))) {
    const code = await readFile(join(dist, file), 'utf8');
    assert.ok(!code.includes('node:fs'), `${file} holds the Node entry (node:fs): the browser build must use index.js`);
    pointed ||= code.includes(wasm[0].split('/').pop());
  }
  assert.ok(pointed, `no script of the build points at the emitted ${wasm[0]}`);

  const server = await s.server(dist);
  const browser = await s.browser();
  const account = unique('vite');
  const seen = await outcomeOf(browser, `${server.url}/index.html?ns=${unique('ns')}&account=${account}`);
  assert.equal(seen.result.store, 'indexeddb');
  await assertOneCharge(server, account, seen);
});

test('the Vite dev server (dependency pre-bundling) loads the WebAssembly and charges once', { timeout: TIMEOUT }, async (t) => {
  const s = scope(t);
  const tmp = await s.tempdir('oncely-vite-dev-');
  const tarball = await pack(tmp);
  const dir = join(tmp, 'app');
  await app(dir, join(fixtures, 'vite-app'), tarball, 'oncely-vite-dev-app');

  const port = await freePort();
  const child = spawn(process.execPath, [vite, '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  s.defer(() => stop(child));
  let output = '';
  const origin = `http://127.0.0.1:${port}`;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vite did not start:\n${output}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`vite exited with ${code}:\n${output}`)));
    const listen = (chunk) => {
      output += chunk;
      // The banner is coloured; strip the escapes before matching.
      if (output.replace(/\x1b\[[0-9;]*m/g, '').includes(`${origin}/`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', listen);
    child.stderr.on('data', listen);
  });

  // The API is the reference server on another origin (it answers CORS).
  const server = await s.server();
  const browser = await s.browser();
  const account = unique('vite-dev');
  const seen = await outcomeOf(browser, `${origin}/?ns=${unique('ns')}&account=${account}&api=${encodeURIComponent(server.url)}`);
  await assertOneCharge(server, account, seen);
});

// Opens the fixture page `file` (pkg-tests/fixtures/pages, served with the
// package by the reference server) for a fresh account and namespace.
async function fixturePage(t, file) {
  const s = scope(t);
  const pages = await site(join(fixtures, 'pages'));
  s.defer(() => pages.remove());
  const server = await s.server(pages.dir);
  const browser = await s.browser();
  const account = unique(file);
  const seen = await outcomeOf(browser, `${server.url}/${file}.html?ns=${unique('ns')}&account=${account}`);
  return { server, account, seen };
}

test('a plain <script type="module"> page imports /pkg/index.js and charges once', { timeout: TIMEOUT }, async (t) => {
  const { server, account, seen } = await fixturePage(t, 'plain');
  assert.equal(seen.result.store, 'indexeddb');
  await assertOneCharge(server, account, seen);
});

test('a dedicated module worker opens an IndexedDB client and charges once', { timeout: TIMEOUT }, async (t) => {
  const { server, account, seen } = await fixturePage(t, 'worker');
  assert.equal(seen.result.store, 'indexeddb');
  assert.equal(seen.result.webLocks, 'true');
  await assertOneCharge(server, account, seen);
});

test('Node ≥ 20 uses the "node" export: memory store, global fetch, replay and conflict', { timeout: TIMEOUT }, async (t) => {
  const major = Number(process.versions.node.split('.')[0]);
  assert.ok(major >= 20, `Node ${process.version}`);
  const s = scope(t);
  const tmp = await s.tempdir('oncely-node-');
  const tarball = await pack(tmp);
  const dir = join(tmp, 'app');
  await app(dir, join(fixtures, 'node-app'), tarball, 'oncely-node-app');
  const server = await s.server();
  const account = unique('node');

  // A child process, so the package resolves by name from the app's
  // node_modules; it must exit by itself (nothing left holding the loop).
  const { stdout } = await run(process.execPath, ['main.mjs', server.url, account], { cwd: dir, timeout: 60_000 });
  const seen = JSON.parse(stdout.trim().split('\n').pop());

  assert.match(seen.resolved, /\/node_modules\/oncely\/node\.js$/);
  assert.equal(seen.store, 'memory');
  assert.equal(seen.first.status, 201);
  assert.equal(seen.first.replayed, false);
  assert.equal(seen.first.attempts, 1);
  assert.equal(seen.first.body.idempotency_key, seen.first.key);
  assert.equal(seen.second.status, 201);
  assert.equal(seen.second.key, seen.first.key);
  assert.equal(seen.second.replayed, true);
  assert.equal(seen.conflict.resolved, undefined, `a conflicting send resolved: ${JSON.stringify(seen.conflict)}`);
  assert.equal(seen.conflict.isOncelyError, true);
  assert.equal(seen.conflict.name, 'OncelyError');
  assert.equal(seen.conflict.code, 'conflict');
  assert.equal(seen.conflict.key, seen.first.key);
  assert.deepEqual(seen.deadlined, Array(10).fill(201), 'attempt limits in whole milliseconds');

  const ledger = await server.ledger(account);
  assert.equal(ledger.length, 1, `ledger rows: ${JSON.stringify(ledger)}`);
  assert.equal(ledger[0].idempotency_key, seen.first.key);
  assert.equal(ledger[0].amount, 4200);
});

/** A TCP port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Ends `child` (a process this file started) and waits for it. */
async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
