// The test site's service worker (a module): oncely's worker part, for the
// namespace its registration names (`?ns=`), with the page's options. The
// signed-in user is what the pages last posted (`{ user }`), as an app's
// worker would learn it; none until then.
import { serve } from '/pkg/worker.js';

const namespace = new URL(self.location.href).searchParams.get('ns') ?? 'default';
let user;
self.addEventListener('message', (event) => {
  if ('user' in (event.data ?? {})) user = event.data.user ?? undefined;
  event.ports?.[0]?.postMessage('ok');
});
// What each resume settled, for the tests to read (intents, user, codes).
self.resumes = [];
serve({
  namespace,
  user: () => user,
  // The account header is no credential here: the worker may send it.
  storedHeaders: ['X-Account'],
  onResumed: (results) => {
    self.resumes.push({ user, results: results.map((r) => ({ intent: r.intent, key: r.key, code: r.code, status: r.status })) });
  },
});
// Controls the open pages at once (their sends then ask it to finish).
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
