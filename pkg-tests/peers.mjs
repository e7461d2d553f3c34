// oncely beside its peers, in one headless Chromium run against the
// reference server on loopback: workbox-background-sync and
// @tanstack/offline-transactions each doing the job oncely does — one
// durable send of POST /api/charges with a JSON body — from an entry module
// of pkg-tests/peers/ bundled by esbuild (minified, as an app ships it).
//
//   node pkg-tests/peers.mjs   (SAMPLES=200 WARMUP=20 PAUSE_MS=5 by default)
//
// Needs pkg/ (make pkg) and target/debug/oncely-server (cargo build --bin
// oncely-server). It prints three tables:
//
// - Download: what the page downloaded to do the job, per library, as it
//   was served (the bundle, and oncely's WebAssembly), gzipped at level 9.
// - Latency: the time one durable send adds over plain `fetch` (a fresh
//   Idempotency-Key each time), timed in the page with performance.now().
//   Rounds interleave every contender (the order rotates each round);
//   "added" is the per-round difference library − fetch, so the server's own
//   latency cancels out round by round. Each contender charges its own
//   account, and the run fails unless each account's ledger holds exactly
//   one row per send, and nothing is left queued in any library.
// - Capabilities: what each library does, from its documentation and source
//   (CAPABILITIES below, each fact with where it is read).
//
// What each timed send is (pkg-tests/peers/*.js):
// - oncely: `send` on an `Oncely.open({ store: 'indexeddb', durability:
//   'strict' })` client, a new intent per send: the intent committed to
//   IndexedDB, under a Web Lock, before the request; the outcome stored.
//   "oncely, relaxed" is the same with durability "relaxed" (a reference:
//   workbox asks for "relaxed", TanStack for no durability at all).
// - workbox: in the page, `Queue.pushRequest` (the request stored in
//   IndexedDB) then `Queue.replayRequests` (the entry taken out, then
//   fetched). Its usual home is a service worker, where BackgroundSyncPlugin
//   stores a request only after its fetch has failed: there, a request that
//   goes through costs the service worker's fetch and nothing is stored.
// - tanstack: an offline transaction (createOfflineTransaction, one insert
//   into a collection, `commit()`): the transaction serialized into the
//   IndexedDB outbox, the mutation function run (the fetch, with the
//   transaction's idempotency key), the entry deleted from the outbox.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { gzipSync, constants } from 'node:zlib';
import { startServer, site, launch, unique, root, pkg, isolatedPage, percentile, printTable } from './harness.mjs';

const SAMPLES = Number(process.env.SAMPLES ?? 200);
const WARMUP = Number(process.env.WARMUP ?? 20);
const PAUSE_MS = Number(process.env.PAUSE_MS ?? 5);
// A send that has not settled by then ends the run (a library retrying
// forever, a request that never reaches the server).
const TIMEOUT_MS = 30_000;

const sources = join(root, 'pkg-tests', 'peers');
const version = (dir) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;

/** Each library's bundle (an entry module of pkg-tests/peers/) and what it is, for the tables. */
const LIBRARIES = [
  { name: 'oncely', version: version(pkg), assets: ['oncely.wasm'] },
  { name: 'workbox', package: 'workbox-background-sync', version: version(join(root, 'node_modules', 'workbox-background-sync')), assets: [] },
  { name: 'tanstack', package: '@tanstack/offline-transactions', version: version(join(root, 'node_modules', '@tanstack', 'offline-transactions')), assets: [] },
];

/** What the page times: each an `open(options)` of a bundle (`null`: plain fetch). */
const CONTENDERS = [
  { label: 'fetch', bundle: null },
  { label: 'oncely', bundle: 'oncely', options: { durability: 'strict' } },
  { label: 'oncely, relaxed (reference)', bundle: 'oncely', options: { durability: 'relaxed' } },
  { label: 'workbox', bundle: 'workbox', options: {} },
  { label: 'tanstack', bundle: 'tanstack', options: {} },
];

