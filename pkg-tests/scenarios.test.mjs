// The scenario suite (tests/scenarios.json) with the npm package in
// Chromium, on IndexedDB: each row in a page of its own, the network
// scripted by `page.route` (each request answered as the row's schedule
// says: fulfilled, or aborted for a lost answer or an unreachable server)
// and recorded as it reached the route. Every row's transcript must equal
// the row, as it must for the Rust client (tests/scenarios/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stage, unique, root, testPage } from './harness.mjs';

const EXECUTOR = 'npm-indexeddb';
const suite = JSON.parse(await readFile(join(root, 'tests', 'scenarios.json'), 'utf8'));

let staged, server, browser;

before(async () => {
  staged = await stage(join(root, 'pkg-tests', 'site'));
  ({ server, browser } = staged);
});

after(() => staged?.stop());

for (const row of suite.scenarios) {
  const runs = !row.executors || row.executors.includes(EXECUTOR);
  const drift = row.known_drift?.[EXECUTOR] ?? {};
  test(row.name, { skip: !runs && `not run on ${EXECUTOR}` }, async () => {
    const observed = await play(row);
    const expected = { results: expectedResults(row.steps), events: row.events, wire: row.wire };
    // Each part as the row says; one marked as a known drift here must differ.
    for (const part of ['results', 'events', 'wire']) {
      if (drift[part]) {
        assert.notDeepEqual(observed[part], expected[part], `its ${part} match on ${EXECUTOR} now: remove the known_drift`);
        console.log(`known drift in the ${part}: ${drift[part]}`);
      } else {
        assert.deepEqual(observed[part], expected[part], part);
      }
    }
  });
}

/** Each step's expected result, then its `during` steps' (as the runs record them). */
function expectedResults(steps) {
  return steps.flatMap((step) => ('expect' in step ? [step.expect, ...expectedResults(step.during ?? [])] : []));
}

/** Plays `row` in a new page; its transcript, keys labelled. */
async function play(row) {
  const context = await browser.newContext();
  try {
    const page = await testPage(server, context);
    const origin = server.url;
    const schedule = [...(row.network ?? [])];
    const seen = [];
    await page.route(`${origin}/api/**`, async (route) => {
      const request = route.request();
      seen.push({
        method: request.method(),
        url: request.url(),
        headers: await request.allHeaders(),
        body: request.postDataBuffer()?.toString() ?? '',
      });
      const answer = schedule.shift() ?? suite.defaults.answer;
      if (answer.lost) return route.abort('connectionreset');
      if (answer.unreachable) return route.abort('connectionrefused');
      return route.fulfill({ status: answer.status, headers: answer.headers ?? {}, body: answer.body ?? '' });
    });
    const { results, events } = await page.evaluate(playInPage, {
      row,
      defaults: suite.defaults,
      origin,
      namespace: unique('scenario'),
    });
    const wire = seen.map((sent) => wireEntry(sent, origin));
    return labelled({ results, events, wire });
  } finally {
    await context.close();
  }
}

