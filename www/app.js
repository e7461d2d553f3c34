// The demo checkout: pays through the oncely package (./pkg/, built by
// `make pkg`) against the reference server that serves this page, and shows
// what happens: the intent's key, every attempt, and the server's ledger. A
// service worker (sw.js) finishes a payment this tab leaves unfinished.
import { Oncely, OncelyError } from './pkg/index.js';
import { account, api } from './account.js';
import { payments, NOTICES, orderOf } from './payments.js';
import { $, el, money, clock, showLedger } from './view.js';

const CATALOG = [
  { sku: 'mug', name: 'Stoneware mug', price: 1800 },
  { sku: 'beans', name: 'Coffee beans, 500 g', price: 1450 },
  { sku: 'filters', name: 'Paper filters × 100', price: 450 },
];
const CURRENCY = 'eur';

// --- the cart: kept in localStorage, shared by this account's tabs --------
const CART = `oncely-demo:${account}:cart`;

function newCart() {
  return {
    id: crypto.randomUUID().slice(0, 8),
    quantities: { mug: 1, beans: 2, filters: 1 },
    locked: false,
    paid: null,
  };
}

function loadCart() {
  try {
    const cart = JSON.parse(localStorage.getItem(CART));
    if (cart?.id && cart.quantities) return cart;
  } catch {
    // A damaged cart is replaced by a new one.
  }
  return saveCart(newCart());
}

function saveCart(cart) {
  localStorage.setItem(CART, JSON.stringify(cart));
  return cart;
}

let cart = loadCart();

const total = (c) => CATALOG.reduce((sum, item) => sum + item.price * (c.quantities[item.sku] ?? 0), 0);
const intentOf = (c) => `checkout:${c.id}`;

/** The payment request: the same cart always gives the same bytes. */
function paymentRequest(c) {
  return {
    intent: intentOf(c),
    method: 'POST',
    url: '/api/charges',
    // The account goes with every attempt from `authorize` (payments.js):
    // like a credential, it is never stored, and a resume sends it afresh.
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ amount: total(c), currency: CURRENCY, description: `order ${c.id}` }),
  };
}

function renderCart() {
  $('order-id').textContent = `#${cart.id}`;
  const items = CATALOG.map((item) => {
    const quantity = cart.quantities[item.sku] ?? 0;
    const label = `${item.name}: quantity`;
    const step = (delta, text, name) => el('button', {
      type: 'button',
      className: 'step',
      textContent: text,
      disabled: cart.locked || quantity + delta < 0 || quantity + delta > 9,
      ariaLabel: `${name} ${item.name}`,
      onclick: () => {
        cart.quantities[item.sku] = quantity + delta;
        saveCart(cart);
        renderCart();
      },
    });
    return el('li', { className: 'item' },
      el('span', { className: 'name', textContent: item.name }),
      el('span', { className: 'qty', role: 'group', ariaLabel: label },
        step(-1, '−', 'One fewer'),
        el('output', { textContent: String(quantity), ariaLabel: label }),
        step(1, '+', 'One more')),
      el('span', { className: 'price', textContent: money.format((item.price * quantity) / 100) }));
  });
  $('items').replaceChildren(...items);
  $('total').textContent = money.format(total(cart) / 100);
  $('pay').disabled = !client || total(cart) === 0 || Boolean(cart.paid);
  $('pay').textContent = cart.paid ? 'Paid' : `Pay ${money.format(total(cart) / 100)}`;
  $('new-order').hidden = !cart.locked;
  $('cart-note').textContent = cart.paid
    ? 'This order is paid. Start a new one to pay again.'
    : cart.locked
      ? 'This order is being paid: its contents are locked, so every click and every tab sends the same payment.'
      : 'The order is locked once you pay: the same order is the same payment.';
}

// --- the payment panel ------------------------------------------------------
/** The panel for `c`, paid: its key and total, and how (`note`). */
function showPaid(c, note = '') {
  showKey(c.paid.key);
  setState(`Paid ${money.format(total(c) / 100)}, charged once.${note}`, 'ok');
}

function setState(text, tone = 'neutral') {
  const state = $('state');
  state.textContent = text;
  state.dataset.tone = tone;
}

