// How the demo's pages show things: their elements, amounts and times, and
// the server's ledger (the checkout's panel and the ledger window).
export const $ = (id) => document.getElementById(id);

export const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

export const money = new Intl.NumberFormat('en-IE', { style: 'currency', currency: 'EUR' });
export const clock = new Intl.DateTimeFormat('en-GB', {
  hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 1,
});

/** Shows `charges` (GET /api/charges) in `tbody`, newest first; rows whose
 *  charge `marked` picks stand out. `tbody.dataset.count` says how many. */
export function showLedger(tbody, charges, marked) {
  const rows = charges.slice().reverse().map((charge) => el('tr', { className: marked(charge) ? 'current' : '' },
    el('td', { textContent: String(charge.id) }),
    el('td', { textContent: clock.format(charge.created_at) }),
    el('td', { textContent: charge.description ?? '' }),
    el('td', { className: 'num', textContent: money.format(charge.amount / 100) }),
    el('td', {}, el('code', { textContent: charge.idempotency_key, title: charge.idempotency_key }))));
  tbody.replaceChildren(...rows);
  tbody.dataset.count = String(charges.length);
}
