// The service worker's part of oncely (worker.js).
import type { OpenOptions, Outcome, OncelyError } from './index.js';

export { Oncely, OncelyError } from './index.js';

/** `open` options, with `user` as a hook: who is signed in now, as the worker can tell (none: the intents recorded for nobody). */
export interface ServeOptions extends Omit<OpenOptions, 'user' | 'authorize'> {
  /** Asked once at the start of each resume: that resume sends only this user's intents. */
  user?: string | (() => string | undefined | null | Promise<string | undefined | null>);
  /** As `open`'s, told the user the resume runs for (its credentials must be that user's). */
  authorize?: (
    intent: string,
    request: { method: string; url: string; headers: Headers },
    user: string | undefined,
  ) => HeadersInit | undefined | Promise<HeadersInit | undefined>;
  /** Called with every result of each resume the worker runs. */
  onResumed?: (results: Array<Outcome | OncelyError>) => void;
}

/** The Background Sync tag of a namespace's intents ("oncely:" + namespace). */
export function syncTag(namespace?: string): string;

/**
 * In a service worker, at its top level: resumes the current user's intents
 * at every Background Sync event of the namespace's tag and at every start;
 * returns a function that resumes at any other moment (one resume at a
 * time: a call while one runs is answered by the next, which starts once it
 * ends).
 */
export function serve(options?: ServeOptions): () => Promise<Array<Outcome | OncelyError>>;