function showKey(key) {
  if (key) $('key').textContent = key;
}

const rows = new Map(); // attempt number → its <li>
const JOINED = 'Another click joined the payment in flight: nothing extra sent';
let joinedEarly = 0;

function timeline(text, tone = 'neutral', at = Date.now()) {
  $('no-attempts').hidden = true;
  const item = el('li', { className: `event ${tone}` },
    el('time', { dateTime: new Date(at).toISOString(), textContent: clock.format(at) }),
    el('span', { className: 'what', textContent: text }));
  $('attempts').append(item);
  return item;
}

function describeAttemptEnd(item, text, tone) {
  if (!item) return;
  item.className = `event ${tone}`;
  item.querySelector('.what').textContent += ` — ${text}`;
}

function clearTimeline() {
  rows.clear();
  joinedEarly = 0;
  $('attempts').replaceChildren();
  $('no-attempts').hidden = false;
}

function onEvent(event) {
  if (event.intent !== intentOf(cart)) return;
  showKey(event.key);
  switch (event.type) {
    case 'created':
      timeline('Payment recorded in this browser before sending', 'info', event.at);
      break;
    case 'attempt':
      rows.set(event.attempt, timeline(`Attempt ${event.attempt} sent`, 'pending', event.at));
      setState(event.attempt === 1 ? 'Paying…' : `Paying… attempt ${event.attempt}`, 'pending');
      // Clicks that joined before the first attempt was under way, shown after it.
      for (; joinedEarly > 0; joinedEarly -= 1) timeline(JOINED, 'info', event.at);
      break;
    case 'retry': {
      const what = event.status === 409
        ? 'HTTP 409: the server is still processing this key'
        : event.status ? `HTTP ${event.status}` : `network error (${event.reason})`;
      const wait = (event.delayMs / 1000).toFixed(1);
      describeAttemptEnd(rows.get(event.attempt), `${what}; next try in ${wait} s, same key`, 'warn');
      setState(`${what}. Retrying in ${wait} s with the same key…`, 'warn');
      pullFaults(); // a one-shot fault just fired
      break;
    }
    case 'offline':
      timeline('Offline: waiting for the network before the next attempt', 'warn', event.at);
      setState(`Offline. The payment is saved and goes out once you are back online${worker?.controller ? ', or from the service worker if you close this tab' : ''}.`, 'warn');
      break;
    case 'joined':
      if (rows.size === 0) joinedEarly += 1;
      else timeline(JOINED, 'info', event.at);
      break;
    case 'replayed':
      timeline('Already paid: the stored outcome was replayed, nothing sent', 'info', event.at);
      break;
    case 'settled':
      describeAttemptEnd(rows.get(event.attempt), `HTTP ${event.status}`, event.status < 300 ? 'ok' : 'bad');
      break;
    case 'failed':
      timeline(`Stopped: ${event.error?.message ?? 'failed'}`, 'bad', event.at);
      break;
    case 'conflict':
      timeline('Refused: this order was already paid with other contents', 'bad', event.at);
      break;
    default:
  }
}

async function onOutcome(outcome) {
  showKey(outcome.key);
  if (!outcome.ok) {
    let reason = `HTTP ${outcome.status}`;
    try {
      reason = (await outcome.json()).message ?? reason;
    } catch {
      // Not JSON: the status says enough.
    }
    setState(`The server declined the payment: ${reason}`, 'bad');
    return;
  }
  const serverReplayed = outcome.headers.get('idempotent-replayed') === 'true';
  cart.paid = { key: outcome.key, at: Date.now() };
  saveCart(cart);
  renderCart();
  const how = outcome.replayed
    ? 'This tab found the payment already made and replayed it.'
    : serverReplayed
      ? 'The server recognised the key and answered with the charge it had already made.'
      : `Took ${outcome.attempts} attempt${outcome.attempts === 1 ? '' : 's'}.`;
  showPaid(cart, ` ${how}`);
  if (serverReplayed && outcome.attempts === 1) {
    timeline('The connection dropped after the charge; the browser re-sent the request itself, with the same key, and the server replayed the charge instead of charging again', 'info');
  }
  refreshLedger();
  pullFaults();
}