/** A request as the row writes it: the headers of `wire_headers` it carried, and its key. */
function wireEntry({ method, url, headers, body }, origin) {
  const key = headers['idempotency-key'];
  const quoted = key?.match(/^"([\x20-\x7e]+)"$/);
  return {
    method,
    url: url.startsWith(origin) ? `{origin}${url.slice(origin.length)}` : url,
    key: key === undefined ? 'none' : quoted && !/["\\]/.test(quoted[1]) ? quoted[1] : `malformed ${key}`,
    headers: Object.fromEntries(suite.wire_headers.filter((name) => name in headers).map((name) => [name, headers[name]])),
    body,
  };
}

/** Every `key` by its label (A, B, … in order of first appearance: results, then the wire). */
function labelled(transcript) {
  const keys = [];
  const label = (value) => {
    if (Array.isArray(value)) return value.forEach(label);
    if (value && typeof value === 'object' && typeof value.key === 'string' && value.key !== 'none' && !value.key.startsWith('malformed ')) {
      if (!keys.includes(value.key)) keys.push(value.key);
      value.key = String.fromCharCode(65 + keys.indexOf(value.key));
    }
  };
  label(transcript.results);
  label(transcript.wire);
  return transcript;
}

// Runs in the page (serialised by playwright: it uses nothing from this
// module): plays the steps with the package (`window.oncely`), and returns
// each step's result and every event, as the row writes them.
async function playInPage({ row, defaults, origin, namespace }) {
  // The page's clock, moved ahead by the row's `advance` steps (timers stay real).
  const realNow = Date.now;
  let shift = 0;
  Date.now = () => realNow() + shift;

  const events = [];
  const render = (event) => {
    switch (event.type) {
      case 'attempt':
        return `attempt ${event.attempt}`;
      case 'retry':
        return `retry ${event.attempt} ${event.status ?? 'no response'} in ${event.delayMs}ms`;
      case 'settled':
        return `settled ${event.status}`;
      case 'failed':
        return `failed ${event.error.code}`;
      default:
        return event.type;
    }
  };
  const open = async (options = {}) => {
    const merged = { ...defaults.client, ...options, retry: { ...defaults.client.retry, ...options.retry } };
    const credentials = merged.credentials;
    const client = await oncely.Oncely.open({
      namespace,
      user: merged.user,
      authorize: credentials && (() => ({ ...credentials })),
      retentionMs: merged.retention_ms,
      retry: {
        maxAttempts: merged.retry.max_attempts,
        baseDelayMs: merged.retry.base_delay_ms,
        maxDelayMs: merged.retry.max_delay_ms,
        deadlineMs: merged.retry.deadline_ms,
      },
    });
    client.on('*', (event) => events.push(render(event)));
    return client;
  };

  const failure = (error) => {
    if (!(error instanceof oncely.OncelyError)) return { error: 'thrown', message: String(error) };
    const result = { error: error.code };
    if (error.key !== undefined) result.key = error.key;
    if (error.lastStatus !== undefined) result.last_status = error.lastStatus;
    return result;
  };
  const outcome = async (outcome) => ({
    status: outcome.status,
    replayed: outcome.replayed,
    attempts: outcome.attempts,
    key: outcome.key,
    body: await outcome.text(),
  });
  const request = (step) => {
    const given = step.request ?? {};
    return {
      intent: step.intent,
      method: given.method ?? defaults.request.method,
      url: (given.url ?? defaults.request.url).replace('{origin}', origin),
      headers: { ...defaults.request.headers, ...given.headers },
      body: given.body ?? defaults.request.body,
    };
  };

  let client = await open(row.client);
  // One call, and its result as the row writes it.
  const call = async (step) => {
    try {
      switch (step.op) {
        case 'send':
          return await outcome(await client.send(request(step)));
        case 'resume':
          return await Promise.all((await client.resume()).map((result) => (result instanceof Error ? failure(result) : outcome(result))));
        case 'pending':
          return (await client.pending()).map((entry) =>
            entry instanceof Error ? failure(entry) : { intent: entry.intent, key: entry.key, attempts: entry.attempts, state: entry.state },
          );
        case 'forget':
          return await client.forget(step.intent);
        case 'prune':
          return await client.prune();
        default:
          throw new Error(`a ${step.op} is no call: it cannot run during a flight`);
      }
    } catch (error) {
      return failure(error);
    }
  };
  // The send `step`, with its `during` calls made once its first attempt
  // has left and before its answer is in: their results follow its own.
  const sendWhileInFlight = async (step) => {
    let others;
    const launch = () => (others ??= step.during.map(call));
    const off = client.on('attempt', () => {
      off();
      launch();
    });
    const first = await call(step);
    off();
    return [first, ...(await Promise.all(launch()))];
  };

  const results = [];
  for (const step of row.steps) {
    if (step.op === 'reload') client = await open(step.client);
    else if (step.op === 'advance') shift += step.ms;
    else if (step.during?.length) results.push(...(await sendWhileInFlight(step)));
    else results.push(await call(step));
  }
  return { results, events };
}