// What each does, from its documentation and its source in node_modules
// (the versions installed by package.json), one fact per cell:
//
// workbox-background-sync (src/ of the package):
// - key: Queue mints none; StorableRequest.fromRequest stores every header
//   of the Request, so an Idempotency-Key the app put on it is replayed.
// - persisted first: BackgroundSyncPlugin's only hook is `fetchDidFail`
//   (src/BackgroundSyncPlugin.ts): a request is queued after its fetch threw,
//   never before it is sent. `pushRequest` itself waits for its IndexedDB
//   transaction, with durability "relaxed" (src/lib/QueueDb.ts addEntry).
// - duplicates: each `pushRequest` adds an entry (autoIncrement id); nothing
//   compares two requests.
// - tabs: the queue lives in the service worker, one for every tab; no lock
//   per request.
// - outcome: `replayRequests` awaits `fetch(entry.request.clone())` and
//   drops the response; only a fetch that throws puts the entry back (an
//   HTTP 500 does not), and the entry leaves the queue before its fetch
//   (`shiftRequest`), so a worker stopped mid-request loses it.
// - after the tab closes: yes; the Background Sync `sync` event wakes the
//   service worker (Chromium); where there is none the queue replays when
//   the service worker starts (Queue `_addSyncListener`).
//
// @tanstack/offline-transactions (src/ of the package, README.md,
// skills/offline/SKILL.md):
// - key: one `idempotencyKey` per offline transaction (a random UUID, or
//   the caller's), stored in the outbox with it and handed to the mutation
//   function on every attempt (OfflineTransaction, TransactionExecutor
//   runMutationFn); the app's mutation function sends it.
// - persisted first: in the leader tab, `persistTransaction` awaits
//   `outbox.add` before `executor.execute` (OfflineExecutor.ts); the
//   IndexedDB put resolves at its request's success, before its transaction
//   commits, with no durability asked (storage/IndexedDBAdapter.ts `set`).
//   Other tabs: `createTransaction` directly, nothing stored.
// - duplicates: each createOfflineTransaction is a new transaction (its own
//   id); the same idempotencyKey given twice is two outbox entries, each
//   run (the server must dedupe). Transactions run one at a time, FIFO
//   (KeyScheduler).
// - tabs: leader election (Web Locks "offline-executor-leader",
//   BroadcastChannel otherwise): the leader stores and runs the outbox, the
//   others send online-only, unstored (OfflineExecutor.createOfflineTransaction).
// - outcome: the mutation function's result is dropped (runMutationFn
//   returns nothing; `resolveTransaction(id, undefined)`), the entry deleted.
// - after the tab closes: no; the outbox is replayed when a tab opens again
//   and wins leadership (OfflineExecutor.loadAndReplayTransactions).
//
// oncely: README.md ("What it does") and pkg-template/.
const CAPABILITIES = [
  {
    capability: 'a key per intent',
    oncely: 'yes (ULID, stored)',
    workbox: "no (the app's header is stored)",
    tanstack: 'yes (UUID, stored)',
  },
  {
    capability: 'persisted before sending',
    oncely: 'yes (IndexedDB, strict)',
    workbox: 'no (queued after a fetch fails)',
    tanstack: 'leader tab (put, not committed)',
  },
  { capability: 'duplicates joined', oncely: 'yes', workbox: 'no', tanstack: 'no' },
  {
    capability: 'tabs coordinated',
    oncely: 'yes (Web Lock per intent)',
    workbox: 'one service worker, no lock',
    tanstack: 'leader tab; others unstored',
  },
  { capability: 'the outcome replayed', oncely: 'yes', workbox: 'no (dropped)', tanstack: 'no (dropped)' },
  {
    capability: 'finishing after the tab closes',
    oncely: "yes, with oncely/worker in the app's service worker (Background Sync; else its next start)",
    workbox: 'yes (Background Sync)',
    tanstack: 'no (next load)',
  },
];