function onFailure(error) {
  if (!(error instanceof OncelyError)) {
    setState(`Unexpected error: ${error?.message ?? error}`, 'bad');
    return;
  }
  showKey(error.key);
  const messages = {
    gave_up: 'The server could not be reached for now. The payment is saved with its key; “Retry” sends it again, and a reload does too.',
    rejected: 'The server refused the key as reused with a different order. Nothing was charged twice.',
    conflict: 'This order was already paid with other contents; nothing was sent.',
    expired: 'This payment is older than the server keeps keys; start a new order.',
    storage: `This browser’s storage failed: ${error.message}`,
    invalid: `The payment could not be sent: ${error.message}`,
  };
  setState(messages[error.code] ?? error.message, 'bad');
  if (error.code === 'gave_up') $('pay').textContent = 'Retry';
  refreshLedger();
  pullFaults();
}

// --- paying -------------------------------------------------------------------
let client;

async function pay() {
  if (!client) return; // Pay is enabled once the client is open
  if (!cart.locked) {
    cart.locked = true;
    saveCart(cart);
    renderCart();
  }
  // The order may be replaced (“Start a new order”, another tab) while its
  // payment is under way: its answer belongs to it, not to the new order.
  const intent = intentOf(cart);
  const current = () => intentOf(cart) === intent;
  try {
    const outcome = await client.send(paymentRequest(cart));
    if (current()) await onOutcome(outcome);
    else timeline(`The previous order’s payment ended: ${outcome.ok ? 'charged once' : `HTTP ${outcome.status}`} (key ${outcome.key})`, outcome.ok ? 'ok' : 'bad');
  } catch (error) {
    if (current()) onFailure(error);
    else timeline(`The previous order’s payment did not finish: ${error?.message ?? error}`, 'bad');
  }
}

/** On load: finish whatever a reload or a closed tab left unfinished, and
 *  show what was finished while no checkout was open. */
async function resumeInterrupted() {
  const pending = await client.pending();
  const ours = pending.find((p) => p.intent === intentOf(cart));
  if (ours) {
    showKey(ours.key);
    setState('A payment for this order was interrupted (or is under way in another tab or the service worker): finishing it with its original key…', 'pending');
    timeline(`Found this order’s payment unfinished: resuming under key ${ours.key}`, 'info');
  } else if (cart.locked && !cart.paid) {
    // Asked for (a locked order is one whose Pay was clicked), and no
    // longer unfinished: settled while no checkout showed it, by the
    // service worker or a tab since closed. Its recorded outcome is
    // replayed; nothing is sent.
    setState('This order’s payment was finished while the checkout was closed: reading its outcome…', 'pending');
    timeline('Found this order’s payment finished while the checkout was closed (by the service worker, or a tab since closed)', 'info');
    await pay();
    return;
  }
  if (!pending.length) return;
  // A payment once asked for is finished, whatever became of its order
  // (“Start a new order” does not cancel it, here or in the service worker).
  const results = await client.resume();
  for (const result of results.filter((r) => r.intent !== intentOf(cart))) {
    const order = `A previous order’s payment (#${orderOf(result.intent)}, key ${result.key})`;
    if (result instanceof OncelyError) timeline(`${order} could not be finished yet: ${result.message}`, 'warn');
    else timeline(`${order} was finished: ${result.ok ? 'charged once' : `HTTP ${result.status}`}`, result.ok ? 'ok' : 'bad');
  }
  if (!ours) return;
  const mine = results.find((o) => o.intent === intentOf(cart) && !(o instanceof OncelyError));
  if (mine) await onOutcome(mine);
  else setState('The interrupted payment could not be completed yet; “Retry” sends it again with the same key.', 'bad');
}

// --- chaos ----------------------------------------------------------------------
const armed = { drop: false, 503: false, 429: false, slow: false };

