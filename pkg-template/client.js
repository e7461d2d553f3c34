// oncely in JavaScript: performs what a flight needs (fetch, IndexedDB, Web
// Locks, timers, events) and asks the WebAssembly core what to do next —
// the same core, and the same decisions, as the Rust client's
// (src/pilot.rs). Nothing here decides whether to retry, how long to wait,
// what a status means or whether a request conflicts with its record.
import { decoder, encoder, load, newCore } from './core.js';

/** Every oncely failure: `code` is "conflict", "rejected", "gave_up", "expired", "credentials", "storage", "csp" or "invalid". */
export class OncelyError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'OncelyError';
    this.code = code;
  }
}

// What the core answers (js/src/lib.rs, `next`).
const DONE = 1;
const RETRY = 2;
const TYPES = ['created', 'attempt', 'retry', 'joined', 'replayed', 'conflict', 'settled', 'failed', 'offline', '*'];
// The classes a `classify` hook may answer, as the core numbers them (0: its own).
const CLASSES = [, 'settle', 'retry', 'in_progress', 'reject', 'unauthorized'];
const NULL_BODY = [101, 103, 204, 205, 304];
const scope = globalThis;

function failure(message, code, intent, key, lastStatus) {
  const error = new OncelyError(message, code);
  if (intent !== undefined) error.intent = intent;
  if (key) error.key = key;
  if (lastStatus !== undefined) error.lastStatus = lastStatus;
  return error;
}

const invalid = (message, intent, key) => failure(message, 'invalid', intent, key);
const storage = (message, intent, key) => failure(message, 'storage', intent, key);
const describe = (error) => String(error?.message ?? error);
// Headers as lines: a name, then its value.
const lines = (headers) => {
  let text = '';
  headers.forEach((value, name) => (text += `${name}\n${value}\n`));
  return text;
};
// Header names, each ended by a line break.
const keys = (headers) => {
  let text = '';
  headers.forEach((_, name) => (text += `${name}\n`));
  return text;
};
// Header lines as `Headers`; one the platform refuses to hold is left out.
const toHeaders = (lines) => {
  const headers = new Headers();
  for (let i = 0; i + 1 < lines.length; i += 2) {
    try {
      headers.append(lines[i], lines[i + 1]);
    } catch {}
  }
  return headers;
};

/** The `Oncely` entry point, with the WebAssembly located by `locate`. */
export function entry(locate) {
  let ready;
  return {
    async open(options) {
      ready ??= Promise.resolve(locate()).then(load);
      try {
        await ready;
      } catch (cause) {
        ready = undefined;
        // A Content-Security-Policy without 'wasm-unsafe-eval' refuses to
        // compile any WebAssembly: its own code, naming the fix.
        const csp = /Content.Security.Policy|unsafe-eval/i.test(describe(cause));
        const error = failure(
          `oncely could not load its WebAssembly: ${describe(cause)}${csp ? " (allow script-src 'wasm-unsafe-eval', and the module's URL in connect-src)" : ''}`,
          csp ? 'csp' : 'storage',
        );
        error.cause = cause;
        throw error;
      }
      return Oncely.open(options ?? {});
    },
  };
}

// `options[name]`, unless `valid` refuses it ("invalid", saying what it must be).
function option(options, name, valid, what, prefix = '') {
  const value = options[name];
  if (value !== undefined && !valid(value)) throw invalid(`${prefix}${name} must be ${what}`);
  return value;
}

// One of `allowed`; left out, the first.
const choice = (options, name, allowed) =>
  option(options, name, (value) => allowed.includes(value), allowed.map((a) => `"${a}"`).join(' or ')) ?? allowed[0];

const hook = (options, name) => option(options, name, (value) => typeof value === 'function', 'a function');

// A number of at least `least` (ms, or attempts); left out, -1: the default.
const number = (options, name, least = 0, prefix = 'retry.') =>
  option(options, name, (value) => typeof value === 'number' && value >= least && value < Infinity, `a number >= ${least}`, prefix) ?? -1;

