// What a browser downloads: the package's WebAssembly and JavaScript,
// gzipped at level 9, at most 20 KiB in all (the aim is 16 KiB); the test
// prints each file's raw and gzipped size and the margin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync, constants } from 'node:zlib';
import { pkg } from './harness.mjs';

const LIMIT = 20 * 1024;
const AIM = 16 * 1024;
// What a browser loads: the entry module (client.js and core.js bundled in)
// and the WebAssembly.
const SHIPPED = ['oncely.wasm', 'index.js'];

test(`the shipped WebAssembly and JavaScript gzip to at most ${LIMIT} bytes`, async () => {
  let raw = 0;
  let gzipped = 0;
  const rows = [];
  for (const name of SHIPPED) {
    const bytes = await readFile(join(pkg, name));
    const packed = gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }).length;
    raw += bytes.length;
    gzipped += packed;
    rows.push([name, bytes.length, packed]);
  }
  rows.push(['total', raw, gzipped]);
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`${'file'.padEnd(width)}  ${'raw'.padStart(9)}  ${'gzip -9'.padStart(9)}`);
  for (const [name, size, packed] of rows) {
    console.log(`${name.padEnd(width)}  ${String(size).padStart(9)}  ${String(packed).padStart(9)}`);
  }
  console.log(`limit${' '.repeat(Math.max(0, width - 5))}  ${''.padStart(9)}  ${String(LIMIT).padStart(9)}  (aim ${AIM})`);
  assert.ok(
    gzipped <= LIMIT,
    `the shipped files gzip to ${gzipped} bytes (${(gzipped / 1024).toFixed(1)} KiB), over the ${LIMIT}-byte limit by ${gzipped - LIMIT}`,
  );
});

// The service worker's download, reported on its own: the worker entry
// (pkg/worker.js, the client bundled in) and the same WebAssembly. No page
// loads it.
test('the service worker download is reported apart from the page', async () => {
  let gzipped = 0;
  for (const name of ['oncely.wasm', 'worker.js']) {
    const packed = gzipSync(await readFile(join(pkg, name)), { level: constants.Z_BEST_COMPRESSION }).length;
    console.log(`worker: ${name.padEnd(12)} ${String(packed).padStart(9)}`);
    gzipped += packed;
  }
  console.log(`worker: total        ${String(gzipped).padStart(9)}`);
  const page = await readFile(join(pkg, 'index.js'), 'utf8');
  assert.ok(!page.includes('addEventListener("sync"'), 'the page does not download the worker part');
});
