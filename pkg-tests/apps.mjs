// The package as people install it: `npm pack`ed from pkg/ and installed
// into a fresh npm project made from a fixture app (pkg-tests/fixtures/),
// which Vite builds or serves, or Node runs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { root, pkg } from './harness.mjs';

export const fixtures = join(root, 'pkg-tests', 'fixtures');
/** The repository's Vite, run with `node` from an app's directory. */
export const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');

/** Runs a command to completion; rejects with its output when it fails. */
export function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 90_000, maxBuffer: 16 << 20, ...options }, (error, stdout, stderr) => {
      if (error) {
        error.message += `\n$ ${command} ${args.join(' ')}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
        reject(error);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/** `npm pack`s pkg/ into `dir`; resolves with the tarball's path. */
export async function pack(dir) {
  const { stdout } = await run('npm', ['pack', pkg, '--pack-destination', dir, '--json'], { cwd: dir });
  const [packed] = JSON.parse(stdout);
  const files = packed.files.map((file) => file.path);
  for (const shipped of ['index.js', 'node.js', 'oncely.wasm', 'index.d.ts', 'package.json']) {
    assert.ok(files.includes(shipped), `the tarball lacks ${shipped}: ${files.join(', ')}`);
  }
  return join(dir, packed.filename);
}

/**
 * A fresh npm project in `dir` (copied from `fixture`) with the packed
 * package installed. `linked` names packages the app uses besides oncely
 * (React…): they are linked from the repository's node_modules, the
 * versions of its package-lock.json, so the test needs no network and
 * every import resolves to one copy.
 */
export async function app(dir, fixture, tarball, name, { linked = [] } = {}) {
  await mkdir(dir, { recursive: true });
  await cp(fixture, dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }, null, 2));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: dir });
  const installed = JSON.parse(await readFile(join(dir, 'node_modules', 'oncely', 'package.json'), 'utf8'));
  assert.equal(installed.name, 'oncely');
  for (const dependency of linked) {
    const link = join(dir, 'node_modules', dependency);
    await mkdir(join(link, '..'), { recursive: true });
    await symlink(join(root, 'node_modules', dependency), link, 'dir');
  }
}
