/** Opens a client; the WebAssembly loads on the first call. */
export declare const Oncely: {
  open(options?: OpenOptions): Promise<Oncely>;
};

/** Makes requests happen once: recorded before they are sent, sent under one `Idempotency-Key` however often they are retried, reloaded or raced by another tab, and replayed afterwards. */
export interface Oncely {
  /** Sends `request` once; resolves with the definitive outcome (or the stored one, `replayed`). The same intent with the same request joins the flight in progress; with a different one it rejects with code "conflict" and sends nothing. */
  send(request: SendRequest): Promise<Outcome>;
  /**
   * `fetch`, made to happen once: `init.intent` names the intent; resolves
   * with a standard `Response` of the definitive outcome. Of a `RequestInit`,
   * the method, headers and body are sent; `credentials` is the client's (set
   * in `open`); `signal` stops this call's wait (the intent goes on); the
   * other fields (`redirect`…) are not used. A `FormData` body is refused
   * ("invalid"): it is serialised with a new random boundary each time, so
   * it would never be the same request twice.
   */
  fetch(input: RequestInfo | URL, init: FetchInit): Promise<Response>;
  /** Settles every intent of this client's `user` that an earlier page (or a failed attempt) left unsettled, under its original key; resolves with each one's `Outcome`, or its `OncelyError` (which also emits "failed"), in `pending()`'s order. A damaged record is its "storage" error, nothing sent; the others resume. */
  resume(): Promise<Array<Outcome | OncelyError>>;
  /** The intents of this client's `user` whose outcome is not yet known, oldest first. A record that cannot be read (damaged, or written by something else) comes first, whoever's it is, as an `OncelyError` with code "storage" and the record's `intent` (which `forget` removes): nothing is skipped silently, and it blocks no other intent. */
  pending(): Promise<Array<PendingIntent | OncelyError>>;
  /** Removes the intent: the next call with that name is a new intent with a new key. Refused ("invalid") while this client sends it; while another tab sends it, waits for that send to end. Resolves `true` when there was one. */
  forget(intent: string): Promise<boolean>;
  /** Removes every intent past its retention (24 h) whose outcome is known: settled, expired, or failed for good. Until then such an intent refuses a call under its name ("expired"); once pruned, the name starts a new intent with a new key. Intents still unsettled, and records that cannot be read, stay whatever their age. Resolves with how many were removed. */
  prune(): Promise<number>;
  /** Calls `handler` with every event of `type` ("*": all); returns a function that unsubscribes it. */
  on(type: OncelyEventType | '*', handler: (event: OncelyEvent) => void): () => void;
  /** Whether the browser granted persistent storage (`navigator.storage.persist()`, asked at open with `persist: true`); `false` otherwise, and where it cannot be asked (workers, Node, the memory store). */
  persisted(): Promise<boolean>;
  /** The namespace this client was opened with. */
  readonly namespace: string;
  /** Whose intents these are (`open`'s `user`), if it said. */
  readonly user?: string;
  /** "indexeddb" or "memory". */
  readonly store: 'indexeddb' | 'memory';
  /** Whether tabs take turns on an intent through Web Locks (`false` where `navigator.locks` is missing: each tab may then send, under the same key, and the server replays). */
  readonly webLocks: boolean;
}

/** What `fetch` uses of a `RequestInit`, and the intent it names. */
export interface FetchInit {
  intent: string;
  method?: string;
  headers?: HeadersInit;
  body?: BodyInit | null;
  /** Stops this call's wait when it aborts (rejecting with its reason); the intent stays recorded and goes on. */
  signal?: AbortSignal;
}

export interface OpenOptions {
  /** Separates the intents of one app from another's: database `oncely:<namespace>`. Default "default". */
  namespace?: string;
  /** "indexeddb" (default in browsers: survives reloads) or "memory" (Node, tests). */
  store?: 'indexeddb' | 'memory';
  /** "strict" (default): a new intent is on disk before it is sent. "relaxed": faster, may be lost with power. */
  durability?: 'strict' | 'relaxed';
  /**
   * Whose intents these are: the signed-in user's id. Intents are recorded
   * for this user, and `resume`, `pending` and every call touch only this
   * user's: another user's intent is never sent with this user's cookies
   * or credentials, nor replayed to them. Open a client per user (again on
   * sign-in). Left out: intents belong to nobody in particular (an app
   * without users).
   */
  user?: string;
  /** fetch's credentials mode: "same-origin" (default) or "include" (cookies to another origin). */
  credentials?: 'same-origin' | 'include';
  /**
   * Supplies credential headers (`Authorization`…) for every attempt, resumed
   * intents included: they are sent, never stored, and win over the
   * request's own. Their names are recorded: an attempt without them is not
   * sent ("credentials"). A throw, a header `Headers` refuses, or no answer
   * within the retry deadline fails the call as "invalid" with nothing
   * recorded — or, once a request of the intent may have reached the
   * server, as "credentials", the intent still unsettled.
   */
  authorize?: (
    intent: string,
    request: { method: string; url: string; headers: Headers },
  ) => HeadersInit | undefined | Promise<HeadersInit | undefined>;
  /**
   * Headers the store may keep besides its allow-list (Accept,
   * Accept-Encoding, Accept-Language, Cache-Control, Content-Encoding,
   * Content-Language, Content-Type, Prefer, traceparent, tracestate,
   * User-Agent, X-Request-Id). Every other header is sent but never
   * stored: `resume` must get it from `authorize`, or it sends nothing.
   */
  storedHeaders?: string[];
  /** Headers never stored, even if on the allow-list. */
  secretHeaders?: string[];
  /** How long the server keeps keys, in ms (default 86400000, 24 h): no attempt leaves after it; an intent past it is "expired". */
  retentionMs?: number;
  /**
   * Replaces the classification of an attempt: `response` is the `Response`
   * (null when none arrived). Answer "settle", "retry", "in_progress",
   * "reject" or "unauthorized"; anything else (or a throw) keeps the
   * default.
   */
  classify?: (response: Response | null) => 'settle' | 'retry' | 'in_progress' | 'reject' | 'unauthorized' | undefined;
  /** Asks the browser to keep the store (`navigator.storage.persist()`); off by default, since Firefox prompts the user. */
  persist?: boolean;
  /**
   * The app's service worker runs `serve` from "oncely/worker": as each
   * intent is recorded, ask it (a Background Sync of the namespace's tag,
   * where the browser has one) to finish the intent if this page cannot —
   * closed, offline, backing off. Off by default.
   */
  backgroundSync?: boolean;
  retry?: RetryOptions;
}

