// Node: read the WebAssembly from disk (Node's fetch cannot read file: URLs).
// Use the memory store: Node has no IndexedDB.
import { readFile } from 'node:fs/promises';
import { entry } from './client.js';

export { OncelyError } from './client.js';
export const Oncely = entry(() => readFile(new URL('./oncely.wasm', import.meta.url)));