/** How every bundle is built: as an app ships it. */
const ESBUILD = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  // The package as an app installs it: pkg/, by its name.
  alias: { oncely: join(pkg, 'index.js') },
  // Workbox's development checks and logs go, as in its production builds.
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
};

/** Bundles each library's entry into `dir`/<name>/<name>.js, with its assets beside it. */
async function bundle(dir) {
  for (const library of LIBRARIES) {
    const out = join(dir, library.name);
    await build({ ...ESBUILD, entryPoints: [join(sources, `${library.name}.js`)], outfile: join(out, `${library.name}.js`) });
    for (const asset of library.assets) await copyFile(join(pkg, asset), join(out, asset));
  }
}

/** Parts of the bundles, built alone the same way (not served): gzip -9 bytes of `source`. */
const PARTS = [
  { part: "oncely's JavaScript without the entry's own lines", source: "export { Oncely } from 'oncely';" },
  {
    part: "@tanstack/db's createCollection alone (TanStack's bundle holds it)",
    source: "import { createCollection } from '@tanstack/db'; export const c = createCollection({ getKey: (c) => c.id, sync: { sync: ({ markReady }) => markReady() } });",
  },
];
async function gzipOf(source) {
  const { outputFiles } = await build({ ...ESBUILD, stdin: { contents: source, resolveDir: root }, write: false });
  return gzipSync(outputFiles[0].contents, { level: constants.Z_BEST_COMPRESSION }).length;
}

/** Runs in the page: opens each contender, then `warmup + samples` rounds of every one. */
async function measure({ contenders, fetchAccount, samples, warmup, pauseMs, timeoutMs }) {
  const charge = { amount: 100, currency: 'eur' };
  const plain = {
    async send(charge) {
      const response = await fetch('/api/charges', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-account': fetchAccount, 'idempotency-key': crypto.randomUUID() },
        body: JSON.stringify(charge),
      });
      await response.arrayBuffer(); // as oncely and the TanStack mutation function do
      if (response.status !== 201) throw new Error(`fetch: ${response.status}`);
    },
  };
  const clients = [];
  const openMs = [];
  for (const { bundle, options } of contenders) {
    if (!bundle) {
      clients.push(plain);
      openMs.push(null);
      continue;
    }
    const { open } = await import(`/peers/${bundle}/${bundle}.js`);
    const opened = performance.now();
    clients.push(await open(options));
    openMs.push(performance.now() - opened);
  }

  const pause = () => new Promise((resume) => setTimeout(resume, pauseMs));
  const timed = (index) => {
    let timer;
    const start = performance.now();
    const sent = clients[index].send(charge).then(() => performance.now() - start);
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${contenders[index].label}: no answer in ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([sent, late]).finally(() => clearTimeout(timer));
  };
  // Each timing starts after a pause, so none includes what the one before
  // left running; the order rotates, so each contender takes each place.
  const ms = contenders.map(() => []);
  for (let round = 0; round < warmup + samples; round++) {
    for (let step = 0; step < contenders.length; step++) {
      const index = (round + step) % contenders.length;
      await pause();
      const took = await timed(index);
      if (round >= warmup) ms[index].push(took);
    }
  }
  const pending = [];
  for (const client of clients) pending.push(client.pending ? await client.pending() : 0);
  return { openMs, ms, pending };
}

