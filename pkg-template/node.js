// Node: read the WebAssembly from disk (Node's fetch cannot read file: URLs).
// Use the memory store: Node has no IndexedDB.
import { readFile } from 'node:fs/promises';
import { entry } from './layer.js';

export { OncelyError } from './layer.js';
export const Oncely = entry(() => readFile(new URL('./oncely_bg.wasm', import.meta.url)));
