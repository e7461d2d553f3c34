// The service worker's part of oncely (worker.js).
import type { OpenOptions, Outcome, OncelyError } from './index.js';

export { Oncely, OncelyError } from './index.js';

/** `open` options, with `user` as a hook: who is signed in now, as the worker can tell (none: the intents recorded for nobody). */
export interface ServeOptions extends Omit<OpenOptions, 'user'> {
  user?: string | (() => string | undefined | null | Promise<string | undefined | null>);
  /** Called with every result of each resume the worker runs. */
  onResumed?: (results: Array<Outcome | OncelyError>) => void;
}

/** The Background Sync tag of a namespace's intents ("oncely:" + namespace). */
export function syncTag(namespace?: string): string;

/**
 * In a service worker, at its top level: resumes the current user's intents
 * at every Background Sync event of the namespace's tag and at every start;
 * returns a function that resumes at any other moment.
 */
export function serve(options?: ServeOptions): () => Promise<Array<Outcome | OncelyError>>;
