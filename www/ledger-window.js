// The ledger window (ledger.html?account=…): one account's charges on the
// server, live, in a window that outlives the checkout tab; beside them,
// the payments still waiting in this browser, and what the service worker
// says it finished.
import { Oncely, OncelyError } from './pkg/index.js';
import { account, api } from './account.js';
import { payments, NOTICES, orderOf } from './payments.js';
import { $, el, clock, showLedger } from './view.js';

$('account').textContent = account;
document.title = `Ledger of ${account} — oncely demo`;

const byWorker = new Set(); // the keys of the payments the worker finished

async function refreshLedger() {
  let charges;
  try {
    charges = await api('/api/charges');
  } catch {
    $('updated').textContent = 'server unreachable: trying again';
    $('updated').dataset.tone = 'warn';
    return;
  }
  showLedger($('ledger'), charges, (charge) => byWorker.has(charge.idempotency_key));
  $('ledger-empty').hidden = charges.length > 0;
  $('updated').textContent = `live: updated ${clock.format(Date.now())}`;
  $('updated').dataset.tone = 'ok';
}

let client;

/** This browser's records of the account's payments not yet settled. */
async function refreshWaiting() {
  const waiting = (await client.pending()).filter((p) => !(p instanceof OncelyError));
  $('waiting').replaceChildren(...waiting.map((p) => event(p.createdAt, 'pending', p.key,
    `Order #${orderOf(p.intent)}, key `, el('code', { textContent: p.key }), ': outcome not known yet')));
  $('waiting-empty').hidden = waiting.length > 0;
}

/** A line of the window's lists: when, what (about the payment under `key`). */
function event(at, tone, key, ...what) {
  const item = el('li', { className: `event ${tone}` },
    el('time', { dateTime: new Date(at).toISOString(), textContent: clock.format(at) }),
    el('span', { className: 'what' }, ...what));
  item.dataset.key = key;
  return item;
}

const notice = (text, tone, key, at) => $('notices').append(event(at, tone, key, text));

/** What the worker says each of its resumes came to (sw.js). */
function onNotice({ data }) {
  if (data.account !== account) return;
  for (const result of data.results) {
    // Read from this browser's record: a tab had finished it, nothing new.
    if (result.stored) continue;
    const order = `order #${orderOf(result.intent)}`;
    if (result.code) {
      notice(`The service worker could not finish ${order}’s payment yet (${result.code}): the browser has it try again later, and the checkout’s next visit does too. Key ${result.key}.`, 'warn', result.key, data.at);
    } else if (result.status >= 300) {
      notice(`The service worker sent ${order}’s payment: the server declined it (HTTP ${result.status}). Key ${result.key}.`, 'bad', result.key, data.at);
    } else {
      byWorker.add(result.key);
      const how = result.serverReplayed
        ? 'the server had charged the closed tab’s request and answered with that charge, not a second one'
        : `the server charged it (HTTP ${result.status})`;
      notice(`The service worker finished ${order}’s payment after its tab was closed: ${how}. Key ${result.key}.`, 'ok', result.key, data.at);
    }
  }
  refreshLedger();
  if (client) refreshWaiting();
}

function showWorker() {
  const on = Boolean(navigator.serviceWorker?.controller);
  $('worker').textContent = on ? 'service worker on' : 'no service worker here';
  $('worker').dataset.tone = on ? 'ok' : 'warn';
}

showWorker();
navigator.serviceWorker?.addEventListener('controllerchange', showWorker);
new BroadcastChannel(NOTICES).addEventListener('message', onNotice);
refreshLedger();
setInterval(refreshLedger, 1000);
try {
  client = await Oncely.open({ ...payments(() => account), user: account });
  await refreshWaiting();
  setInterval(refreshWaiting, 1000);
} catch (error) {
  $('waiting-empty').textContent = `This browser’s records cannot be read here: ${error.message}`;
}
document.body.dataset.ready = 'true';
