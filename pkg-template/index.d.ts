import type { Oncely as Client, OpenOptions } from './oncely.js';

export type { Outcome, OpenOptions, RetryOptions, SendRequest, PendingIntent, OncelyEvent, OncelyEventType } from './oncely.js';

/** A client: `send`, `fetch`, `resume`, `pending`, `forget`, `on`. */
export type Oncely = Client;

/** Opens a client; the WebAssembly loads on the first call. */
export declare const Oncely: {
  open(options?: OpenOptions): Promise<Client>;
};

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

export type OncelyErrorCode = 'conflict' | 'rejected' | 'gave_up' | 'expired' | 'storage' | 'invalid';
