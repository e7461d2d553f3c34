// The visitor's account: the server scopes keys, faults and the ledger by
// it. `?account=` picks one, so a test, a second browser or the ledger
// window can share it; otherwise one is made up once and kept here.
export const account = (() => {
  const given = new URLSearchParams(location.search).get('account');
  if (given) return given;
  let stored = localStorage.getItem('oncely-demo:account');
  if (!stored) {
    stored = `visitor-${crypto.randomUUID().slice(0, 8)}`;
    localStorage.setItem('oncely-demo:account', stored);
  }
  return stored;
})();

/** A call to the demo server's API as the account: its JSON, null for a 204. */
export async function api(path, init = {}) {
  const response = await fetch(path, {
    ...init,
    headers: { 'x-account': account, 'content-type': 'application/json', ...init.headers },
  });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.status === 204 ? null : response.json();
}
