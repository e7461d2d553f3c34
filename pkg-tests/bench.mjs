// What oncely adds to a request, in the browser: headless Chromium against
// the reference server on loopback, the same POST /api/charges sent with
// plain `fetch` (a fresh Idempotency-Key each time) and with `send` (a fresh
// intent each time), interleaved in rounds whose order alternates, timed in
// the page with performance.now(). For an IndexedDB client with durability
// "strict", one with "relaxed", and two references: the memory store (no
// lock, no IndexedDB), and the floor — the same lock and strict record
// write a few lines of JavaScript need before the request leaves, and
// nothing else (what no implementation of the guarantee can avoid); the
// outcome's write and the lock's release come after the answer, in a task
// of their own, as oncely does them.
//
//   node pkg-tests/bench.mjs   (SAMPLES=200 WARMUP=20 PAUSE_MS=5 by default)
//
// Needs pkg/ (make pkg) and target/debug/oncely-server (cargo build --bin
// oncely-server). "added" is the per-round difference oncely − fetch, so
// the server's own latency, shared by both, cancels out round by round.
import { join } from 'node:path';
import { startServer, site, launch, unique, root, isolatedPage, percentile, printTable } from './harness.mjs';

const SAMPLES = Number(process.env.SAMPLES ?? 200);
const WARMUP = Number(process.env.WARMUP ?? 20);
const PAUSE_MS = Number(process.env.PAUSE_MS ?? 5);

const CONFIGS = [
  { label: 'indexeddb, strict', options: { store: 'indexeddb', durability: 'strict' } },
  { label: 'indexeddb, relaxed', options: { store: 'indexeddb', durability: 'relaxed' } },
  { label: 'memory (reference)', options: { store: 'memory' } },
  { label: 'floor (reference)', options: { floor: true } },
];

/** Runs in the page: one client, `warmup + samples` rounds of fetch and send. */
async function measure({ options, account, samples, warmup, pauseMs: PAUSE_MS }) {
  /**
   * What any client must do for a request under the same guarantees, and
   * nothing else: a ~300-byte record added in a strict IndexedDB
   * transaction while the intent's Web Lock is asked for, both answered;
   * then the request; then, in the task after the answer's, the outcome's
   * write placed (not awaited) and the lock released. The browser's own
   * floor for `send`.
   */
  async function floor(namespace) {
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open(`floor:${namespace}`, 1);
      request.onupgradeneeded = () => request.result.createObjectStore('intents');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const write = (mode, bytes, intent) => {
      const tx = db.transaction('intents', 'readwrite', { durability: 'strict' });
      tx.objectStore('intents')[mode](bytes, intent);
      tx.commit();
      return new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onerror = tx.onabort = () => reject(tx.error);
      });
    };
    const { port1, port2 } = new MessageChannel();
    const later = [];
    port1.onmessage = () => later.shift()();
    return {
      async send({ intent, method, url, headers, body }) {
        const record = crypto.getRandomValues(new Uint8Array(300));
        const added = write('add', record, intent);
        const release = await new Promise((granted) => {
          navigator.locks.request(`floor:${namespace}/${intent}`, { ifAvailable: true }, () => new Promise(granted));
        });
        await added;
        const response = await fetch(url, { method, headers: { ...headers, 'idempotency-key': crypto.randomUUID() }, body });
        const outcome = new Uint8Array(await response.arrayBuffer());
        later.push(() => {
          write('put', outcome, intent).catch(() => {}); // placed, not awaited
          release();
        });
        port2.postMessage(0);
        return { status: response.status, attempts: 1 };
      },
    };
  }

  const { Oncely } = await import('/pkg/index.js');
  const opened = performance.now();
  const client = options.floor ? await floor(options.namespace) : await Oncely.open(options);
  const openMs = performance.now() - opened;
  const headers = { 'content-type': 'application/json', 'x-account': account };
  const body = JSON.stringify({ amount: 100, currency: 'eur' });

  const plain = async () => {
    const start = performance.now();
    const response = await fetch('/api/charges', {
      method: 'POST',
      headers: { ...headers, 'idempotency-key': crypto.randomUUID() },
      body,
    });
    await response.arrayBuffer(); // oncely reads (and stores) the body too
    const ms = performance.now() - start;
    if (response.status !== 201) throw new Error(`fetch: ${response.status}`);
    return ms;
  };
  let next = 0;
  const once = async () => {
    const intent = `bench-${next++}`;
    const start = performance.now();
    const outcome = await client.send({ intent, method: 'POST', url: '/api/charges', headers, body });
    const ms = performance.now() - start;
    if (outcome.status !== 201 || outcome.attempts !== 1) {
      throw new Error(`send: ${outcome.status} after ${outcome.attempts} attempts`);
    }
    return ms;
  };

  // Each timing starts after a pause, so neither includes what the other
  // left running (an outcome's write still committing, the browser's own
  // bookkeeping of the previous request).
  const pause = () => new Promise((resume) => setTimeout(resume, PAUSE_MS));
  const fetchMs = [];
  const oncelyMs = [];
  for (let round = 0; round < warmup + samples; round++) {
    let f, o;
    await pause();
    if (round % 2 === 0) {
      f = await plain();
      await pause();
      o = await once();
    } else {
      o = await once();
      await pause();
      f = await plain();
    }
    if (round >= warmup) {
      fetchMs.push(f);
      oncelyMs.push(o);
    }
  }
  return { openMs, fetchMs, oncelyMs };
}

const pages = await site(join(root, 'pkg-tests', 'site'));
const server = await startServer(pages.dir);
const browser = await launch();
try {
  const context = await browser.newContext();
  // Cross-origin isolated: performance.now() at 5 µs resolution.
  const { page, isolated } = await isolatedPage(server, context, '/index.html');

  const rows = [];
  for (const config of CONFIGS) {
    const account = unique('bench');
    const options = { ...config.options, namespace: unique('bench') };
    const { openMs, fetchMs, oncelyMs } = await page.evaluate(measure, { options, account, samples: SAMPLES, warmup: WARMUP, pauseMs: PAUSE_MS });
    const added = oncelyMs.map((ms, i) => ms - fetchMs[i]);
    // Every request of the run is one charge: none lost, none doubled.
    const ledger = await server.ledger(account);
    const expected = 2 * (SAMPLES + WARMUP);
    if (ledger.length !== expected) throw new Error(`${config.label}: ${ledger.length} ledger rows, expected ${expected}`);
    rows.push({
      config: config.label,
      n: SAMPLES,
      'open ms': openMs,
      'fetch p50': percentile(fetchMs, 50),
      'fetch p95': percentile(fetchMs, 95),
      'oncely p50': percentile(oncelyMs, 50),
      'oncely p95': percentile(oncelyMs, 95),
      'added p50': percentile(added, 50),
      'added p95': percentile(added, 95),
    });
    console.error(`${config.label}: done`);
  }
  await context.close();

  console.log(`oncely send vs plain fetch, POST /api/charges on loopback, Chromium ${browser.version()}, Node ${process.version}`);
  console.log(`${SAMPLES} rounds after ${WARMUP} warm-up rounds; ms; added = per-round oncely − fetch; open ms: Oncely.open (the first loads the WebAssembly)`);
  console.log(`timer: performance.now(), ${isolated ? 'cross-origin isolated (5 µs resolution)' : 'not isolated (100 µs resolution)'}`);
  printTable(rows);
} finally {
  await browser.close();
  await server.stop();
  await pages.remove();
}