// Header names of `options[name]`, checked and lower-cased, each ended by
// a line break.
function names(options, name) {
  try {
    return keys(new Headers((options[name] ?? []).map((header) => [header, ''])));
  } catch {
    throw invalid(`${name} must be an array of header names`);
  }
}

/**
 * Makes requests happen once: each intent is recorded before it is sent,
 * sent with one `Idempotency-Key` however often it is retried, reloaded or
 * raced by another tab, and its outcome replayed afterwards.
 */
class Oncely {
  #core;
  #store;
  #durability;
  #locks = null;
  #credentials;
  #authorize;
  #classify;
  #persisted = null;
  #listeners = new Set();
  #flights = new Map();

  // Checks the options (index.d.ts, `OpenOptions`); `open` adds the store.
  constructor(options) {
    if (typeof options !== 'object') throw invalid('open(): options must be an object');
    const { retry = {} } = options;
    const namespace = option(options, 'namespace', (value) => typeof value === 'string', 'a string') ?? 'default';
    const kind = choice(options, 'store', ['indexeddb', 'memory']);
    this.#durability = choice(options, 'durability', ['strict', 'relaxed']);
    const user = option(options, 'user', (value) => typeof value === 'string' && value !== '', 'a non-empty string');
    this.#credentials = choice(options, 'credentials', ['same-origin', 'include']);
    this.#authorize = hook(options, 'authorize');
    this.#classify = hook(options, 'classify');
    this.#core = newCore(
      number(retry, 'maxAttempts', 1),
      number(retry, 'baseDelayMs'),
      number(retry, 'maxDelayMs'),
      number(retry, 'deadlineMs'),
      number(options, 'retentionMs', 0, ''),
      number(retry, 'attemptTimeoutMs'),
      user ?? '',
      names(options, 'storedHeaders'),
      names(options, 'secretHeaders'),
    );
    this.namespace = namespace;
    this.user = user;
    this.store = kind;
    this.webLocks = false;
  }

  static async open(options) {
    const client = new Oncely(options);
    if (client.store === 'memory') {
      client.#store = memoryStore(client.#core);
      return client;
    }
    client.#store = await indexedDbStore(client.namespace, client.#durability, client.#core);
    client.#locks = scope.navigator?.locks ?? null;
    client.webLocks = Boolean(client.#locks);
    // Asked only when the app opts in: Firefox prompts the user for it.
    if (options.persist === true) {
      try {
        client.#persisted = scope.navigator.storage.persist();
      } catch {
        // Not allowed here: reported as not persisted.
      }
    }
    return client;
  }

  /** Sends `request` once (see the README); resolves with its `Outcome`. */
  async send(request) {
    if (typeof request !== 'object' || request === null) throw invalid('send(): request must be an object');
    const { intent, method = 'POST', url, headers, body, signal } = request;
    if (typeof intent !== 'string') throw invalid('send(): intent must be a string');
    if (typeof method !== 'string') throw invalid('send(): method must be a string', intent);
    if (url === undefined) throw invalid('send(): url is required', intent);
    let bytes;
    if (body === undefined || body === null) bytes = new Uint8Array();
    else if (typeof body === 'string') bytes = encoder.encode(body);
    // A copy: the caller may reuse its buffer while the intent is in flight.
    else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) bytes = new Uint8Array(body.buffer ?? body, body.byteOffset, body.byteLength).slice();
    else throw invalid('send(): body must be a string, bytes or null', intent);
    // Checked (method, URL, headers) without the body, which costs the
    // platform a copy; the one rule about bodies, checked here.
    const parts = checked(intent, () => new Request(url, { method, headers }));
    if (bytes.length && (parts.method === 'GET' || parts.method === 'HEAD')) throw invalid(`invalid request: ${parts.method} cannot have a body`, intent);
    return new Outcome(...(await this.#send(intent, parts, bytes, signal)));
  }

  /** `fetch`, made to happen once: `init.intent` names the intent; resolves with a standard `Response`. */
  async fetch(input, init) {
    const intent = init?.intent;
    if (typeof intent !== 'string') throw invalid('fetch(): init.intent must be a string');
    // A FormData body is serialised with a new random boundary each time:
    // never the same request twice.
    if (init.body instanceof FormData) throw invalid('fetch(): FormData never replays: send JSON, text or bytes', intent);
    const parts = checked(intent, () => new Request(input, init));
    const bytes = new Uint8Array(await parts.arrayBuffer());
    const [, { status, headers, key }, body] = await this.#send(intent, parts, bytes, init.signal);
    try {
      return new Response(NULL_BODY.includes(status) ? null : body, { status, headers: headers() });
    } catch {
      throw invalid('the outcome is no valid Response: use send()', intent, key);
    }
  }

  // The intent's flight (joined or launched, unless `signal` has aborted),
  // or as soon as `signal` aborts, its reason: the caller stops waiting; the
  // flight goes on, and the intent stays recorded.
  #send(intent, parts, bytes, signal) {
    signal?.throwIfAborted();
    const landing = this.#run(intent, parts, bytes);
    return signal
      ? new Promise((answer, refuse) => {
          signal.addEventListener('abort', () => refuse(signal.reason), { once: true });
          landing.then(answer, refuse);
        })
      : landing;
  }

  /** Settles every intent of this client's user left unsettled, under its original key; resolves with each one's `Outcome` or `OncelyError`, in pending()'s order (a damaged record: its "storage" error, nothing sent). */
  async resume() {
    return Promise.all(
      (await this.#pending()).map((record) => {
        if (record instanceof OncelyError) return record;
        const {
          shown: { intent, key, method, url },
          headers,
          record: bytes,
        } = record;
        const parts = { method, url, headers: toHeaders(headers) };
        parts.headers.set('idempotency-key', `"${key}"`);
        return this.#run(intent, parts, this.#core.stored(bytes, 0, 1)).then((landed) => new Outcome(...landed), (error) => error);
      }),
    );
  }

  /** The intents of this client's user whose outcome is not yet known, oldest first; first, a "storage" `OncelyError` for each damaged record (whoever's), which forget() removes. */
  async pending() {
    return (await this.#pending()).map((r) =>
      r instanceof OncelyError ? r : r.shown,
    );
  }

  /** Removes the intent: the next call with that name is a new intent with a new key. */
  async forget(intent) {
    if (typeof intent !== 'string') throw invalid('forget(): intent must be a string');
    if (this.#flights.has(intent)) throw invalid('cannot forget an intent in flight', intent);
    await settled;
    // Under the intent's lock: a flight of it in another tab lands (and
    // writes its outcome) first, and is never undone by this removal.
    const release = this.#locks && (await this.#lock(intent, false, this.#core.deadline));
    try {
      return await this.#store.remove(intent);
    } finally {
      release?.();
    }
  }

  /** Removes the intents past their retention whose outcome is known (their names start anew); resolves with how many. */
  async prune() {
    await settled;
    const now = Date.now();
    // Judged and removed in one transaction: an intent forgotten and sent
    // anew meanwhile is never taken for the old one.
    // A damaged record is kept (and named by pending()).
    return this.#store.prune((bytes, name) => {
      try {
        return record(this.#core, bytes, name, now).prunable && !this.#flights.has(name);
      } catch {
        return false;
      }
    });
  }

  /** Calls `handler` with every event of `type` (or "*"); returns a function that unsubscribes it. */
  on(type, handler) {
    if (!TYPES.includes(type)) throw invalid(`on(): type must be one of ${TYPES}`);
    if (typeof handler !== 'function') throw invalid('on(): handler must be a function');
    const listener = [type, handler];
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Whether the browser granted persistent storage (asked at open). */
  async persisted() {
    try {
      return (await this.#persisted) === true;
    } catch {
      return false;
    }
  }

  #emit(type, intent, key, fields) {
    const event = { type, intent, key: key || undefined, at: Date.now(), ...fields };
    // Those listening now: one added by a handler hears the next event.
    for (const [listening, handler] of [...this.#listeners]) {
      try {
        if (listening === type || listening === '*') handler(event);
      } catch {
        // A handler that throws disturbs neither the intent nor the others.
      }
    }
  }

  // This user's unsettled intents, oldest first, after the damaged
  // records (errors: their state and user cannot be read), as the core's
  // Client::pending lists them.
  async #pending() {
    await settled;
    const [names, values] = await this.#store.list();
    const damaged = [];
    const records = [];
    for (const [i, bytes] of values.entries()) {
      try {
        records.push(record(this.#core, bytes, names[i]));
      } catch (error) {
        damaged.push(error);
      }
    }
    return damaged.concat(
      records
        .filter((record) => record.unsettled && record.mine)
        .sort(({ shown: a }, { shown: b }) => a.createdAt - b.createdAt || (a.intent < b.intent ? -1 : a.intent > b.intent)),
    );
  }

  // Joins the flight of the intent in progress, or launches it; resolves
  // with what its `Outcome` is made of (each caller gets its own).
  async #run(intent, parts, bytes) {
    const flying = this.#flights.get(intent);
    if (flying) {
      if (flying.method === parts.method && flying.url === parts.url && same(flying.bytes, bytes)) {
        this.#emit('joined', intent, flying.key);
        return flying.landing;
      }
      this.#emit('conflict', intent, flying.key);
      throw failure('a different request is in flight; nothing was sent', 'conflict', intent, flying.key);
    }
    const flight = { method: parts.method, url: parts.url, bytes };
    flight.landing = this.#fly(intent, parts, bytes, flight)
      .catch((error) => {
        // Every flight that fails says so once, as the Rust client does: a
        // refused call ("invalid": nothing recorded) and a conflict (its own
        // event) are not failures of the intent.
        if (!/^(conflict|invalid)$/.test(error.code)) this.#emit('failed', intent, error.key, { error });
        throw error;
      })
      // Only this flight can be in the map: another call joins it.
      .finally(() => this.#flights.delete(intent));
    this.#flights.set(intent, flight);
    return flight.landing;
  }

  async #fly(intent, parts, bytes, entry) {
    // The intent's lock is asked for first: its answer takes longest.
    const locking = this.#locks && this.#lock(intent, true);
    let flight, release, settle;
    try {
      // The hook's headers for the first attempt, before anything is
      // recorded: a throw refuses the call with nothing recorded, and the
      // names it gives are recorded (never the values).
      let given = await this.#authorized(intent, parts);
      try {
        flight = this.#core.flight(intent, parts.method, parts.url, lines(parts.headers), bytes, Date.now(), crypto.getRandomValues(new Uint8Array(64)), lines(given));
      } catch (message) {
        throw invalid(describe(message), intent);
      }
      // Flying alone across tabs. The intent's lock was asked for (if free)
      // above and the record is added now, both answered below. Where the
      // lock was free, nobody else is flying the intent: a record just added
      // is ours to fly, and one found is the latest (read under the lock).
      // Where another tab holds it, that tab may be flying the intent, even
      // with the record just added: wait for the lock (as long as a flight
      // may take), then read what it left.
      const { candidate } = flight;
      const adding = this.#store.add(intent, candidate);
      adding.catch(() => {}); // awaited below, once the lock is held
      // Where a service worker controls the page, it finishes the intent if
      // this page cannot (closed, offline): a Background Sync of the
      // namespace's tag (oncely/worker's `serve` listens), where there is one.
      scope.navigator?.serviceWorker?.controller && navigator.serviceWorker.ready.then((worker) => worker.sync?.register(`oncely:${this.namespace}`));
      release = await (locking || (() => {}));
      const contended = release === null;
      if (contended) release = await this.#lock(intent, false, this.#core.deadline);
      let created = (await adding) && !contended;
      let found;
      // Not ours: read under the lock; forgotten by another tab meanwhile:
      // recorded anew, still under the lock.
      while (!created && (found = await this.#store.get(intent)) === undefined) {
        created = await this.#store.add(intent, candidate);
      }
      // Our own record as we added it: the lock's holder never flew it (it
      // would have counted an attempt first), so it is ours to fly as new.
      // (The holder may be this page's own refused call, releasing it.)
      if (found && same(found, candidate)) found = undefined;
      let next = flight.board(found, Date.now());
      let info = read(flight);
      entry.key = info.key;
      while (next !== DONE) {
        this.#announce(intent, info); // "created", or "retry" before its wait
        if (next === RETRY) await new Promise((wake) => setTimeout(wake, info.delay));
        // Offline, an attempt could only fail: wait for the network (not
        // counted against the deadline; the retention is checked after),
        // at most as long as the flight may still take.
        let offline = 0;
        if (scope.navigator?.onLine === false) {
          this.#emit('offline', intent, info.key);
          const since = Date.now();
          await within(new Promise((online) => scope.addEventListener('online', online, { once: true })), flight.remaining(since));
          offline = Date.now() - since;
        }
        // A failure of the hook (0) or the store (1) before an attempt: the
        // core says what it means once a request may have reached the server.
        let store = 0;
        let headers, attempt;
        try {
          // The hook's headers for every later attempt, before it counts:
          // fresh credentials win over the request's own.
          given ??= await this.#authorized(intent, parts);
          headers = new Headers(parts.headers);
          given.forEach((value, name) => headers.set(name, value));
          headers.set('idempotency-key', `"${info.key}"`);
          // The core says whether it may leave (the retention, the credentials
          // the intent was sent with); 0: it may not.
          attempt = flight.attempt(keys(headers), Date.now());
          if (!attempt) break;
          store = 1;
          const write = flight.write();
          if (write.length) await this.#store.put(intent, write);
        } catch (error) {
          flight.interrupted(store, describe(error));
          break;
        }
        // Checked again as it leaves (-1: recording the attempt took it to
        // the retention's end, or the deadline's).
        const timeout = flight.timeout(offline, Date.now());
        if (timeout < 0) break;
        this.#emit('attempt', intent, info.key, { attempt });
        next = flight.land(...(await this.#attempt(parts, headers, bytes, timeout)), Date.now());
        info = read(flight);
        given = undefined;
      }
      // What the flight came to, where the loop stopped it (the info of
      // its last step is read once: its event would be lost to a re-read).
      if (next !== DONE) info = read(flight);
      // As the Rust client: an expiry is recorded before it is reported (a
      // failed write is the error); a failure is recorded, a lost write only
      // warned of; a settlement's write is not awaited: a lost one re-sends
      // under the same key, and the server replays. It is placed, and the
      // lock released, once the caller has its outcome (below).
      const write = flight.write();
      if (write.length) {
        const put = () => this.#store.put(intent, write);
        // (A store fails with a "storage" OncelyError.)
        if (info.code === 'expired') await put();
        else if (info.code) await put().catch(warn('the failure'));
        else settle = () => put().catch(warn('the outcome'));
      }
      this.#announce(intent, info);
      if (info.code) throw failure(info.message, info.code, intent, info.key, info.lastStatus);
      return [intent, info, flight.body()];
    } finally {
      flight?.free();
      const end = () => {
        settle?.();
        // Asked for but never awaited (a refused name, a throw in between): released once granted.
        release ? release() : locking?.then((release) => release?.());
      };
      // Placing a transaction and releasing a lock cost the page a few
      // hundred µs: done in the task after the caller's (the lock still
      // held, so another tab's flight reads the record only after the write
      // is placed; this page's reads wait for `settled`).
      if (settle && locking) settled = new Promise((done) => later(() => done(end())));
      else end();
    }
  }

  // The `authorize` hook's headers, or a throw: the hook failed, answered
  // what `Headers` refuses, or did not answer within the flight's deadline.
  async #authorized(intent, parts) {
    try {
      return new Headers(this.#authorize && (await within(this.#authorize(intent, parts), this.#core.deadline, 'no answer in time')));
    } catch (error) {
      throw invalid(`authorize: ${describe(error)}`, intent);
    }
  }

  // Emits the event of the core's last step, if it has one.
  #announce(intent, { type, key, attempts: attempt, delay: delayMs, reason, retryStatus, status }) {
    if (type === 'retry') this.#emit(type, intent, key, { attempt, delayMs, reason, ...(retryStatus !== undefined && { status: retryStatus }) });
    else if (type === 'settled') this.#emit(type, intent, key, { attempt, status });
    else if (type && type !== 'failed') this.#emit(type, intent, key);
  }

  // One attempt, as `land` takes it: status, headers as lines, body, the
  // classify hook's class (0: the core's own); or 0 (1: timed out), why,
  // no body, class.
  async #attempt({ url, method }, headers, bytes, timeout) {
    // The time limit covers the body too.
    const signal = AbortSignal.timeout(timeout);
    try {
      const response = await fetch(url, {
        method,
        headers,
        body: bytes.length ? bytes : undefined,
        credentials: this.#credentials,
        signal,
      });
      const body = new Uint8Array(await response.arrayBuffer());
      return [response.status, lines(response.headers), body, this.#class(response)];
    } catch (error) {
      return [signal.aborted ? 1 : 0, signal.aborted ? `timed out after ${timeout} ms` : describe(error), new Uint8Array(), this.#class(null)];
    }
  }

  // What the `classify` hook makes of a response (null: none arrived), as
  // the core numbers classes; 0 where there is no hook or it has no say.
  #class(response) {
    try {
      return Math.max(0, CLASSES.indexOf(this.#classify?.(response)));
    } catch {
      return 0;
    }
  }

  // The intent's Web Lock: resolves with the function that releases it, or
  // with null when `ifAvailable` and another context holds it; waits at
  // most `wait` ms (another tab's flight ends by its deadline), then
  // rejects with "gave_up".
  async #lock(intent, ifAvailable, wait) {
    const signal = wait && AbortSignal.timeout(wait);
    try {
      return await new Promise((granted, refuse) =>
        this.#locks
          // Held until the function it is granted with (the resolve of the
          // promise it waits for) is called.
          .request(`oncely:${this.namespace}/${intent}`, { ifAvailable, signal }, (lock) => (lock ? new Promise(granted) : granted(null)))
          .catch(refuse),
      );
    } catch (error) {
      if (signal?.aborted) throw failure('another tab held this intent too long; nothing was sent', 'gave_up', intent);
      console.warn(`oncely: no Web Lock, going on without: ${describe(error)}`);
      return () => {};
    }
  }
}

// What the core's last step produced.
function read(flight) {
  const [type, key, attempts, delay, retryStatus, reason, status, replayed, code, lastStatus, count, ...rest] = flight.info().split('\n');
  const number = (field) => (field ? +field : undefined);
  return {
    type,
    key,
    attempts: +attempts,
    delay: +delay,
    retryStatus: number(retryStatus),
    reason,
    status: number(status),
    replayed: replayed === '1',
    code,
    lastStatus: number(lastStatus),
    headers: () => toHeaders(rest.slice(0, 2 * count)),
    message: rest.slice(2 * count).join('\n'),
  };
}

// A stored record, as the core reads it (prunable at `now`, if given): a
// damaged one is a "storage" error naming its intent (which forget() removes).
function record(core, bytes, name, now) {
  let text;
  try {
    text = core.stored(bytes, now);
  } catch (message) {
    throw storage(`${message}: intent "${name}"`, name);
  }
  const [intent, key, attempts, createdAt, prunable, state, unsettled, mine, status, method, url, ...headers] = text.split('\n');
  return {
    // As a person reads it: pending()'s answer, and the value IndexedDB
    // shows in DevTools.
    shown: { intent, key, state, attempts: +attempts, createdAt: +createdAt, status: +status || null, method, url },
    // (Empty: no.)
    prunable,
    unsettled,
    mine,
    // As lines, and the core's bytes (read by resume only).
    headers,
    record: bytes,
  };
}

// The request as checked by the platform (method, URL, headers), or "invalid".
function checked(intent, build) {
  try {
    return build();
  } catch (error) {
    throw invalid(`invalid request: ${describe(error)}`, intent);
  }
}

// `work` (a promise or a value), or once `ms` ms have passed: a rejection
// with `late`, or without it, undefined. The timer never outlives the wait.
function within(work, ms, late) {
  let timer;
  return new Promise((answer, refuse) => {
    timer = setTimeout(late ? refuse : answer, ms, late);
    Promise.resolve(work).then(answer, refuse);
  }).finally(() => clearTimeout(timer));
}

const same = (a, b) => a.length === b.length && a.every((byte, i) => byte === b[i]);

// Runs `work` in a task of its own, soon: after the current task's promise
// reactions (a caller's `await`), and, unlike a timer, not throttled in a
// hidden tab. `settled` resolves once all work handed over so far is done:
// every client of the page awaits it before it reads or removes records.
const queue = [];
let port, settled;
function later(work) {
  if (!port) {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => queue.splice(0).forEach((work) => work());
    port = channel.port2;
  }
  if (queue.push(work) === 1) port.postMessage(0);
}

const warn = (what) => (error) => console.warn(`oncely: could not record ${what}: ${describe(error)}`);

/** The definitive response of an intent: sent now, or replayed (`replayed`). */
class Outcome {
  #info;
  #body;

  constructor(intent, info, body) {
    this.#info = info;
    this.#body = body;
    this.intent = intent;
    this.status = info.status;
    this.ok = info.status >= 200 && info.status < 300;
    this.key = info.key;
    this.attempts = info.attempts;
    this.replayed = info.replayed;
  }

  /** The response headers (a new `Headers` on every read). */
  get headers() {
    return this.#info.headers();
  }

  async text() {
    return decoder.decode(this.#body);
  }

  async json() {
    return JSON.parse(decoder.decode(this.#body));
  }

  async bytes() {
    return this.#body.slice();
  }
}

// --- stores: a record is the core's bytes, by intent name; `core` says
// which write may replace what is stored ---

function memoryStore(core) {
  const records = new Map();
  return {
    async add(name, bytes) {
      if (records.has(name)) return false;
      records.set(name, bytes);
      return true;
    },
    async get(name) {
      return records.get(name);
    },
    async put(name, bytes) {
      if (core.applies(records.get(name), bytes)) records.set(name, bytes);
    },
    async list() {
      return [[...records.keys()], [...records.values()]];
    },
    async remove(name) {
      return records.delete(name);
    },
    prune: async (test) => [...records].filter(([name, bytes]) => test(bytes, name) && records.delete(name)).length,
  };
}

const INTENTS = 'intents';

// A failure of IndexedDB, as "storage" (an OncelyError stays as it is).
const refused = (error) => (error instanceof OncelyError ? error : storage(`IndexedDB failed: ${describe(error)}`));

// The database `name` (one object store, schema version 1): opened at once
// or refused at once — never a hang. It closes itself when another tab
// upgrades or deletes it (`closed` then tells the store to connect again).
function connect(name) {
  return new Promise((resolve, reject) => {
    if (!scope.indexedDB) throw storage('no IndexedDB here: use the memory store');
    const request = scope.indexedDB.open(name, 1);
    // Only a new database is upgraded (to version 1): it has no store yet.
    request.onupgradeneeded = () => request.result.createObjectStore(INTENTS);
    request.onerror = () =>
      reject(request.error?.name === 'VersionError' ? storage(`IndexedDB "${name}" is from a newer oncely: reload this page`) : request.error);
    request.onblocked = () => {
      // If it opens later after all, nobody is there to use it: close it.
      request.onsuccess = () => request.result.close();
      reject(storage('IndexedDB is blocked by an older tab: close it'));
    };
    request.onsuccess = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(INTENTS)) {
        db.close();
        return reject(storage(`IndexedDB "${name}" is not oncely's: use another namespace`));
      }
      db.onversionchange = () => {
        db.close();
        db.closed = true;
      };
      resolve(db);
    };
  }).catch((error) => {
    throw refused(error);
  });
}

// The store in the database `oncely:<namespace>`. Each operation is one
// transaction whose requests are all placed at once, committed without
// waiting for another round trip, and answered once it is complete (a
// failed request aborts it). A database another tab closed (an upgrade, a
// deletion) is opened again by the next operation. A value is the record
// as a person reads it in DevTools (never read back) with the core's bytes
// under `record`; a value that is bytes alone is read as they are.
async function indexedDbStore(namespace, durability, core) {
  let db = await connect(`oncely:${namespace}`);
  let reopening;
  // `place` places the requests and returns what reads the answer. `open`:
  // requests are still to come from callbacks (a cursor), so the
  // transaction ends by itself after the last.
  const run = async (mode, place, open) => {
    if (db.closed) {
      db = await (reopening ??= connect(db.name).finally(() => (reopening = null)));
    }
    let tx, answer;
    try {
      tx = db.transaction(INTENTS, mode, { durability });
      answer = place(tx.objectStore(INTENTS));
      if (!open) tx.commit?.();
    } catch (error) {
      throw refused(error);
    }
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      // Every failure aborts it: a failed request, a failed commit.
      tx.onabort = () => reject(refused(tx.error ?? 'aborted'));
    });
    return answer();
  };
  const read = (request) => () => request.result;
  const unwrap = (value) => value?.record ?? value;
  const wrap = (bytes) => ({ ...record(core, bytes).shown, record: bytes });
  return {
    // Adds the record unless the name is taken: truthy (its name, never
    // empty) when added, false when taken. One
    // request: where the record exists the add fails and the transaction,
    // having written nothing, aborts.
    add(name, bytes) {
      let added;
      return run('readwrite', (store) => read((added = store.add(wrap(bytes), name)))).catch((error) => {
        if (added?.error?.name === 'ConstraintError') return false;
        throw error;
      });
    },
    get: (name) =>
      run('readonly', (store) => {
        const value = read(store.get(name));
        return () => unwrap(value());
      }),
    // A flight's write, where the core's rule lets it replace what is
    // stored (read in the same transaction): without Web Locks another
    // context may have settled or forgotten the intent meanwhile.
    put: (name, bytes) =>
      run(
        'readwrite',
        (store) => {
          const current = store.get(name);
          current.onsuccess = () => core.applies(unwrap(current.result), bytes) && store.put(wrap(bytes), name);
          return () => {};
        },
        true,
      ),
    // Names and records, in the same (key) order.
    list: () =>
      run('readonly', (store) => {
        const names = read(store.getAllKeys());
        const values = read(store.getAll());
        return () => [names(), values().map(unwrap)];
      }),
    remove: (name) =>
      run('readwrite', (store) => {
        const count = read(store.count(name));
        store.delete(name);
        return () => count() > 0;
      }),
    // Removes the records `test` accepts, each judged as its cursor passes
    // (a test that throws aborts the whole transaction).
    prune: (test) =>
      run(
        'readwrite',
        (store) => {
          let pruned = 0;
          store.openCursor().onsuccess = ({ target: { result: cursor } }) => {
            if (!cursor) return;
            if (test(unwrap(cursor.value), cursor.key)) {
              cursor.delete();
              pruned++;
            }
            cursor.continue();
          };
          return () => pruned;
        },
        true,
      ),
  };
}