/** Sends the armed faults to the server (all of them: it merges queues). */
async function pushFaults() {
  await api('/api/faults', { method: 'DELETE' });
  const failNext = [];
  if (armed[503]) failNext.push({ status: 503 });
  if (armed[429]) failNext.push({ status: 429, headers: { 'Retry-After': '3' } });
  await api('/api/faults', {
    method: 'POST',
    body: JSON.stringify({ drop_next: armed.drop ? 1 : 0, fail_next: failNext, slow_ms: armed.slow ? 4000 : 0 }),
  });
}

async function pullFaults() {
  try {
    const faults = await api('/api/faults');
    armed.drop = faults.drop_next > 0;
    armed[503] = faults.fail_next.some((f) => f.status === 503);
    armed[429] = faults.fail_next.some((f) => f.status === 429);
    armed.slow = faults.slow_ms > 0;
    renderSwitches();
  } catch {
    // Offline or the server restarting: keep the last known state.
  }
}

let simulatedOffline = false;

/** "Go offline" in this tab: the page reports `navigator.onLine === false`
 *  and fires `offline`, as the browser does when the network goes away. */
function setSimulatedOffline(offline) {
  simulatedOffline = offline;
  if (offline) {
    Object.defineProperty(navigator, 'onLine', { configurable: true, get: () => false });
    window.dispatchEvent(new Event('offline'));
  } else {
    delete navigator.onLine;
    window.dispatchEvent(new Event('online'));
  }
  renderSwitches();
}

function renderSwitches() {
  for (const button of document.querySelectorAll('.switch[data-fault]')) {
    const fault = button.dataset.fault;
    const on = fault === 'offline' ? simulatedOffline : armed[fault];
    button.setAttribute('aria-pressed', String(on));
    if (fault === 'offline') button.querySelector('strong').textContent = on ? 'Back online' : 'Go offline';
  }
}

/** Arms (or disarms) a server fault; false if the server refused. */
async function setFault(fault, on) {
  armed[fault] = on;
  renderSwitches();
  try {
    await pushFaults();
    return true;
  } catch (error) {
    armed[fault] = !on;
    renderSwitches();
    setState(`Could not switch the fault: ${error.message}`, 'bad');
    return false;
  }
}

for (const button of document.querySelectorAll('.switch[data-fault]')) {
  button.addEventListener('click', () => {
    const fault = button.dataset.fault;
    if (fault === 'offline') setSimulatedOffline(!simulatedOffline);
    else setFault(fault, !armed[fault]);
  });
}

// --- the service worker: it finishes a payment this tab leaves unfinished ------
const worker = navigator.serviceWorker; // none outside a secure context (https, localhost)

function showWorker() {
  const on = Boolean(worker?.controller);
  $('worker').textContent = on ? 'closed tabs’ payments finish (service worker)' : worker ? 'service worker starting…' : 'no service worker: payments finish on your next visit';
  $('worker').dataset.tone = on ? 'ok' : 'warn';
  document.body.dataset.worker = on ? 'controlling' : 'none';
}

if (worker) {
  // The worker finishes the payments of the account signed in on this
  // browser: it reads the account cookie (the server's own), as an app's
  // worker reads its session.
  document.cookie = `account=${account}; path=/; max-age=31536000; samesite=strict`;
  worker.addEventListener('controllerchange', showWorker);
  worker.register('sw.js', { type: 'module' }).catch((error) => {
    $('worker').textContent = `no service worker (${error.message}): payments finish on your next visit`;
  });
  // Going away (closed, reloaded): the worker takes over what this tab
  // leaves unfinished as soon as the tab's locks are gone, even if the
  // Background Sync it was asked for has ended meanwhile.
  window.addEventListener('pagehide', () => worker.controller?.postMessage('resume'));
  // The worker finished this order's payment (its tab closed while paying;
  // this is another tab of the account): shown paid here too.
  new BroadcastChannel(NOTICES).addEventListener('message', ({ data }) => {
    const done = data.account === account && data.results.find((r) => r.intent === intentOf(cart) && r.status >= 200 && r.status < 300);
    if (!done || cart.paid) return;
    cart.paid = { key: done.key, at: data.at };
    saveCart(cart);
    renderCart();
    showPaid(cart, ' The service worker finished it after the tab that paid was closed.');
    refreshLedger();
  });
}

