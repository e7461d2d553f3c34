// Browsers, workers and bundlers: the WebAssembly sits next to this file,
// and `new URL(..., import.meta.url)` lets bundlers (Vite, webpack, Rollup)
// find and emit it.
import { entry } from './client.js';

export { OncelyError } from './client.js';
export const Oncely = entry(() => new URL('./oncely.wasm', import.meta.url));
