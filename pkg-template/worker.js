// The service worker's part of oncely: finishes, after the tab is closed,
// the intents a page recorded. Import it into the app's own service worker
// and call `serve` once, at the top level of the worker's script:
//
//   import { serve } from 'oncely/worker';
//   serve({ namespace: 'shop', user: () => currentUser(), authorize: ... });
//
// The worker resumes the intents of the current user (its `user` hook says
// who that is; none: the intents recorded for nobody) with the same core,
// store, locks and rules as the page: one context at a time sends an
// intent (its Web Lock), the retention, credentials through `authorize`,
// bounded waits. When: at every Background Sync event of the namespace's
// tag (a page the worker controls asks for one as it records an intent,
// where the browser has Background Sync) and at every start of the worker.
import { Oncely, OncelyError } from './index.js';

export { Oncely, OncelyError };

/** The Background Sync tag of a namespace's intents. */
export const syncTag = (namespace) => `oncely:${namespace ?? 'default'}`;

/**
 * Listens for the namespace's Background Sync events and resumes the current
 * user's intents then, and once at start; returns `resume`, to call at any
 * other moment (a push, a message). Resolves each time with every result.
 */
export function serve(options = {}) {
  let running, next;
  const resume = async () => {
    const { authorize } = options;
    // Whose intents this resume sends, asked once: the credentials hook is
    // told, so a session switched meanwhile never lends its credentials to
    // another user's intents.
    const user = (typeof options.user === 'function' ? await options.user() : options.user) ?? undefined;
    const client = await Oncely.open({
      ...options,
      user,
      authorize: authorize && ((intent, request) => authorize(intent, request, user)),
    });
    const results = await client.resume();
    options.onResumed?.(results);
    return results;
  };
  // One resume at a time in this worker. A call while one runs waits for
  // the next, which starts once it ends (every call then sharing it): the
  // running one listed its intents before the caller's reason to call
  // (an intent recorded since, a user signed in) may have been true.
  const again = () => ((next = undefined), once());
  const once = () => (running ? (next ??= running.then(again, again)) : (running = resume().finally(() => (running = undefined))));
  self.addEventListener('sync', (event) => {
    if (event.tag !== syncTag(options.namespace)) return;
    event.waitUntil(
      once().then((results) => {
        // Some still could not be settled (the network or the server still
        // failing, a Retry-After past the event's life): a rejected sync is
        // tried again later by the browser, on its own schedule.
        if (!event.lastChance && results.some((result) => result instanceof OncelyError && result.code === 'gave_up')) {
          throw new Error('oncely: intents left unsettled; try again later');
        }
      }),
    );
  });
  self.addEventListener('activate', (event) => event.waitUntil(once().catch(() => {})));
  once().catch(() => {});
  return once;
}