export interface RetryOptions {
  /** Attempts before giving up (default 8). */
  maxAttempts?: number;
  /** First backoff ceiling in ms (default 500; 0: retry at once). */
  baseDelayMs?: number;
  /** Largest backoff in ms (default 20000). */
  maxDelayMs?: number;
  /** Overall deadline in ms, offline time excluded (default 120000): also the longest wait for another tab's lock or the `authorize` hook. */
  deadlineMs?: number;
  /** Each attempt's time limit in ms (default 30000). */
  attemptTimeoutMs?: number;
}

export interface SendRequest {
  /** The intent's stable name: same name, same intent. */
  intent: string;
  /** Default "POST". */
  method?: string;
  /** Absolute, or relative to the page (or worker). */
  url: string | URL;
  headers?: HeadersInit;
  body?: string | ArrayBuffer | ArrayBufferView | null;
  /** Stops this call's wait when it aborts (rejecting with its reason); the intent stays recorded and goes on. */
  signal?: AbortSignal;
}

/** The definitive response of an intent: sent now, or replayed from the store (`replayed`). */
export interface Outcome {
  /** The intent's name. */
  readonly intent: string;
  /** The HTTP status. */
  readonly status: number;
  /** Whether the status is 2xx. */
  readonly ok: boolean;
  /** The intent's idempotency key (the same on every attempt). */
  readonly key: string;
  /** Attempts it took, across reloads. */
  readonly attempts: number;
  /** Whether this is the stored outcome of an intent settled earlier. */
  readonly replayed: boolean;
  /** The response headers (a new `Headers` on every read). */
  readonly headers: Headers;
  /** The body as text (UTF-8; invalid sequences replaced). */
  text(): Promise<string>;
  /** The body parsed as JSON; rejects with a `SyntaxError` when it is not. */
  json(): Promise<any>;
  /** The body's bytes. */
  bytes(): Promise<Uint8Array>;
}

export interface PendingIntent {
  intent: string;
  key: string;
  attempts: number;
  /** ms since the epoch. */
  createdAt: number;
  /** "pending", or "failed" when it gave up or wanted credentials (resume() tries it again). */
  state: 'pending' | 'failed';
  /** The last response status it heard (a failure's), or null. */
  status: number | null;
  method: string;
  /** The request's URL, resolved against the page. */
  url: string;
}

export type OncelyEventType = 'created' | 'attempt' | 'retry' | 'joined' | 'replayed' | 'conflict' | 'settled' | 'failed' | 'offline';

export interface OncelyEvent {
  type: OncelyEventType;
  intent: string;
  key?: string;
  /** ms since the epoch. */
  at: number;
  /** attempt, retry: the attempt's number (from 1, across reloads). settled: attempts it took. */
  attempt?: number;
  /** retry: the wait before the next attempt. */
  delayMs?: number;
  /** retry: the failed attempt's status, when one arrived. settled: the response status. */
  status?: number;
  /** retry: why the attempt did not settle, for people. */
  reason?: string;
  /** failed: the OncelyError. */
  error?: OncelyError;
}

/** Every oncely failure, with a stable `code`. */
export declare class OncelyError extends Error {
  constructor(message: string, code: OncelyErrorCode);
  readonly code: OncelyErrorCode;
  /** The intent's name, where known. */
  readonly intent?: string;
  /** The intent's idempotency key, where known. */
  readonly key?: string;
  /** The last HTTP status seen, where one arrived. */
  readonly lastStatus?: number;
}

/**
 * - "conflict": the intent is recorded (or in flight) with another request, or for another user; nothing sent
 * - "rejected": the server refused the key as reused with another payload (422)
 * - "gave_up": attempts or the deadline ran out; the intent stays unsettled, `resume` sends it under its key
 * - "expired": past its retention with its outcome unknown: too old to resend safely; never sent again
 * - "credentials": a header it was sent with (never stored) could not be supplied, or the server refused who sent it after an earlier attempt may have landed; nothing decided, still unsettled
 * - "storage": IndexedDB failed, or a record is damaged (`intent` names it)
 * - "csp": the page's Content-Security-Policy refused the WebAssembly (allow `'wasm-unsafe-eval'` in script-src, and the module's URL in connect-src)
 * - "invalid": a bad request or option; nothing recorded, nothing sent
 */
export type OncelyErrorCode = 'conflict' | 'rejected' | 'gave_up' | 'expired' | 'credentials' | 'storage' | 'csp' | 'invalid';
