// The WebAssembly core's calls (js/src/lib.rs, "The boundary"): numbers
// cross as numbers; bytes and texts are written into the module's memory at
// room it allocates, several as one run of fields (a little-endian u32
// length, then the bytes); an answer with bytes is read at `out()` before
// the next call replaces it. The module imports nothing.
let wasm;
/** UTF-8, for the core and the client alike. */
export const encoder = new TextEncoder();
export const decoder = new TextDecoder();
// A view of the module's memory (a new one: the memory may have grown).
const memory = () => new Uint8Array(wasm.memory.buffer);

/** Instantiates the core from a URL (fetched: the module is small, compiled at once) or its bytes. */
export async function load(source) {
  if (wasm) return;
  if (source instanceof URL) {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`${response.status} fetching ${source}`);
    source = await response.arrayBuffer();
  }
  wasm = (await WebAssembly.instantiate(source)).instance.exports;
}

// Copies `parts` (texts or bytes) into the core as one run of fields.
function fields(...parts) {
  parts = parts.map((part) => (typeof part === 'string' ? encoder.encode(part) : part));
  let room = 0;
  for (const part of parts) room += 4 + part.length;
  const at = wasm.alloc(room) >>> 0;
  const view = memory();
  let offset = at;
  for (const part of parts) {
    new DataView(view.buffer).setUint32(offset, part.length, true);
    view.set(part, offset + 4);
    offset += 4 + part.length;
  }
  return [at, room];
}

// Copies `bytes` into the core as they are (anything else as no bytes,
// which no record decodes from).
function put(bytes) {
  if (!(bytes instanceof Uint8Array)) bytes = new Uint8Array();
  const at = wasm.alloc(bytes.length) >>> 0;
  memory().set(bytes, at);
  return [at, bytes.length];
}

// The last answer, in the module's memory (valid until the next call).
function answer() {
  const at = wasm.out() >>> 0;
  const view = memory();
  return view.subarray(at + 4, at + 4 + new DataView(view.buffer).getUint32(at, true));
}
// The last answer's bytes (a copy), or its text.
const out = () => answer().slice();
const text = () => decoder.decode(answer());

const cores = new FinalizationRegistry((core) => wasm.core_free(core));

/**
 * What one client's flights share: the retry policy and budget, the
 * retention, the attempt timeout (a negative number keeps a default), the
 * user (empty: none), the names of headers stored besides the allow-list
 * and of those never stored (each ended by a line break). Freed once unreachable (its flights run under the
 * client that holds it).
 */
export function newCore(maxAttempts, baseDelayMs, maxDelayMs, deadlineMs, retentionMs, attemptTimeoutMs, user, stored, secret) {
  const core = wasm.core_new(maxAttempts, baseDelayMs, maxDelayMs, deadlineMs, retentionMs, attemptTimeoutMs, ...fields(user, stored, secret));
  const shared = {
    /** The flight's deadline in ms: the longest any wait of a flight lasts (core_new's answer). */
    deadline: +text(),

    /** A flight of the intent `name` (throws why, as a string, when the request is refused); free it. */
    flight(name, method, url, headers, body, now, random, authorized) {
      const at = wasm.flight(core, ...fields(name, method, url, headers, body, random, authorized), now);
      if (!at) throw text();
      return {
        // The record it would add.
        candidate: out(),
        board: (stored, now) => wasm.board(at, core, ...(stored ? put(stored) : [0, 0]), now),
        attempt: (headers, now) => wasm.attempt(at, ...fields(headers), now),
        timeout: (offline, now) => wasm.timeout(at, offline, now),
        remaining: (now) => wasm.timeout(at, -1, now),
        land: (status, headers, body, kind, now) => wasm.land(at, core, status, ...fields(headers, body), now, kind),
        interrupted: (store, message) => wasm.interrupted(at, store, ...fields(message)),
        // The record to write now (empty: none).
        write: () => (wasm.write(at), out()),
        info: () => (wasm.info(at), text()),
        body: () => (wasm.body(at), out()),
        free: () => wasm.flight_free(at),
      };
    },

    /** Whether the write `next` may replace the stored record `current` (the store's rule; never a record gone). */
    applies: (current, next) => !!current && !!wasm.applies(...fields(current, next)),

    /** A stored record's fields as lines, as this core sees it at `now`, or with `body` 1 its request body (throws why, as a string, when it is damaged). */
    stored(bytes, now, body) {
      if (!wasm.stored(core, ...put(bytes), now, body)) throw text();
      return body ? out() : text();
    },
  };
  cores.register(shared, core);
  return shared;
}
