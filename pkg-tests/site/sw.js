// The test site's service worker (a module): oncely's worker part, for the
// namespace its registration names (`?ns=`), with the page's options. The
// signed-in user and their token are what the pages last posted (`{ user }`,
// `{ token }`), as an app's worker would learn them; none until then.
import { serve } from '/pkg/worker.js';

const namespace = new URL(self.location.href).searchParams.get('ns') ?? 'default';
let user, token;
self.addEventListener('message', (event) => {
  if ('user' in (event.data ?? {})) user = event.data.user ?? undefined;
  if ('token' in (event.data ?? {})) token = event.data.token;
  event.ports?.[0]?.postMessage('ok');
});
// What each resume settled, for the tests to read (intents, user, codes).
self.resumes = [];
// (Its resume, for the tests to call.)
self.resume = serve({
  namespace,
  user: () => user,
  // The credentials the pages last posted (`{ token }`), fresh for every
  // attempt; none: the hook supplies nothing.
  authorize: (intent, request, user) => {
    self.authorizedFor = [...(self.authorizedFor ?? []), user];
    return token ? { authorization: `Bearer ${token}` } : {};
  },
  // The account header is no credential here: the worker may send it.
  storedHeaders: ['X-Account'],
  onResumed: (results) => {
    self.resumes.push({ user, results: results.map((r) => ({ intent: r.intent, key: r.key, code: r.code, status: r.status })) });
  },
});
// Controls the open pages at once (their sends then ask it to finish).
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