// --- close the tab: the scenario, and the ledger window ---------------------------
/** The ledger of this account in a window of its own, which outlives this tab. */
function watchLedger() {
  const opened = window.open($('watch-ledger').href, 'oncely-ledger', 'popup,width=640,height=820');
  opened?.focus();
  return Boolean(opened);
}

/** Sets up "close the tab": the ledger window open, and a payment that
 *  stays out long enough to close the tab on it (the slow server, unless
 *  this tab is offline: then it waits for the network). */
async function closeTheTab() {
  const watching = watchLedger();
  if (!simulatedOffline && !armed.slow && !(await setFault('slow', true))) return;
  const how = simulatedOffline
    ? 'This tab is offline: pay, then close it. Its payment waits here, recorded; once the tab is gone the service worker sends it.'
    : 'The server now takes 4 s per charge: pay, then close this tab while “Attempt 1 sent” shows. The server still charges that request; the service worker finishes the payment under the same key.';
  const where = watching ? 'The ledger window keeps watching' : 'Open the ledger window (“Watch in a new window”, below) to watch';
  const without = worker?.controller ? '' : ' (No service worker runs this page here: the payment finishes on your next visit instead.)';
  const note = $('close-tab-note');
  note.textContent = `${how} ${where}: one charge, under the key shown in Payment.${without}`;
  note.hidden = false;
}

$('watch-ledger').href = `ledger.html?account=${encodeURIComponent(account)}`;
$('watch-ledger').addEventListener('click', (event) => {
  if (watchLedger()) event.preventDefault();
});
$('close-tab').addEventListener('click', closeTheTab);

// --- the ledger --------------------------------------------------------------------
async function refreshLedger() {
  let charges;
  try {
    charges = await api('/api/charges');
  } catch {
    return; // offline: the next poll tries again
  }
  const current = cart.paid?.key ?? $('key').textContent;
  showLedger($('ledger'), charges, (charge) => charge.idempotency_key === current);
  $('ledger-empty').hidden = charges.length > 0;
}

// --- start ---------------------------------------------------------------------------
function showNetwork() {
  const online = navigator.onLine;
  $('network').textContent = online ? 'online' : 'offline';
  $('network').dataset.tone = online ? 'ok' : 'warn';
}
window.addEventListener('online', showNetwork);
window.addEventListener('offline', showNetwork);

$('pay').addEventListener('click', pay);
$('new-order').addEventListener('click', () => {
  cart = saveCart(newCart());
  clearTimeline();
  $('key').textContent = '— minted when you pay';
  setState('Not paid yet.');
  renderCart();
});
// Another tab changed the cart (paid it, started a new order): follow it.
window.addEventListener('storage', (event) => {
  if (event.key !== CART) return;
  const next = loadCart();
  if (next.id !== cart.id) {
    clearTimeline();
    $('key').textContent = '— minted when you pay';
    setState('Not paid yet.');
  }
  if (next.paid && !cart.paid) showPaid(next, ' (In another tab.)');
  cart = next;
  renderCart();
});

renderCart();
showNetwork();
showWorker();
// The ledger and the switches are the server's: shown at once, not after
// the interrupted payments below are finished.
refreshLedger();
pullFaults();
setInterval(refreshLedger, 1000);
setInterval(pullFaults, 3000);
try {
  // Whose payments these are: the signed-in account. The client touches
  // only its intents (another account's are never resumed with this one's
  // credentials), and `authorize` gives every attempt, resumed ones
  // included, the account header.
  client = await Oncely.open({ ...payments(() => account), user: account });
  client.on('*', onEvent);
  renderCart(); // Pay is enabled now
  $('storage').textContent = 'payments saved in this browser';
  $('tabs').textContent = client.webLocks ? 'tabs take turns (Web Locks)' : 'no Web Locks: the server dedups';
  client.persisted().then((granted) => {
    $('storage').textContent = granted ? 'payments saved (persistent storage)' : 'payments saved (storage may be evicted)';
  });
  if (cart.paid) showPaid(cart);
  document.body.dataset.ready = 'true';
  await resumeInterrupted();
} catch (error) {
  $('pay').disabled = true;
  onFailure(error);
}
