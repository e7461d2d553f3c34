// The checkout's service worker: finishes the payments a checkout tab
// leaves unfinished (closed while a payment was out, waiting for the
// network or backing off), under their keys, with the page's options
// (payments.js). oncely's `serve` resumes them at each Background Sync the
// page asked for as it recorded a payment, at each start of this worker,
// and when a checkout tab goes away (its "resume" message); the intent's
// Web Lock keeps the worker waiting while the tab still sends it.
import { serve } from './pkg/worker.js';
import { payments, NOTICES } from './payments.js';

// Whose payments: the account signed in on this browser, which the
// checkout keeps in the `account` cookie (the server's own account
// cookie). Read at each resume; the resume runs for that account alone.
let account;
const signedIn = async () => (account = (await self.cookieStore?.get('account'))?.value);

// What each resume came to, for the open pages (the ledger window).
const notices = new BroadcastChannel(NOTICES);
const resume = serve({
  ...payments(() => account),
  user: signedIn,
  onResumed: (results) => {
    if (!results.length) return;
    notices.postMessage({
      account,
      at: Date.now(),
      results: results.map((result) => ({
        intent: result.intent,
        key: result.key,
        status: result.status,
        code: result.code,
        // Read from this browser's record: a tab had finished it already.
        stored: result.replayed === true,
        // Sent by the worker, and answered with a charge made earlier
        // (a tab's request that the server finished after the tab closed).
        serverReplayed: result.headers?.get('idempotent-replayed') === 'true',
      })),
    });
  },
});

self.addEventListener('message', (event) => {
  if (event.data === 'resume') event.waitUntil(resume().catch(() => {}));
});
// A new version takes over at once, and controls the open pages: their
// payments then ask it to finish them.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
