// How the checkout pays, shared by the page (app.js), the service worker
// (sw.js) and the ledger window: the worker finishes what the page
// recorded and the window reads it, so all open oncely with the same
// namespace, credentials hook and retry policy.

/** oncely's options for the account `account()` names (asked at every attempt). */
export const payments = (account) => ({
  namespace: 'demo',
  // The account goes with every attempt: like a credential, it is never
  // stored, and a resume (the page's or the worker's) sends it afresh.
  authorize: () => ({ 'x-account': account() }),
  retry: { baseDelayMs: 500, maxDelayMs: 4000 },
});

/** The BroadcastChannel on which the worker tells the pages what it finished. */
export const NOTICES = 'oncely-demo:worker';

/** The order an intent pays (`checkout:<order>`). */
export const orderOf = (intent) => intent.replace(/^checkout:/, '');
