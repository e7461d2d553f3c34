// One durable send with oncely, as an app writes it: the package by name
// (pkg/, bundled by pkg-tests/peers.mjs), an IndexedDB store whose records
// are committed with durability "strict" before the request leaves, and
// `send` under an intent of its own per charge.
import { Oncely } from 'oncely';

/** Opens the client (not timed); `send(charge)` is the timed path. */
export async function open({ account, namespace, durability = 'strict' }) {
  const client = await Oncely.open({ namespace, store: 'indexeddb', durability });
  let next = 0;
  return {
    async send(charge) {
      const outcome = await client.send({
        intent: `charge-${next++}`,
        method: 'POST',
        url: '/api/charges',
        headers: { 'content-type': 'application/json', 'x-account': account },
        body: JSON.stringify(charge),
      });
      if (outcome.status !== 201 || outcome.attempts !== 1) {
        throw new Error(`oncely: ${outcome.status} after ${outcome.attempts} attempts`);
      }
    },
    /** Intents not settled (not timed): none once every send is done. */
    pending: async () => (await client.pending()).length,
  };
}
