// What a browser downloads: the package's WebAssembly and JavaScript,
// gzipped at level 9. The target is 20 KiB in all; the package is not
// there yet, so this test holds the line where it is (CEILING: lower it as
// the package shrinks, never raise it) and prints the distance to the
// target with each file's raw and gzipped size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync, constants } from 'node:zlib';
import { pkg } from './harness.mjs';

const TARGET = 20 * 1024;
const CEILING = 35 * 1024;
const SHIPPED = ['oncely.wasm', 'core.js', 'client.js', 'index.js'];

test(`the shipped WebAssembly and JavaScript gzip to at most ${CEILING} bytes (target ${TARGET})`, async () => {
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
  console.log(`target${' '.repeat(Math.max(0, width - 6))}  ${''.padStart(9)}  ${String(TARGET).padStart(9)}`);
  if (gzipped > TARGET) {
    console.log(`NOT MET: ${gzipped - TARGET} bytes over the ${TARGET}-byte target`);
  }
  assert.ok(
    gzipped <= CEILING,
    `the shipped files gzip to ${gzipped} bytes (${(gzipped / 1024).toFixed(1)} KiB), over the ${CEILING}-byte ceiling by ${gzipped - CEILING}`,
  );
});
