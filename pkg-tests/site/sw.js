// The test site's service worker (a module): oncely's worker part, for the
// namespace its registration names (`?ns=`), with the page's options.
import { serve } from '/pkg/worker.js';

const namespace = new URL(self.location.href).searchParams.get('ns') ?? 'default';
serve({
  namespace,
  // The account header is no credential here: the worker may send it.
  storedHeaders: ['X-Account'],
  onResumed: (results) => {
    self.resumed = (self.resumed ?? 0) + results.length;
  },
});
// Controls the open pages at once (their sends then ask it to finish).
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
