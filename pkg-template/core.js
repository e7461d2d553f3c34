// The WebAssembly core's calls (js/src/lib.rs, "The boundary"): numbers
// cross as numbers; bytes and texts are written into the module's memory at
// room it allocates, several as one run of fields (a little-endian u32
// length, then the bytes); an answer with bytes is read at `out()` before
// the next call replaces it. The module imports nothing.
let wasm;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const memory = () => wasm.memory.buffer;

/** Instantiates the core from a URL (fetched: the module is small, compiled at once) or its bytes. */
export async function load(source) {
  if (wasm) return;
  if (source instanceof URL || typeof source === 'string') {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`${response.status} fetching ${source}`);
    source = await response.arrayBuffer();
  }
  wasm = (await WebAssembly.instantiate(source, {})).instance.exports;
}

// Copies `parts` (texts or bytes) into the core as one run of fields.
function fields(...parts) {
  const list = parts.map((part) => (typeof part === 'string' ? encoder.encode(part) : part));
  const length = list.reduce((sum, part) => sum + 4 + part.length, 0);
  const at = wasm.alloc(length) >>> 0;
  const view = new DataView(memory(), at, length);
  let offset = 0;
  for (const part of list) {
    view.setUint32(offset, part.length, true);
    new Uint8Array(memory(), at + offset + 4, part.length).set(part);
    offset += 4 + part.length;
  }
  return [at, length];
}

// Copies `bytes` into the core as they are (anything else as no bytes,
// which no record decodes from).
function put(bytes) {
  if (!(bytes instanceof Uint8Array)) bytes = new Uint8Array();
  const at = wasm.alloc(bytes.length) >>> 0;
  new Uint8Array(memory(), at, bytes.length).set(bytes);
  return [at, bytes.length];
}

// The last answer's bytes (a copy), or its text.
function out() {
  const at = wasm.out() >>> 0;
  return new Uint8Array(memory(), at + 4, new DataView(memory()).getUint32(at, true)).slice();
}
const text = () => decoder.decode(out());

const cores = new FinalizationRegistry((core) => wasm.core_free(core));

/** The retry policy and budget one client's flights share (`0` keeps a default). */
export class Core {
  constructor(maxAttempts, baseDelayMs, maxDelayMs, deadlineMs) {
    this.at = wasm.core_new(maxAttempts, baseDelayMs, maxDelayMs, deadlineMs);
    cores.register(this, this.at);
  }

  /** A flight of the intent `name` (throws why, as a string, when the name or key is invalid); free it. */
  flight(name, method, url, headers, body, now, random) {
    const flight = wasm.flight(this.at, ...fields(name, method, url, headers, body, random), now);
    if (!flight) throw text();
    return new Flight(flight, this);
  }
}

class Flight {
  constructor(at, core) {
    this.at = at;
    this.core = core;
  }

  candidate() {
    wasm.candidate_record(this.at);
    return out();
  }

  board(stored, now) {
    return wasm.board(this.at, this.core.at, ...(stored ? put(stored) : [0, 0]), now);
  }

  attempt() {
    return wasm.attempt(this.at);
  }

  timeout(offline, now) {
    return wasm.timeout(this.at, offline, now);
  }

  land(status, headers, body, now) {
    return wasm.land(this.at, this.core.at, status, ...fields(headers, body), now);
  }

  write() {
    wasm.write(this.at);
    const record = out();
    return record.length ? record : undefined;
  }

  info() {
    wasm.info(this.at);
    return text();
  }

  body() {
    wasm.body(this.at);
    return out();
  }

  free() {
    wasm.flight_free(this.at);
  }
}

/** A stored record's fields as lines (throws why, as a string, when it is damaged). */
export function stored(bytes) {
  if (!wasm.stored(...put(bytes))) throw text();
  return text();
}

/** A stored record's request body. */
export function storedBody(bytes) {
  if (!wasm.stored_body(...put(bytes))) throw text();
  return out();
}