const served = await site();
const server = await startServer(served.dir);
const browser = await launch();
try {
  const peers = join(served.dir, 'peers');
  await mkdir(peers);
  await copyFile(join(sources, 'index.html'), join(peers, 'index.html'));
  await bundle(peers);

  const context = await browser.newContext();
  // Cross-origin isolated: performance.now() at 5 µs resolution.
  const { page, isolated } = await isolatedPage(server, context, '/peers/index.html');
  // Every file the page loads from a library's folder, as served.
  const downloads = [];
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    const match = path.match(/^\/peers\/([^/]+)\/([^/]+)$/);
    if (match) downloads.push(response.body().then((body) => ({ library: match[1], file: match[2], body })));
  });

  const accounts = CONTENDERS.map(() => unique('peers'));
  const contenders = CONTENDERS.map(({ label, bundle, options }, i) => ({
    label,
    bundle,
    options: { ...options, account: accounts[i], namespace: unique('peers'), name: unique('peers') },
  }));
  const { openMs, ms, pending } = await page.evaluate(measure, {
    contenders,
    fetchAccount: accounts[0],
    samples: SAMPLES,
    warmup: WARMUP,
    pauseMs: PAUSE_MS,
    timeoutMs: TIMEOUT_MS,
  });
  const files = await Promise.all(downloads);
  await context.close();

  // Every send reached the server and was charged once; nothing is left
  // queued. A library whose send did not arrive fails the run here.
  const expected = SAMPLES + WARMUP;
  for (const [i, { label }] of CONTENDERS.entries()) {
    const rows = (await server.ledger(accounts[i])).length;
    if (rows !== expected) throw new Error(`${label}: ${rows} ledger rows after ${expected} sends`);
    if (pending[i] !== 0) throw new Error(`${label}: ${pending[i]} sends still queued after the rounds`);
  }

  // Download: the files served, each the one built (nothing else, nothing missing).
  const sizes = [];
  for (const library of LIBRARIES) {
    const built = await readdir(join(peers, library.name));
    const got = files.filter((file) => file.library === library.name);
    const names = got.map((file) => file.file).sort();
    if (names.join() !== [...built].sort().join()) {
      throw new Error(`${library.name}: the page downloaded [${names}], the build holds [${built}]`);
    }
    const row = { library: `${library.package ?? library.name} ${library.version}`, 'JS raw': 0, 'JS gzip': 0, 'wasm raw': 0, 'wasm gzip': 0, 'total gzip': 0 };
    for (const { file, body } of got) {
      const onDisk = await readFile(join(peers, library.name, file));
      if (!onDisk.equals(body)) throw new Error(`${library.name}/${file}: served bytes differ from the build`);
      const kind = file.endsWith('.wasm') ? 'wasm' : 'JS';
      const packed = gzipSync(body, { level: constants.Z_BEST_COMPRESSION }).length;
      row[`${kind} raw`] += body.length;
      row[`${kind} gzip`] += packed;
      row['total gzip'] += packed;
    }
    sizes.push(row);
  }

  const fetchMs = ms[0];
  const latency = CONTENDERS.map(({ label }, i) => {
    const added = ms[i].map((took, round) => took - fetchMs[round]);
    return {
      contender: label,
      n: ms[i].length,
      'open ms': openMs[i] ?? '',
      p50: percentile(ms[i], 50),
      p95: percentile(ms[i], 95),
      'added p50': i === 0 ? '' : percentile(added, 50),
      'added p95': i === 0 ? '' : percentile(added, 95),
    };
  });

  console.log(`oncely and its peers, one durable POST /api/charges on loopback, Chromium ${browser.version()}, Node ${process.version}`);
  console.log(`bundled by esbuild ${(await import('esbuild')).version} (--bundle --minify, browser, ESM)`);
  console.log('\ndownload: the files the page loaded for the job, bytes (gzip -9)');
  printTable(sizes, { cell: String });
  for (const { part, source } of PARTS) console.log(`  of which ${part}: ${await gzipOf(source)}`);
  console.log(`\nlatency: ${SAMPLES} interleaved rounds after ${WARMUP} warm-up rounds; ms; added = per-round library − fetch`);
  console.log(`timer: performance.now(), ${isolated ? 'cross-origin isolated (5 µs resolution)' : 'not isolated (100 µs resolution)'}; open ms: the library's start (oncely's first loads the WebAssembly)`);
  printTable(latency);
  console.log('\ncapabilities (documented behaviour and source; see pkg-tests/peers.mjs)');
  printTable(CAPABILITIES, { left: true });
  console.log(`\nledger: ${expected} charges on each contender's account, none left queued (${relative(root, sources)}/*.js: what each send is)`);
} finally {
  await browser.close();
  await server.stop();
  await served.remove();
}
