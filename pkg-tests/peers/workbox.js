// One durable send with workbox-background-sync, in the page: its Queue
// stores the request in IndexedDB (`pushRequest`), then replays its queue
// (`replayRequests`: takes the entry out, then `fetch`es it).
//
// Not how workbox is usually deployed: the Queue lives in a service worker,
// and BackgroundSyncPlugin calls `pushRequest` only from `fetchDidFail`, once
// a fetch has thrown (src/BackgroundSyncPlugin.ts), so a request that goes
// through is never stored. Pushing first and replaying at once is the
// closest the library comes to "stored before it is sent".
import { Queue } from 'workbox-background-sync';

/** Opens the queue (not timed); `send(charge)` is the timed path. */
export async function open({ account, name }) {
  // The Queue's constructor reads `self.registration` (a service worker's,
  // src/Queue.ts `_addSyncListener`); a window has none. An empty one, with
  // no `sync` (no Background Sync in a window), sends it down its own
  // fallback: replay the queue once, at start (`onSync`).
  globalThis.registration ??= {};
  let started;
  const queue = new Queue(name, { onSync: ({ queue }) => (started = queue.replayRequests()) });
  await started; // that start-up replay (an empty queue), before any send
  return {
    async send(charge) {
      const request = new Request('/api/charges', {
        method: 'POST',
        // workbox mints no key: the app adds one, stored with the request.
        headers: { 'content-type': 'application/json', 'x-account': account, 'idempotency-key': crypto.randomUUID() },
        body: JSON.stringify(charge),
      });
      await queue.pushRequest({ request });
      // Replays every queued request; their responses are dropped (only a
      // fetch that throws puts its entry back), so the page cannot see the
      // status: peers.mjs counts the account's ledger rows instead.
      await queue.replayRequests();
    },
    /** Entries still queued (not timed): none once every send is done. */
    pending: () => queue.size(),
  };
}
