// One durable send with @tanstack/offline-transactions, as its README and
// skill (skills/offline/SKILL.md) show it: a TanStack DB collection, an
// offline executor with a named mutation function, and per charge an offline
// transaction whose mutation is serialized into the IndexedDB outbox before
// the mutation function runs (OfflineExecutor.persistTransaction: `await
// this.outbox.add(transaction)`, then `this.executor.execute(transaction)`);
// `commit()` resolves once the mutation function has returned and the entry
// has left the outbox (TransactionExecutor.executeTransaction).
import { createCollection } from '@tanstack/db';
import { NonRetriableError, startOfflineExecutor } from '@tanstack/offline-transactions';

/** Starts the executor (not timed); `send(charge)` is the timed path. */
export async function open({ account }) {
  // The smallest collection there is: synced from nowhere, ready at once.
  const charges = createCollection({
    id: 'charges',
    getKey: (charge) => charge.id,
    sync: { sync: ({ markReady }) => markReady() },
  });
  const executor = startOfflineExecutor({
    collections: { charges },
    mutationFns: {
      // The app's code: the executor hands it the transaction's key, the
      // same on every attempt (stored in the outbox with the mutations).
      charge: async ({ transaction, idempotencyKey }) => {
        const { amount, currency } = transaction.mutations[0].modified;
        const response = await fetch('/api/charges', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-account': account, 'idempotency-key': idempotencyKey },
          body: JSON.stringify({ amount, currency }),
        });
        await response.arrayBuffer();
        // Anything but 201 ends the run (a retriable error would be retried
        // with backoff, forever: its default policy has no attempt limit).
        if (response.status !== 201) throw new NonRetriableError(`tanstack: ${response.status}`);
      },
    },
  });
  await executor.waitForInit();
  // Only the leader tab persists; any other sends online-only, unstored
  // (OfflineExecutor.createOfflineTransaction). Measure the durable path.
  if (!executor.isOfflineEnabled) throw new Error(`tanstack: not offline-enabled (${executor.mode}); nothing would be stored`);
  return {
    async send(charge) {
      const tx = executor.createOfflineTransaction({ mutationFnName: 'charge', autoCommit: false });
      tx.mutate(() => charges.insert({ id: crypto.randomUUID(), ...charge }));
      await tx.commit();
    },
    /** Transactions still in the outbox (not timed): none once every send is done. */
    pending: async () => (await executor.peekOutbox()).length,
  };
}
