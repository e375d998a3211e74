// Browser end-to-end and accessibility tests of promptgate's web console (/console).
//
// Run by scripts/console-test, which starts a gateway on a fresh database and passes:
//   CONSOLE_BASE_URL             the gateway's URL (http://127.0.0.1:PORT)
//   CONSOLE_ADMIN_CLIENT_ID      an admin client (every scope) ...
//   CONSOLE_ADMIN_CLIENT_SECRET  ... and its secret
//   CONSOLE_CHROMIUM             the Chromium binary (default /usr/bin/chromium)
//   CONSOLE_SCREENSHOT_DIR       where the PNG screenshots go
//
// The tests run in order in one file and share state (the prompt the main flow creates). Every
// wait is a bounded poll on a condition, never an assertion on elapsed time. The console keeps its
// token in memory only, so a page is never reloaded: navigation is by clicking links.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');

const BASE = required('CONSOLE_BASE_URL').replace(/\/+$/, '');
const ADMIN_ID = required('CONSOLE_ADMIN_CLIENT_ID');
const ADMIN_SECRET = required('CONSOLE_ADMIN_CLIENT_SECRET');
const CHROMIUM = process.env.CONSOLE_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.CONSOLE_SCREENSHOT_DIR || path.resolve('..', 'target', 'console-screenshots');
const CONSOLE_URL = `${BASE}/console/`;
const GW = `${BASE}/api/v2/ai/llm/gateway`;

// Bounds of the polling waits (not expectations of speed).
const WAIT_MS = 30_000;
const TELEMETRY_WAIT_MS = 60_000;
// A backstop per test, so that a hang fails the run instead of stalling CI.
const LIMIT = { timeout: 240_000 };

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through scripts/console-test`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Polling and helpers

/** Calls `probe` until it returns a truthy value (returned) or `timeout` ms have passed (throws
 * with `what` and the last value or error seen). */
async function eventually(what, probe, { timeout = WAIT_MS, interval = 200 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Waits until `locator` is visible (bounded). */
async function visible(locator, what, timeout = WAIT_MS) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch (e) {
    throw new Error(`${what} did not become visible within ${timeout} ms: ${e.message.split('\n')[0]}`);
  }
  return locator.first();
}

async function heading1(page, name, timeout = WAIT_MS) {
  return visible(page.locator('main').getByRole('heading', { level: 1, name, exact: true }), `the h1 "${name}" in <main>`, timeout);
}

/** The <section> whose h2 is `name`. */
function section(page, name) {
  return page
    .locator('section')
    .filter({ has: page.getByRole('heading', { level: 2, name, exact: true }) })
    .first();
}

async function screenshot(page, name) {
  await mkdir(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
}

const axeReport = [];
let axeSource;

/** Runs axe-core on the page as it is now; prints every violation; fails on serious/critical. */
async function checkAccessibility(page, pageName) {
  const hasAxe = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!hasAxe) {
    // page.addScriptTag({path}) adds an inline <script>, which the console's own
    // Content-Security-Policy (script-src 'self') rightly refuses; the test keeps that policy in
    // force (no bypassCSP) and evaluates axe's source through the DevTools protocol instead.
    axeSource ??= await readFile(AXE_PATH, 'utf8');
    await page.evaluate(axeSource);
    assert.ok(await page.evaluate(() => typeof window.axe?.run === 'function'), 'axe-core is loaded in the page');
  }
  const { passes, results } = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return { passes: r.passes.length, results: r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
    })) };
  });
  assert.ok(passes > 0, `axe-core checked something on the ${pageName} page`);
  const blocking = results.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  axeReport.push({ page: pageName, violations: results });
  if (results.length === 0) {
    console.log(`axe [${pageName}]: no violations (${passes} rules passed)`);
  } else {
    console.log(`axe [${pageName}]: ${results.length} violation(s):`);
    for (const v of results) {
      console.log(`  - ${v.impact} ${v.id}: ${v.help} (${v.helpUrl})`);
      for (const n of v.nodes) console.log(`      ${n.target}\n        ${(n.summary || '').replace(/\n/g, '\n        ')}`);
    }
  }
  assert.deepEqual(
    blocking.map((v) => `${v.impact} ${v.id}: ${v.help} [${v.nodes.map((n) => n.target).join(', ')}]`),
    [],
    `axe-core found serious or critical violations on the ${pageName} page`,
  );
}

// ---------------------------------------------------------------------------------------------
// The gateway's API, to set up clients, send invocations and check the server's state

async function token(id, secret) {
  const res = await fetch(`${BASE}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `POST /oauth/token for ${id}: ${JSON.stringify(body)}`);
  return body.access_token;
}

let adminToken;
async function api(method, url, body, bearer = adminToken) {
  const res = await fetch(url.startsWith('http') ? url : `${BASE}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

async function createClient(name, scopes) {
  const r = await api('POST', '/api/v2/oauth/clients', { name, scopes });
  assert.equal(r.status, 201, `creating client ${name}: ${JSON.stringify(r.body)}`);
  assert.ok(r.body.clientId && r.body.clientSecret, 'the new client has an id and a secret');
  return { id: r.body.clientId, secret: r.body.clientSecret };
}

// ---------------------------------------------------------------------------------------------
// The browser

let browser;
const screenshots = [];
const pageErrors = [];
const foreignRequests = [];

before(async () => {
  adminToken = await token(ADMIN_ID, ADMIN_SECRET);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright adds a fresh --user-data-dir. Without the background-networking flags Chromium
    // tries to reach Google's services, which a closed network makes slow and noisy.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
  console.log(`screenshots (${screenshots.length}):\n  ${screenshots.join('\n  ')}`);
  const counts = axeReport.map((r) => `${r.page}: ${r.violations.length} violation(s)` +
    (r.violations.length ? ` [${r.violations.map((v) => `${v.impact} ${v.id}`).join(', ')}]` : ''));
  console.log(`axe-core summary:\n  ${counts.join('\n  ')}`);
});

/** A fresh browser context (no token, no storage) and a page in it, with the console open. Every
 * request to another origin is refused and recorded: the console must be self-contained. */
async function openConsole(label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const origin = new URL(BASE).origin;
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    foreignRequests.push(`${label}: ${url}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    console.log(`[browser console, ${label}] ${m.text()}`);
    // The console must work under its own Content-Security-Policy.
    if (/Content Security Policy/i.test(m.text())) pageErrors.push(`${label}: ${m.text()}`);
  });
  const res = await page.goto(CONSOLE_URL);
  assert.ok(res && res.ok(), `GET ${CONSOLE_URL} answered ${res && res.status()}`);
  await visible(page.getByLabel('Client ID', { exact: true }), 'the "Client ID" input of the sign-in form');
  return { context, page };
}

async function signIn(page, id, secret, { audit = true } = {}) {
  await page.getByLabel('Client ID', { exact: true }).fill(id);
  await page.getByLabel('Client secret', { exact: true }).fill(secret);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await heading1(page, 'Prompts');
  const nav = page.getByRole('navigation', { name: 'Main' });
  await visible(nav, '<nav aria-label="Main">');
  await visible(nav.getByRole('link', { name: 'Prompts', exact: true }), 'the "Prompts" link in the main navigation');
  if (audit) {
    await visible(nav.getByRole('link', { name: 'Audit', exact: true }), 'the "Audit" link in the main navigation');
  }
  await visible(page.getByText(id, { exact: false }), `the signed-in client id ${id}`);
  await visible(page.getByRole('button', { name: 'Sign out', exact: true }), 'the "Sign out" button');
}

/** Fails on uncaught exceptions, CSP violations or requests to other origins since the last
 * check (each is reported once, by the test during which it happened). */
function checkNoPageErrors() {
  const errors = pageErrors.splice(0);
  const foreign = foreignRequests.splice(0);
  assert.deepEqual(errors, [], 'uncaught exceptions or CSP violations in the console\'s JavaScript');
  assert.deepEqual(foreign, [], 'the console requested other origins');
}

// ---------------------------------------------------------------------------------------------
// The tests

test('sign-in page: a wrong secret shows the server\'s message in role=alert; accessible', LIMIT, async () => {
  const { context, page } = await openConsole('wrong-secret');
  try {
    await screenshot(page, '01-signin');
    await checkAccessibility(page, 'sign-in');

    await page.getByLabel('Client ID', { exact: true }).fill(ADMIN_ID);
    await page.getByLabel('Client secret', { exact: true }).fill('not-the-secret-0123456789');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const alert = await visible(page.getByRole('alert'), 'an element with role="alert" after a failed sign-in');
    const text = (await alert.innerText()).trim();
    assert.ok(text.length > 0, 'the alert is not empty');
    // The token endpoint answers {"error":"invalid_client","error_description":"client authentication failed"}.
    assert.match(text, /invalid_client|authentication failed/i, `the alert carries the server's message, got: ${text}`);
    // Still on the sign-in form, not signed in.
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).count(), 0, 'no main navigation after a failed sign-in');
    await visible(page.getByLabel('Client secret', { exact: true }), 'the sign-in form, still there');
    await screenshot(page, '02-signin-error');
    await checkAccessibility(page, 'sign-in (with error)');
    checkNoPageErrors();
  } finally {
    await context.close();
  }
});

test('keyboard only: sign in with Tab, typing and Enter, then reach the Audit page', LIMIT, async () => {
  const { context, page } = await openConsole('keyboard');
  try {
    const isFocused = (locator) => locator.evaluate((el) => el === document.activeElement);
    const tabUntil = async (locator, what, max = 25, key = 'Tab') => {
      for (let i = 0; i < max; i++) {
        if (await isFocused(locator)) return;
        await page.keyboard.press(key);
      }
      assert.ok(await isFocused(locator), `${what} was not reached with ${max} presses of ${key}`);
    };
    const id = page.getByLabel('Client ID', { exact: true });
    const secret = page.getByLabel('Client secret', { exact: true });
    await tabUntil(id, 'the "Client ID" input');
    await page.keyboard.type(ADMIN_ID);
    await tabUntil(secret, 'the "Client secret" input');
    await page.keyboard.type(ADMIN_SECRET);
    await page.keyboard.press('Enter');
    await heading1(page, 'Prompts');

    const audit = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit', exact: true });
    // The navigation comes before <main> in the document: from the page (the console focuses
    // the new page's h1), Shift+Tab goes back to it.
    await tabUntil(audit, 'the "Audit" link of the main navigation', 40, 'Shift+Tab');
    // A keyboard user must see where the focus is.
    const ring = await audit.evaluate((el) => {
      const s = getComputedStyle(el);
      return { outline: s.outlineStyle, width: s.outlineWidth, shadow: s.boxShadow };
    });
    assert.ok(
      (ring.outline !== 'none' && ring.width !== '0px') || ring.shadow !== 'none',
      `the focused "Audit" link shows no focus indicator: ${JSON.stringify(ring)}`,
    );
    await page.keyboard.press('Enter');
    await heading1(page, 'Audit log');
    checkNoPageErrors();
  } finally {
    await context.close();
  }
});

// The main flow, one signed-in page shared by the tests below.
const flow = {
  context: null,
  page: null,
  name: `console_e2e_${Date.now().toString(36)}`,
  promptId: null,
  systemPrompt: 'You are a helpful customer support agent. Answer briefly and politely.',
  newSystemPrompt: 'You are a concise, friendly customer support agent. Answer in one sentence.',
  responses: [],
  chartsBefore: null,
};

/** A version's cell in a table: a row header (<th scope="row">) or a plain cell. */
function versionCell(scope, version) {
  return scope.getByRole('rowheader', { name: version, exact: true }).or(scope.getByRole('cell', { name: version, exact: true }));
}

function flowPage() {
  assert.ok(flow.page, 'the main flow is not signed in (an earlier test failed)');
  return flow.page;
}

test('prompts list: sign in as admin; search input, table and "New prompt" link; accessible', LIMIT, async () => {
  const { context, page } = await openConsole('admin');
  flow.context = context;
  flow.page = page;
  await signIn(page, ADMIN_ID, ADMIN_SECRET);
  await visible(page.getByLabel('Search prompts', { exact: true }), 'the "Search prompts" input');
  await visible(page.getByRole('link', { name: 'New prompt', exact: true }), 'the "New prompt" link (admin has ai:prompt:write)');
  await screenshot(page, '03-prompts');
  await checkAccessibility(page, 'prompts list');
  checkNoPageErrors();
});

test('new prompt: live token count, over-budget warning, create; the server has the prompt', LIMIT, async () => {
  const page = flowPage();
  await page.getByRole('link', { name: 'New prompt', exact: true }).click();
  await heading1(page, 'New prompt');
  const main = page.locator('main');

  await main.getByLabel('Name', { exact: true }).fill(flow.name);
  const endpoint = main.getByLabel('Model endpoint', { exact: true });
  // The options come from GET /model-endpoints; builtin/echo is the offline provider.
  const echoValue = await eventually('the "Model endpoint" select to offer builtin/echo', () =>
    endpoint.evaluate((el) => {
      const o = [...el.options].find((o) => o.value === 'builtin/echo' || o.textContent.includes('builtin/echo'));
      return o ? o.value : null;
    }));
  await endpoint.selectOption(echoValue);
  await main.getByLabel('System prompt', { exact: true }).fill(flow.systemPrompt);
  await main.getByLabel('Temperature', { exact: true }).fill('0.2');
  const budget = main.getByLabel('Token budget', { exact: true });
  assert.equal(await main.getByLabel('Version', { exact: true }).inputValue(), '1.0.0', 'the "Version" input defaults to 1.0.0');

  const count = page.locator('#token-count');
  assert.equal(await count.getAttribute('role'), 'status', '#token-count has role="status"');
  // Over budget: a budget of 3 tokens for a longer prompt.
  await budget.fill('3');
  await eventually('#token-count to say "over budget" with a budget of 3', async () => /over budget/i.test(await count.innerText()));
  await budget.fill('1500');
  const countText = await eventually('#token-count to show "N / 1500 tokens (tokenizer)"', async () => {
    const t = (await count.innerText()).trim();
    return /^\d+\s*\/\s*1500 tokens \([^)]+\)/.test(t) && !/over budget/i.test(t) ? t : false;
  });
  const counted = Number(countText.match(/^(\d+)/)[1]);
  assert.ok(counted > 0, `a positive token count, got ${countText}`);

  const pii = main.getByLabel('Redact PII', { exact: true });
  const profanity = main.getByLabel('Mask profanity', { exact: true });
  await pii.check();
  await profanity.check();
  assert.ok(await pii.isChecked(), '"Redact PII" is checked');

  await screenshot(page, '04-new-prompt');
  await checkAccessibility(page, 'new prompt');

  await page.getByRole('button', { name: 'Create prompt', exact: true }).click();
  await heading1(page, flow.name);
  const hash = await page.evaluate(() => location.hash);
  const m = hash.match(/^#\/prompts\/([0-9a-fA-F-]{36})$/);
  assert.ok(m, `after "Create prompt" the console shows #/prompts/{id}, got ${hash}`);
  flow.promptId = m[1];

  const r = await api('GET', `${GW}/prompts/${flow.promptId}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.name, flow.name);
  assert.equal(r.body.version, '1.0.0');
  assert.equal(r.body.modelEndpointRef, 'builtin/echo');
  assert.equal(r.body.systemPrompt, flow.systemPrompt);
  assert.equal(r.body.temperature, 0.2);
  assert.equal(r.body.safetyGuardrails.maxTokens, 1500);
  assert.deepEqual([...r.body.safetyGuardrails.contentFiltering].sort(), ['pii', 'profanity']);
  assert.equal(r.body.systemPromptTokens, counted, 'the live count in the form equals the server\'s exact count');
  checkNoPageErrors();
});

test('prompt page: add version 1.1.0 and compare the two versions', LIMIT, async () => {
  const page = flowPage();
  assert.ok(flow.promptId, 'no prompt (an earlier test failed)');
  const versions = section(page, 'Versions');
  await visible(versions, 'the "Versions" section');
  for (const col of ['Version', 'Model endpoint', 'Temperature', 'Tokens', 'Created']) {
    await visible(versions.getByRole('columnheader', { name: col, exact: true }), `the "${col}" column of the versions table`);
  }
  await visible(versionCell(versions, '1.0.0'), 'version 1.0.0 in the versions table');

  const add = section(page, 'Add version');
  await visible(add, 'the "Add version" section');
  await add.getByLabel('Version', { exact: true }).fill('1.1.0');
  await add.getByLabel('System prompt', { exact: true }).fill(flow.newSystemPrompt);
  await eventually('#new-version-token-count to show a count', async () =>
    /\d+\s*\/\s*\d+ tokens/.test(await page.locator('#new-version-token-count').innerText()));
  await add.getByRole('button', { name: 'Add version', exact: true }).click();
  await visible(versionCell(versions, '1.1.0'), 'version 1.1.0 in the versions table after "Add version"');

  const r = await api('GET', `${GW}/prompts/${flow.promptId}/versions/1.1.0`);
  assert.equal(r.status, 200, `the server has version 1.1.0: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.systemPrompt, flow.newSystemPrompt);

  const compare = section(page, 'Compare versions');
  await visible(compare, 'the "Compare versions" section');
  await compare.getByLabel('Left version', { exact: true }).selectOption('1.0.0');
  await compare.getByLabel('Right version', { exact: true }).selectOption('1.1.0');
  // The side-by-side diff shows words only in the old and only in the new system prompt.
  await visible(compare.getByText('helpful', { exact: false }), 'text of 1.0.0 ("helpful") in the diff');
  await visible(compare.getByText('concise', { exact: false }), 'text of 1.1.0 ("concise") in the diff');
  await screenshot(page, '05-prompt-versions-diff');
  await checkAccessibility(page, 'prompt (versions, diff)');
  checkNoPageErrors();
});

test('traffic: 90/10 split rebalances to 100%, the dialog states the move, Apply writes it to the server', LIMIT, async () => {
  const page = flowPage();
  assert.ok(flow.promptId, 'no prompt (an earlier test failed)');
  const traffic = section(page, 'Traffic');
  await visible(traffic, 'the "Traffic" section');
  const w100 = traffic.getByLabel('Weight of 1.0.0 (%)', { exact: true });
  const w110 = traffic.getByLabel('Weight of 1.1.0 (%)', { exact: true });
  await visible(w110, 'the "Weight of 1.1.0 (%)" input');
  await w110.fill('10');
  await w110.press('Tab');
  await eventually('"Weight of 1.0.0 (%)" to be rebalanced to 90', async () => Number(await w100.inputValue()) === 90);
  assert.equal(Number(await w110.inputValue()), 10);
  await visible(traffic.getByText('Total: 100%', { exact: false }), '"Total: 100%"');
  await traffic.getByRole('radio', { name: 'Sticky', exact: true }).check();
  assert.ok(await traffic.getByRole('radio', { name: 'Sticky', exact: true }).isChecked());
  await visible(traffic.getByLabel('Default version', { exact: true }), 'the "Default version" select');

  const review = traffic.getByRole('button', { name: 'Review change', exact: true });
  const dialogOpen = async () => (await page.getByRole('dialog').count()) > 0 && (await page.getByRole('dialog').first().isVisible());
  // Keyboard: the dialog takes the focus, and Escape closes it, giving the focus back.
  await review.focus();
  await page.keyboard.press('Enter');
  await visible(page.getByRole('dialog'), 'the traffic confirmation dialog (opened with Enter)');
  assert.ok(await page.getByRole('dialog').first().evaluate((d) => d.contains(document.activeElement)),
    'the open dialog holds the keyboard focus');
  await page.keyboard.press('Escape');
  await eventually('the dialog to close on Escape', async () => !(await dialogOpen()));
  assert.ok(await review.evaluate((el) => el === document.activeElement), 'closing the dialog returns the focus to "Review change"');

  await review.click();
  const dialog = await visible(page.getByRole('dialog'), 'the traffic confirmation dialog');
  await visible(dialog.getByText(/10% of sessions will move to another version/), 'the dialog\'s "10% of sessions will move to another version"');
  await visible(dialog.getByRole('button', { name: 'Cancel', exact: true }), 'the dialog\'s "Cancel" button');
  await screenshot(page, '06-traffic-dialog');
  await checkAccessibility(page, 'traffic confirmation dialog');

  // Cancel changes nothing on the server.
  await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
  await eventually('the dialog to close on Cancel', async () => !(await dialogOpen()));
  let r = await api('GET', `${GW}/prompts/${flow.promptId}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const weighted = (r.body.trafficDistribution?.versions || []).filter((v) => v.weight > 0).map((v) => v.version);
  assert.ok(!weighted.includes('1.1.0'), `Cancel wrote nothing: ${JSON.stringify(r.body.trafficDistribution)}`);

  await review.click();
  const again = await visible(page.getByRole('dialog'), 'the traffic confirmation dialog (again)');
  await again.getByRole('button', { name: 'Apply', exact: true }).click();

  const dist = await eventually('the server to hold weights 0.9/0.1', async () => {
    r = await api('GET', `${GW}/prompts/${flow.promptId}`);
    const d = r.body.trafficDistribution || {};
    const w = Object.fromEntries((d.versions || []).map((v) => [v.version, v.weight]));
    return Math.abs((w['1.0.0'] ?? -1) - 0.9) < 1e-9 && Math.abs((w['1.1.0'] ?? -1) - 0.1) < 1e-9 ? d : false;
  });
  assert.equal(dist.splitStrategy, 'sticky');
  checkNoPageErrors();
});

test('performance: invocations show up in the per-version table and the charts after Refresh', LIMIT, async () => {
  const page = flowPage();
  assert.ok(flow.promptId, 'no prompt (an earlier test failed)');
  const perf = section(page, 'Performance');
  await visible(perf, 'the "Performance" section');
  await visible(perf.getByLabel('Time range', { exact: true }), 'the "Time range" select');
  const refresh = perf.getByRole('button', { name: 'Refresh', exact: true });
  const charts = perf.locator('svg[role="img"]');
  await refresh.click();
  // The charts as drawn before any invocation (Refresh is disabled while a load runs).
  await eventually('the Performance charts to be drawn', async () => (await refresh.isEnabled()) && (await charts.count()) > 0);
  const chartsMarkup = () => charts.evaluateAll((els) => els.map((e) => e.outerHTML).join('\n'));
  flow.chartsBefore = await chartsMarkup();

  // 20 invocations, each its own conversation.
  const run = Date.now().toString(36);
  for (let i = 1; i <= 20; i++) {
    const r = await api('POST', `${GW}/invocations`, {
      promptId: flow.promptId,
      userInput: `Where is my order number ${i}?`,
      sessionId: `console-${run}-${i}`,
    });
    assert.equal(r.status, 200, `invocation ${i}: ${JSON.stringify(r.body)}`);
    flow.responses.push(r.body);
  }
  const perVersion = {};
  for (const r of flow.responses) perVersion[r.version] = (perVersion[r.version] || 0) + 1;
  assert.ok(Object.keys(perVersion).every((v) => v === '1.0.0' || v === '1.1.0'), JSON.stringify(perVersion));

  const table = perf.getByRole('table', { name: 'Per-version summary' });
  const readTable = async () => {
    const headers = (await table.locator('thead th').allInnerTexts()).map((t) => t.trim());
    const rows = await table.locator('tbody tr').evaluateAll((trs) =>
      trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.innerText.trim())));
    return { headers, rows };
  };
  let last;
  await eventually('the Performance table\'s Requests to total 20 (clicking Refresh)', async () => {
    await refresh.click();
    if (!(await table.count())) return false;
    last = await readTable();
    const vi = last.headers.indexOf('Version');
    const ri = last.headers.indexOf('Requests');
    if (vi < 0 || ri < 0) return false;
    const total = last.rows
      .filter((row) => /^\d+\.\d+\.\d+/.test(row[vi] || ''))
      .reduce((sum, row) => sum + Number((row[ri] || '').replace(/[^\d]/g, '') || 0), 0);
    return total === 20;
  }, { timeout: TELEMETRY_WAIT_MS, interval: 500 });

  assert.deepEqual(last.headers, ['Version', 'Requests', 'Errors', 'Error rate', 'p50 ms', 'p95 ms', 'p99 ms', 'Tokens', 'Feedback'],
    'the columns of the per-version summary');
  const vi = last.headers.indexOf('Version');
  const ri = last.headers.indexOf('Requests');
  const shown = {};
  for (const row of last.rows) {
    const v = (row[vi] || '').match(/^\d+\.\d+\.\d+/)?.[0];
    if (v) shown[v] = Number(row[ri].replace(/[^\d]/g, ''));
  }
  for (const [v, n] of Object.entries(perVersion)) {
    assert.equal(shown[v], n, `Requests of ${v} in the table equals the invocations the gateway routed to it (${JSON.stringify(shown)} vs ${JSON.stringify(perVersion)})`);
  }

  assert.ok((await charts.count()) > 0, 'the Performance section has charts (svg role="img")');
  const labels = await charts.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') || ''));
  assert.ok(labels.every((l) => l.trim().length > 0), `every chart has an aria-label: ${JSON.stringify(labels)}`);
  for (const v of Object.keys(perVersion)) {
    assert.ok(labels.some((l) => l.includes(v)), `a chart's aria-label describes version ${v}: ${JSON.stringify(labels)}`);
  }
  assert.notEqual(await chartsMarkup(), flow.chartsBefore, 'the charts changed once the invocations were recorded');
  const verdict = (await page.locator('#verdict').innerText()).trim();
  assert.ok(verdict.length > 0, '#verdict says something');
  console.log(`verdict: ${verdict}; routed: ${JSON.stringify(perVersion)}`);

  await screenshot(page, '07-prompt-performance');
  await checkAccessibility(page, 'prompt (traffic, performance)');
  checkNoPageErrors();
});

test('audit: the entries of the flow, "Chain valid", expandable changes, JSONL export', LIMIT, async () => {
  const page = flowPage();
  assert.ok(flow.promptId, 'no prompt (an earlier test failed)');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit', exact: true }).click();
  await heading1(page, 'Audit log');
  for (const f of ['Prompt ID', 'Action', 'Actor', 'From', 'To']) {
    await visible(page.getByLabel(f, { exact: true }), `the "${f}" filter`);
  }
  await eventually('#chain-status to say "Chain valid"', async () => /Chain valid/.test(await page.locator('#chain-status').innerText()));
  await visible(page.getByRole('heading', { name: 'Latest signed head' }), 'the "Latest signed head" section');

  await page.getByLabel('Prompt ID', { exact: true }).fill(flow.promptId);
  await page.getByRole('button', { name: 'Apply filters', exact: true }).click();
  const table = page.locator('main table').filter({ has: page.getByRole('columnheader', { name: 'Sequence', exact: true }) }).first();
  await visible(table, 'the audit entries table');
  for (const col of ['Sequence', 'Time', 'Actor', 'Action', 'Prompt']) {
    await visible(table.getByRole('columnheader', { name: col, exact: true }), `the "${col}" column of the audit table`);
  }
  for (const action of ['PROMPT_CREATED', 'VERSION_CREATED', 'TRAFFIC_UPDATED']) {
    await visible(table.getByText(action, { exact: true }), `a ${action} entry for the prompt`);
  }
  // Filtered by the prompt: no client entries (CLIENT_CREATED) of other tests.
  assert.equal(await table.getByText('CLIENT_CREATED', { exact: true }).count(), 0, 'the Prompt ID filter applies');
  await visible(table.getByText(ADMIN_ID, { exact: false }), 'the admin client as the actor');

  // Expand the traffic change: its before/after appears and shows the new weights (0.9, 0.1).
  const occurrences = async () => {
    const t = await page.locator('main').innerText();
    // 0.9 and 0.1, allowing for floating-point spelling (0.8999…, 0.0999…).
    return { w90: (t.match(/\b0\.(9|8999)\d*\b/g) || []).length, w10: (t.match(/\b0\.(1|0999)\d*\b/g) || []).length };
  };
  const shown = await occurrences();
  const trafficRow = table.locator('tr').filter({ hasText: 'TRAFFIC_UPDATED' }).first();
  const show = trafficRow.getByRole('button', { name: /Show changes/ });
  if (await show.count()) {
    const expandable = (await show.first().getAttribute('aria-expanded')) !== null;
    await show.first().click();
    if (expandable) {
      assert.equal(await show.first().getAttribute('aria-expanded'), 'true', '"Show changes" says it is expanded (aria-expanded)');
    }
  } else {
    await visible(trafficRow.locator('summary'), 'a "Show changes" button or <details> summary in the TRAFFIC_UPDATED row');
    await trafficRow.locator('summary').first().click();
  }
  await eventually('the before/after of TRAFFIC_UPDATED to show the weights 0.9 and 0.1', async () => {
    const now = await occurrences();
    return now.w90 > shown.w90 && now.w10 > shown.w10;
  });
  await screenshot(page, '08-audit');
  await checkAccessibility(page, 'audit');

  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: WAIT_MS }),
    page.getByRole('button', { name: 'Export', exact: true }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'audit-log.jsonl');
  const text = await readFile(await download.path(), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  assert.ok(lines.length >= 3, `the export has the flow's entries, got ${lines.length} line(s)`);
  const parsed = lines.map((l, i) => {
    try {
      return JSON.parse(l);
    } catch (e) {
      throw new Error(`line ${i + 1} of audit-log.jsonl is not JSON: ${e.message}: ${l.slice(0, 200)}`);
    }
  });
  const actions = new Set(parsed.map((e) => e.action ?? e.entry?.action).filter(Boolean));
  for (const a of ['PROMPT_CREATED', 'VERSION_CREATED', 'TRAFFIC_UPDATED']) {
    assert.ok(actions.has(a), `the export holds a ${a} entry (actions: ${[...actions].join(', ')})`);
  }

  // Without filters, Export writes the whole signed log and its head, as `promptgate audit
  // export` does: the gateway's own CLI verifies the file offline with only the public key.
  await page.getByLabel('Prompt ID', { exact: true }).fill('');
  await page.getByRole('button', { name: 'Apply filters', exact: true }).click();
  const [whole] = await Promise.all([
    page.waitForEvent('download', { timeout: WAIT_MS }),
    page.getByRole('button', { name: 'Export', exact: true }).click(),
  ]);
  const wholeLines = (await readFile(await whole.path(), 'utf8')).split('\n').filter((l) => l.trim() !== '');
  const head = JSON.parse(wholeLines[wholeLines.length - 1]);
  assert.ok(head.signature && head.treeSize, `the last line is the signed head: ${wholeLines[wholeLines.length - 1]}`);
  assert.equal(wholeLines.length - 1, head.treeSize, 'every entry the head covers, then the head');
  const key = await api('GET', `${GW}/audit-logs/public-key`);
  assert.equal(key.status, 200);
  const dir = await mkdtemp(path.join(tmpdir(), 'console-export-'));
  const exportFile = path.join(dir, 'audit-log.jsonl');
  const keyFile = path.join(dir, 'audit.pub');
  await writeFile(exportFile, await readFile(await whole.path()));
  await writeFile(keyFile, `${key.body.publicKey}\n`);
  const checked = spawnSync(required('CONSOLE_PROMPTGATE_BIN'),
    ['audit', 'verify', '--file', exportFile, '--public-key', keyFile], { encoding: 'utf8' });
  assert.equal(checked.status, 0, `promptgate audit verify on the console's export: ${checked.stdout}${checked.stderr}`);

  const verify = await api('GET', `${GW}/audit-logs/verify`);
  assert.equal(verify.status, 200);
  assert.equal(verify.body.valid, true, `the server's own verification: ${JSON.stringify(verify.body)}`);
  checkNoPageErrors();
});

test('sign out returns to the sign-in form', LIMIT, async () => {
  const page = flowPage();
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await visible(page.getByLabel('Client ID', { exact: true }), 'the sign-in form after "Sign out"');
  assert.equal(await page.getByRole('navigation', { name: 'Main' }).count(), 0, 'no main navigation after signing out');
  await flow.context.close();
  flow.page = null;
});

test('read-only client (ai:prompt:read): no "New prompt" link; the prompts are listed; accessible', LIMIT, async () => {
  const ro = await createClient('console-e2e-read-only', ['ai:prompt:read']);
  const { context, page } = await openConsole('read-only');
  try {
    await signIn(page, ro.id, ro.secret, { audit: false });
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit', exact: true }).count(), 0,
      'no "Audit" link without ai:audit:read');
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API keys', exact: true }).count(), 0,
      'no "API keys" link without admin');
    if (flow.promptId) {
      await visible(page.locator('main').getByRole('link', { name: flow.name, exact: true }), `the prompt ${flow.name} in the list`);
    }
    assert.equal(await page.getByRole('link', { name: 'New prompt' }).count(), 0, 'a read-only client sees no "New prompt" link');
    if (flow.promptId) {
      const search = page.getByLabel('Search prompts', { exact: true });
      const link = page.locator('main').getByRole('link', { name: flow.name, exact: true });
      await search.fill('no-such-prompt-zzz');
      await eventually('the search to hide the prompt', async () => (await link.count()) === 0);
      await search.fill(flow.name);
      await visible(link, `the prompt ${flow.name} found by the search`);
    }
    await screenshot(page, '09-prompts-read-only');
    await checkAccessibility(page, 'prompts list (read-only)');
    if (flow.promptId) {
      // The prompt page offers no way to change anything.
      await page.locator('main').getByRole('link', { name: flow.name, exact: true }).click();
      await heading1(page, flow.name);
      await visible(section(page, 'Versions'), 'the "Versions" section (read-only)');
      await visible(section(page, 'Traffic'), 'the "Traffic" section (read-only)');
      assert.equal(await section(page, 'Add version').count(), 0, 'no "Add version" section without ai:prompt:write');
      assert.equal(await page.getByRole('button', { name: 'Review change' }).count(), 0, 'no "Review change" button without ai:prompt:write');
      await visible(section(page, 'Labels'), 'the "Labels" section (read-only)');
      assert.equal(await page.getByRole('button', { name: 'Create label' }).count(), 0, 'no "Create label" button without ai:prompt:write');
      const weight = section(page, 'Traffic').getByLabel('Weight of 1.0.0 (%)', { exact: true });
      assert.ok(await weight.isDisabled(), 'the weights cannot be edited without ai:prompt:write');
      await screenshot(page, '10-prompt-read-only');
      await checkAccessibility(page, 'prompt (read-only)');
    }
    // The API keys page, reached by its address, says why it shows nothing.
    await page.evaluate(() => { location.hash = '#/api-keys'; });
    await heading1(page, 'API keys');
    await visible(page.getByText('Your token lacks the admin scope, so the API keys are hidden.'), 'why the API keys page is empty');
    assert.equal(await page.getByRole('button', { name: 'Create key' }).count(), 0, 'no "Create key" form without admin');
    checkNoPageErrors();
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Templates, the render preview and labels (issue 19), on a prompt of their own

test('templates: edit a template, save it, preview it with sample variables; move a label with a confirmation', LIMIT, async () => {
  // Setup through the API: a templated 1.0.0 (schema with a default and an enum, two template
  // messages, an escaped \{{) and a plain edit of it as 1.1.0.
  const name = `console_templates_${Date.now().toString(36)}`;
  const system = 'You are the support agent of {{company}}. The customer {{ customer_name }} is on the {{tier}} plan. Quote \\{{ticket}} literally.';
  const schema = {
    type: 'object',
    properties: {
      company: { type: 'string', default: 'Acme' },
      customer_name: { type: 'string', maxLength: 40 },
      tier: { enum: ['gold', 'silver'], default: 'silver' },
    },
    required: ['customer_name'],
  };
  let r = await api('POST', `${GW}/prompts`, {
    name,
    modelEndpointRef: 'builtin/echo',
    systemPrompt: system,
    temperature: 0.2,
    safetyGuardrails: { contentFiltering: [], maxTokens: 500 },
    templateMessages: [
      { role: 'user', content: 'Hello, I am {{customer_name}}.' },
      { role: 'assistant', content: 'Hi {{customer_name}}, how can I help?' },
    ],
    variablesSchema: schema,
    version: '1.0.0',
  });
  assert.equal(r.status, 201, `creating the templated prompt: ${JSON.stringify(r.body)}`);
  const id = r.body.id;
  r = await api('PUT', `${GW}/prompts/${id}`, { version: '1.1.0', systemPrompt: `${system} Answer briefly.` });
  assert.equal(r.status, 200, `adding 1.1.0: ${JSON.stringify(r.body)}`);
  assert.deepEqual(r.body.labels, {}, 'no labels yet');

  const { context, page } = await openConsole('templates');
  try {
    await signIn(page, ADMIN_ID, ADMIN_SECRET);
    await page.getByLabel('Search prompts', { exact: true }).fill(name);
    await (await visible(page.locator('main').getByRole('link', { name, exact: true }), `the prompt ${name} in the list`)).click();
    await heading1(page, name);
    const labels = section(page, 'Labels');
    await visible(labels.getByText('No labels yet.'), '"No labels yet." in the Labels section');

    // --- The version form: a new placeholder in a template message is listed and highlighted.
    const add = section(page, 'Add version');
    await visible(add, 'the "Add version" section');
    assert.equal(await add.getByLabel('Version', { exact: true }).inputValue(), '1.2.0', 'the next minor version is proposed');
    const systemField = add.getByLabel('System prompt', { exact: true });
    assert.equal(await systemField.inputValue(), `${system} Answer briefly.`, 'the form starts from the newest version');
    for (const p of ['{{company}}', '{{customer_name}}', '{{tier}}']) {
      await visible(add.locator('.placeholders code', { hasText: p }).first(), `the system prompt's placeholder ${p} listed`);
    }
    // \{{ticket}} is a literal, not a placeholder.
    assert.equal(await add.locator('.placeholders code', { hasText: '{{ticket}}' }).count(), 0, '\\{{ticket}} is not listed as a placeholder');
    await visible(add.getByText('\\{{ writes a literal {{ (not a placeholder).', { exact: false }), 'the note that \\{{ is a literal');

    const message1 = add.getByLabel('Content of message 1', { exact: true });
    assert.equal(await message1.inputValue(), 'Hello, I am {{customer_name}}.');
    assert.equal(await add.getByLabel('Role of message 2', { exact: true }).inputValue(), 'assistant');
    await message1.fill('Hello, I am {{customer_name}}. My order is {{ order_id }}.');
    const orderListed = add.locator('.placeholders code', { hasText: '{{order_id}}' });
    await visible(orderListed, 'the new placeholder {{order_id}} listed under its field');
    const describedBy = (await message1.getAttribute('aria-describedby')) || '';
    const listId = await orderListed.first().evaluate((el) => el.closest('.placeholders').id);
    assert.ok(describedBy.split(/\s+/).includes(listId), `the placeholder list describes its field (aria-describedby="${describedBy}", list ${listId})`);
    await visible(add.locator('.template-view mark', { hasText: '{{ order_id }}' }), 'the new placeholder highlighted in the copy of the text');
    await visible(add.getByText(/Not declared in the schema’s "properties": order_id/), 'the warning that order_id is not in the schema');

    // Turns: add an assistant turn, add a user turn, remove it again.
    await add.getByRole('button', { name: 'Add assistant message', exact: true }).click();
    const message3 = add.getByLabel('Content of message 3', { exact: true });
    assert.ok(await message3.evaluate((el) => el === document.activeElement), 'the new turn\'s content takes the focus');
    assert.equal(await add.getByLabel('Role of message 3', { exact: true }).inputValue(), 'assistant');
    await message3.fill('Order {{order_id}} noted.');
    await add.getByRole('button', { name: 'Add user message', exact: true }).click();
    await visible(add.getByLabel('Content of message 4', { exact: true }), 'a fourth turn');
    await add.getByRole('button', { name: 'Remove message 4', exact: true }).click();
    assert.equal(await add.getByLabel('Content of message 4', { exact: true }).count(), 0, 'the fourth turn is removed');

    // The schema editor: not JSON is a clear error on the field; a fixed schema clears it.
    const schemaField = add.getByLabel('Variables schema (JSON)', { exact: true });
    const newSchema = structuredClone(schema);
    newSchema.properties.order_id = { type: 'string', pattern: '^[0-9]+$' };
    await schemaField.fill('{"type": "object", "properties": {');
    const schemaError = await visible(add.locator('.field-error', { hasText: 'not JSON' }), 'the "not JSON" error of the schema');
    assert.equal(await schemaField.getAttribute('aria-invalid'), 'true', 'the schema field is marked invalid');
    const errorId = await schemaError.getAttribute('id');
    assert.ok(((await schemaField.getAttribute('aria-describedby')) || '').split(/\s+/).includes(errorId), 'the error describes the schema field');
    await add.getByRole('button', { name: 'Add version', exact: true }).click();
    await visible(add.getByRole('alert').filter({ hasText: 'not JSON' }), 'the alert refusing to save a schema that is not JSON');
    assert.ok(await schemaField.evaluate((el) => el === document.activeElement), 'the schema field takes the focus');
    r = await api('GET', `${GW}/prompts/${id}/versions/1.2.0`);
    assert.equal(r.status, 404, 'nothing was saved while the schema is not JSON');
    await screenshot(page, '11-version-form-template');
    await checkAccessibility(page, 'version form (templates, schema error)');
    await schemaField.fill(JSON.stringify(newSchema, null, 2));
    await eventually('the schema error to go away', async () => (await add.locator('.field-error', { hasText: 'not JSON' }).count()) === 0);
    assert.equal(await add.getByText(/Not declared in the schema/).count(), 0, 'order_id is declared now');

    await add.getByRole('button', { name: 'Add version', exact: true }).click();
    const versions = section(page, 'Versions');
    await visible(versionCell(versions, '1.2.0'), 'version 1.2.0 in the versions table after "Add version"');
    r = await api('GET', `${GW}/prompts/${id}/versions/1.2.0`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.templateMessages, [
      { role: 'user', content: 'Hello, I am {{customer_name}}. My order is {{ order_id }}.' },
      { role: 'assistant', content: 'Hi {{customer_name}}, how can I help?' },
      { role: 'assistant', content: 'Order {{order_id}} noted.' },
    ]);
    assert.deepEqual(r.body.variablesSchema.properties.order_id, newSchema.properties.order_id);
    assert.ok(r.body.variables.some((v) => v.name === 'order_id' && !v.required), `order_id is an optional variable: ${JSON.stringify(r.body.variables)}`);

    // --- The preview: sample variables, the rendered texts and their token counts.
    const preview = section(page, 'Preview');
    await versions.getByRole('button', { name: 'Preview 1.2.0', exact: true }).click();
    assert.equal(await preview.getByLabel('Version to preview', { exact: true }).inputValue(), '1.2.0');
    const customer = preview.getByLabel('customer_name', { exact: true });
    assert.ok(await customer.evaluate((el) => el === document.activeElement), '"Preview 1.2.0" moves the focus to the first variable');
    for (const v of ['company', 'tier', 'order_id']) {
      await visible(preview.getByLabel(v, { exact: true }), `an input for the variable ${v}`);
    }
    await customer.fill('Jane');
    await preview.getByLabel('order_id', { exact: true }).fill('12345');
    const output = page.locator('#preview-output');
    const expected = 'You are the support agent of Acme. The customer Jane is on the silver plan. Quote {{ticket}} literally. Answer briefly.';
    await eventually('the rendered system prompt (defaults applied, the escape resolved)', async () =>
      (await output.locator('pre').first().innerText()).trim() === expected);
    await visible(output.getByText('Hello, I am Jane. My order is 12345.', { exact: true }), 'the rendered first template message');
    await visible(output.getByText('Order 12345 noted.', { exact: true }), 'the rendered third template message');
    const shownTokens = (await page.locator('#preview-system-tokens').innerText()).trim();
    const m = shownTokens.match(/^(\d+) \/ 500 tokens \(([^)]+)\)$/);
    assert.ok(m, `the system prompt's count against its budget, got "${shownTokens}"`);
    const rendered = await api('POST', `${GW}/prompts/${id}/render`, { version: '1.2.0', variables: { customer_name: 'Jane', order_id: '12345' } });
    assert.equal(rendered.status, 200, JSON.stringify(rendered.body));
    assert.equal(Number(m[1]), rendered.body.systemPromptTokens, 'the preview shows the gateway\'s count');
    assert.equal(m[2], rendered.body.tokenizer);
    const firstMessage = rendered.body.templateMessages[0];
    await visible(output.getByText(`Message 1, user: ${firstMessage.tokens} tokens`, { exact: true }), 'the first message\'s token count');
    assert.match(await page.locator('#preview-status').innerText(), /^Rendered 1\.2\.0/, '#preview-status says what was rendered');

    // A wrong value: the API's variables.tier error appears next to the tier input.
    const tier = preview.getByLabel('tier', { exact: true });
    await tier.fill('platinum');
    await eventually('the tier input to be marked invalid', async () => (await tier.getAttribute('aria-invalid')) === 'true');
    const tierError = preview.locator('.field-error').first();
    const tierErrorText = (await tierError.innerText()).trim();
    assert.ok(tierErrorText.length > 0, 'the tier error says something');
    assert.ok(((await tier.getAttribute('aria-describedby')) || '').split(/\s+/).includes(await tierError.getAttribute('id')), 'the error describes the tier input');
    assert.equal(await preview.getByLabel('customer_name', { exact: true }).getAttribute('aria-invalid'), null, 'only the wrong variable is marked');
    assert.match(await page.locator('#preview-status').innerText(), /^Not rendered: tier: /);
    const refused = await api('POST', `${GW}/prompts/${id}/render`, { version: '1.2.0', variables: { customer_name: 'Jane', tier: 'platinum' } });
    assert.equal(refused.status, 400);
    assert.ok(JSON.stringify(refused.body).includes('variables.tier'), `the API names variables.tier: ${JSON.stringify(refused.body)}`);
    await screenshot(page, '12-preview-variables-error');
    await checkAccessibility(page, 'render preview (variables error)');
    await tier.fill('gold');
    await eventually('the preview to render the gold plan', async () => (await output.innerText()).includes('on the gold plan'));
    assert.equal(await tier.getAttribute('aria-invalid'), null, 'the tier error is gone');
    await screenshot(page, '13-preview');
    await checkAccessibility(page, 'render preview');

    // --- The diff covers the template messages and the schema.
    const compare = section(page, 'Compare versions');
    await compare.getByLabel('Left version', { exact: true }).selectOption('1.1.0');
    await compare.getByLabel('Right version', { exact: true }).selectOption('1.2.0');
    await visible(compare.getByRole('table', { name: /^Template messages: 1\.1\.0 → 1\.2\.0/ }), 'the template messages diff');
    await visible(compare.getByRole('table', { name: /^Variables schema: 1\.1\.0 → 1\.2\.0/ }), 'the variables schema diff');
    await visible(compare.locator('ins', { hasText: 'Order {{order_id}} noted.' }), 'the added turn marked as added');
    await visible(compare.locator('ins', { hasText: 'order_id' }), 'the added schema property marked as added');

    // --- Labels: create production on 1.0.0, move it to 1.1.0 through the confirmation.
    await labels.getByLabel('Label name', { exact: true }).fill('production');
    await labels.getByLabel('Label version', { exact: true }).selectOption('1.0.0');
    await labels.getByRole('button', { name: 'Create label', exact: true }).click();
    const row = (label) => section(page, 'Labels').locator('tbody tr').filter({ has: page.getByRole('rowheader', { name: label, exact: true }) });
    await eventually('the production row to show 1.0.0', async () => (await row('production').locator('td').first().innerText()).trim() === '1.0.0');
    await visible(labels.getByText('Created the label production on 1.0.0.'), 'the notice of the new label');
    r = await api('GET', `${GW}/prompts/${id}`);
    assert.deepEqual(r.body.labels, { production: '1.0.0' }, 'the server has the label');

    await labels.getByLabel('Move production to', { exact: true }).selectOption('1.1.0');
    const moveButton = labels.getByRole('button', { name: 'Move production', exact: true });
    await moveButton.click();
    let dialog = await visible(page.getByRole('dialog'), 'the label move confirmation');
    const question = (await dialog.getByRole('heading').innerText()).trim();
    assert.equal(question, 'Move production from 1.0.0 to 1.1.0?', 'the dialog names the old and the new version');
    assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)), 'the dialog holds the focus');
    await screenshot(page, '14-label-move-dialog');
    await checkAccessibility(page, 'label move dialog');
    // Cancel writes nothing.
    await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
    await eventually('the dialog to close', async () => (await page.getByRole('dialog').count()) === 0);
    assert.ok(await moveButton.evaluate((el) => el === document.activeElement), 'Cancel gives the focus back to the button');
    r = await api('GET', `${GW}/prompts/${id}`);
    assert.equal(r.body.labels.production, '1.0.0', 'Cancel moved nothing');
    await moveButton.click();
    dialog = await visible(page.getByRole('dialog'), 'the label move confirmation (again)');
    await dialog.getByRole('button', { name: 'Move label', exact: true }).click();
    await eventually('the server to move production to 1.1.0', async () => {
      r = await api('GET', `${GW}/prompts/${id}`);
      return r.body.labels && r.body.labels.production === '1.1.0';
    });
    await visible(labels.getByText('Moved production from 1.0.0 to 1.1.0.'), 'the notice of the move');
    await eventually('the production row to show 1.1.0', async () => (await row('production').locator('td').first().innerText()).trim() === '1.1.0');
    const audit = await api('GET', `${GW}/audit-logs?promptId=${id}&action=LABEL_MOVED`);
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    const moved = audit.body.entities.find((e) => e.details && e.details.toVersion === '1.1.0');
    assert.ok(moved && moved.details.fromVersion === '1.0.0' && moved.details.label === 'production', `a LABEL_MOVED entry 1.0.0 → 1.1.0: ${JSON.stringify(audit.body.entities.map((e) => e.details))}`);

    // Delete a label through its confirmation.
    await labels.getByLabel('Label name', { exact: true }).fill('staging');
    await labels.getByLabel('Label version', { exact: true }).selectOption('1.2.0');
    await labels.getByRole('button', { name: 'Create label', exact: true }).click();
    await visible(row('staging'), 'the staging row');
    await labels.getByRole('button', { name: 'Delete staging', exact: true }).click();
    dialog = await visible(page.getByRole('dialog'), 'the label delete confirmation');
    assert.equal((await dialog.getByRole('heading').innerText()).trim(), 'Delete the label staging?');
    await dialog.getByRole('button', { name: 'Delete label', exact: true }).click();
    await eventually('the server to delete staging', async () => {
      r = await api('GET', `${GW}/prompts/${id}`);
      return r.body.labels && !('staging' in r.body.labels) && r.body.labels.production === '1.1.0';
    });
    // The delete re-renders the whole page (the Labels section is gone while it loads): wait for
    // the new page's notice, so that the change made below through the API comes after the page
    // has read the prompt — else the page holds the new ETag and the move below is not stale.
    await visible(labels.getByText(/^Deleted the label staging/), 'the notice of the deleted label (the page reloaded)');
    await eventually('the staging row to go', async () => (await row('staging').count()) === 0);

    // A change made elsewhere since the page loaded: the move is refused with 412, shown as
    // "the prompt changed", and "Reload prompt" shows the other change.
    r = await api('PUT', `${GW}/prompts/${id}/labels/canary`, { version: '1.0.0' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await labels.getByLabel('Move production to', { exact: true }).selectOption('1.2.0');
    await labels.getByRole('button', { name: 'Move production', exact: true }).click();
    dialog = await visible(page.getByRole('dialog'), 'the label move confirmation (stale page)');
    assert.equal((await dialog.getByRole('heading').innerText()).trim(), 'Move production from 1.1.0 to 1.2.0?');
    await dialog.getByRole('button', { name: 'Move label', exact: true }).click();
    const stale = await visible(labels.getByRole('alert'), 'the 412 alert');
    assert.match(await stale.innerText(), /prompt changed/);
    r = await api('GET', `${GW}/prompts/${id}`);
    assert.equal(r.body.labels.production, '1.1.0', 'the stale move changed nothing');
    await stale.getByRole('button', { name: 'Reload prompt', exact: true }).click();
    await visible(row('canary'), 'the canary label after "Reload prompt"');
    await visible(versionCell(section(page, 'Versions'), '1.1.0'), 'the versions table after the reload');
    await screenshot(page, '15-labels');
    await checkAccessibility(page, 'prompt (labels)');

    // --- The performance filter by label.
    for (const [label, i] of [['production', 1], [undefined, 2]]) {
      const inv = await api('POST', `${GW}/invocations`, {
        promptId: id,
        userInput: `Where is my order ${i}?`,
        sessionId: `templates-${i}`,
        variables: { customer_name: 'Jane' },
        ...(label ? { label } : {}),
      });
      assert.equal(inv.status, 200, `invocation ${i}: ${JSON.stringify(inv.body)}`);
      if (label) assert.equal(inv.body.version, '1.1.0', 'the label serves 1.1.0');
    }
    const perf = section(page, 'Performance');
    const table = perf.getByRole('table', { name: 'Per-version summary' });
    const total = async () => {
      await perf.getByRole('button', { name: 'Refresh', exact: true }).click();
      await eventually('Refresh to finish', async () => perf.getByRole('button', { name: 'Refresh', exact: true }).isEnabled());
      if (!(await table.count())) return -1;
      const rows = await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.innerText.trim())));
      return rows.reduce((sum, cells) => sum + Number(cells[1] || 0), 0);
    };
    await eventually('both invocations in the Performance table', async () => (await total()) === 2, { timeout: TELEMETRY_WAIT_MS, interval: 500 });
    await perf.getByLabel('Label', { exact: true }).selectOption('production');
    await eventually('only the labelled invocation with the production filter', async () => (await total()) === 1, { timeout: TELEMETRY_WAIT_MS, interval: 500 });
    checkNoPageErrors();
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Tools and structured output (issue 20), on a prompt of its own

/** The console's wording of a schema-valid rate ("0.0% (95% CI 0.0% to 49.0%; 0 of 4)"). */
function schemaValidText(rate) {
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  return `${pct(rate.rate)} (95% CI ${pct(rate.ci95[0])} to ${pct(rate.ci95[1])}; ${rate.valid} of ${rate.count})`;
}

test('tools: edit tools and a JSON schema output, the gateway\'s error by its field; the schema-valid rate with its interval', LIMIT, async () => {
  const name = `console_tools_${Date.now().toString(36)}`;
  let r = await api('POST', `${GW}/prompts`, {
    name,
    modelEndpointRef: 'builtin/echo',
    systemPrompt: 'You are the order desk of Acme. Look orders up before answering.',
    temperature: 0.2,
    safetyGuardrails: { contentFiltering: [], maxTokens: 1000 },
    version: '1.0.0',
  });
  assert.equal(r.status, 201, `creating the prompt: ${JSON.stringify(r.body)}`);
  const id = r.body.id;
  assert.equal(r.body.tools, undefined, '1.0.0 has no tools');

  const lookup = {
    type: 'function',
    function: {
      name: 'lookup_order',
      description: 'Looks an order up by its id.',
      parameters: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] },
      strict: true,
    },
  };
  const cancel = structuredClone(lookup);
  cancel.function.description = 'Cancels an order.';
  const outputSchema = { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] };

  const { context, page } = await openConsole('tools');
  try {
    await signIn(page, ADMIN_ID, ADMIN_SECRET);
    await page.getByLabel('Search prompts', { exact: true }).fill(name);
    await (await visible(page.locator('main').getByRole('link', { name, exact: true }), `the prompt ${name} in the list`)).click();
    await heading1(page, name);
    const versions = section(page, 'Versions');
    await visible(versions.getByRole('columnheader', { name: 'Tools and output', exact: true }), 'the "Tools and output" column');

    // --- The editor: the helper adds a function tool; text that is not JSON is an error at once.
    const add = section(page, 'Add version');
    await visible(add, 'the "Add version" section');
    assert.equal(await add.getByLabel('Version', { exact: true }).inputValue(), '1.1.0');
    const toolsField = add.getByLabel('Tools (JSON)', { exact: true });
    assert.equal(await toolsField.inputValue(), '', 'no tools yet');
    await add.getByRole('button', { name: 'Add function tool', exact: true }).click();
    const added = JSON.parse(await toolsField.inputValue());
    assert.equal(added.length, 1, 'the helper adds one tool');
    assert.equal(added[0].type, 'function');
    assert.equal(added[0].function.name, 'new_tool');
    assert.equal(added[0].function.parameters.type, 'object');
    assert.ok(await toolsField.evaluate((el) => el === document.activeElement), 'the tools field takes the focus');
    await visible(add.getByText('1 tool: new_tool.', { exact: true }), 'the tools summary');
    await toolsField.fill('[{"type": "function",');
    await visible(add.locator('.field-error', { hasText: 'The tools are not JSON' }), 'the "not JSON" error of the tools');
    assert.equal(await toolsField.getAttribute('aria-invalid'), 'true');

    // Two tools with the same name, a choice, a json_schema output.
    await toolsField.fill(JSON.stringify([lookup, cancel], null, 2));
    await eventually('the "not JSON" error to go', async () => (await add.locator('.field-error', { hasText: 'not JSON' }).count()) === 0);
    const choice = add.getByLabel('Tool choice', { exact: true });
    const choices = await choice.locator('option').allInnerTexts();
    assert.ok(choices.includes('lookup_order (always this tool)'), `a defined tool can be chosen: ${JSON.stringify(choices)}`);
    assert.ok(['auto (the model decides)', 'none (no tool calls)', 'required (some tool)'].every((c) => choices.includes(c)), JSON.stringify(choices));
    await choice.selectOption('auto');
    const format = add.getByLabel('Response format', { exact: true });
    assert.equal(await add.getByLabel('Schema name', { exact: true }).isVisible(), false, 'the schema fields are hidden until json_schema is chosen');
    await format.selectOption('json_schema');
    await add.getByLabel('Schema name', { exact: true }).fill('order_reply');
    await add.getByLabel('Output schema (JSON)', { exact: true }).fill(JSON.stringify(outputSchema, null, 2));
    assert.ok(await add.getByLabel(/^Strict/).isChecked(), 'strict is on by default');

    await add.getByRole('button', { name: 'Add version', exact: true }).click();
    const toolsError = await visible(add.locator('.field-error', { hasText: 'tools[1].function.name' }), 'the gateway\'s duplicate-name error under the tools');
    const toolsErrorText = (await toolsError.innerText()).trim();
    assert.match(toolsErrorText, /lookup_order/, `the error names the tool: ${toolsErrorText}`);
    assert.equal(await toolsField.getAttribute('aria-invalid'), 'true', 'the tools field is marked invalid');
    assert.ok(((await toolsField.getAttribute('aria-describedby')) || '').split(/\s+/).includes(await toolsError.getAttribute('id')), 'the error describes the tools field');
    await visible(add.getByRole('alert'), 'the alert of the refused version');
    assert.equal(await format.getAttribute('aria-invalid'), null, 'only the tools are marked');
    // The API names the same field for the same definitions.
    r = await api('PUT', `${GW}/prompts/${id}`, { version: '1.1.0', tools: [lookup, cancel] });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.ok(JSON.stringify(r.body).includes('"fieldName":"tools[1].function.name"'), `the API names tools[1].function.name: ${JSON.stringify(r.body)}`);
    r = await api('GET', `${GW}/prompts/${id}/versions/1.1.0`);
    assert.equal(r.status, 404, 'nothing was saved');
    await screenshot(page, '16-version-form-tools-error');
    await checkAccessibility(page, 'version form (tools, duplicate name)');

    // Fixed: the error goes as the field is edited, and the version saves.
    cancel.function.name = 'cancel_order';
    await toolsField.fill(JSON.stringify([lookup, cancel], null, 2));
    await eventually('the tools error to go', async () => (await toolsField.getAttribute('aria-invalid')) === null);
    await visible(add.getByText('2 tools: lookup_order, cancel_order.', { exact: true }), 'the tools summary');
    await add.getByRole('button', { name: 'Add version', exact: true }).click();
    await visible(versionCell(versions, '1.1.0'), 'version 1.1.0 in the versions table');
    r = await api('GET', `${GW}/prompts/${id}/versions/1.1.0`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.tools, [lookup, cancel], 'the server has the tools typed');
    assert.equal(r.body.toolChoice, 'auto');
    assert.deepEqual(r.body.responseFormat, { type: 'json_schema', json_schema: { name: 'order_reply', schema: outputSchema, strict: true } });
    const v11 = r.body;

    // Read-only in the versions table; the new form (prefilled from 1.1.0) counts the tool
    // definitions as the gateway does.
    const toolsColumn = async () => {
      const headers = (await versions.locator('thead th').allInnerTexts()).map((t) => t.trim());
      const col = headers.indexOf('Tools and output');
      const rows = await versions.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.innerText.trim())));
      return Object.fromEntries(rows.map((cells) => [cells[0], cells[col]]));
    };
    const toolsShown = await toolsColumn();
    assert.equal(toolsShown['1.1.0'], 'Tools: lookup_order, cancel_order; choice: auto; output: json_schema order_reply (strict)', 'the tools of 1.1.0 in its row');
    assert.equal(toolsShown['1.0.0'], '—', '1.0.0 has no tools');
    const add2 = section(page, 'Add version');
    assert.equal(await add2.getByLabel('Version', { exact: true }).inputValue(), '1.2.0');
    assert.deepEqual(JSON.parse(await add2.getByLabel('Tools (JSON)', { exact: true }).inputValue()), [lookup, cancel], 'the form starts from 1.1.0\'s tools');
    assert.equal(await add2.getByLabel('Response format', { exact: true }).inputValue(), 'json_schema');
    await eventually(`the live count to equal 1.1.0's systemPromptTokens (${v11.systemPromptTokens}, tools included)`, async () => {
      const t = (await page.locator('#new-version-token-count').innerText()).trim();
      return t.startsWith(`${v11.systemPromptTokens} / 1000 tokens`) && /for tool definitions/.test(t);
    });

    // --- The diff shows the tools and the format.
    const compare = section(page, 'Compare versions');
    await compare.getByLabel('Left version', { exact: true }).selectOption('1.0.0');
    await compare.getByLabel('Right version', { exact: true }).selectOption('1.1.0');
    await visible(compare.getByRole('table', { name: /^Tools: 1\.0\.0 → 1\.1\.0/ }), 'the tools diff');
    await visible(compare.getByRole('table', { name: /^Response format: 1\.0\.0 → 1\.1\.0/ }), 'the response format diff');
    await visible(compare.locator('ins', { hasText: 'lookup_order' }), 'the added tool marked as added');
    await visible(compare.locator('ins', { hasText: 'order_reply' }), 'the added schema name marked as added');
    for (const setting of ['Tools', 'Tool choice', 'Response format']) {
      await visible(compare.getByRole('rowheader', { name: `${setting} (differs)`, exact: true }), `the "${setting}" setting marked as differing`);
    }

    // --- Invocations through the API: tool calls and outputs checked against the schema.
    r = await api('PUT', `${GW}/prompts/${id}`, { version: '1.2.0', responseFormat: { type: 'json_object' } });
    assert.equal(r.status, 200, `adding 1.2.0 (json_object): ${JSON.stringify(r.body)}`);
    const invoke = async (version, userInput, i) => {
      const inv = await api('POST', `${GW}/invocations`, { promptId: id, version, userInput, sessionId: `tools-${version}-${i}` });
      assert.equal(inv.status, 200, `invocation ${version} ${i}: ${JSON.stringify(inv.body)}`);
      return inv.body;
    };
    const called = await invoke('1.1.0', 'call lookup_order {"orderId": "42"}', 0);
    assert.equal(called.finishReason, 'tool_calls', JSON.stringify(called));
    assert.equal(called.toolCalls.length, 1);
    assert.equal(called.toolCalls[0].name, 'lookup_order');
    assert.deepEqual(JSON.parse(called.toolCalls[0].arguments), { orderId: '42' });
    for (let i = 1; i <= 4; i++) {
      const answer = await invoke('1.1.0', `Where is order ${i}?`, i);
      assert.equal(answer.parsed, null, `the offline output is not JSON: ${JSON.stringify(answer)}`);
      assert.ok(answer.outputErrors.length > 0, 'with outputErrors');
    }
    for (let i = 1; i <= 3; i++) await invoke('1.2.0', `Where is order ${i}?`, i);
    for (let i = 1; i <= 2; i++) await invoke('1.0.0', `Where is order ${i}?`, i);

    // The telemetry records them (written in batches): schemaValid and toolCallCount.
    const records = await eventually('the 10 invocations in the telemetry', async () => {
      const t = await api('GET', `${GW}/telemetry?promptId=${id}&pageSize=50`);
      return t.status === 200 && t.body.entities.length === 10 ? t.body.entities : false;
    }, { timeout: TELEMETRY_WAIT_MS, interval: 500 });
    assert.ok(records.filter((e) => e.version === '1.0.0').every((e) => e.schemaValid === undefined), 'no schema check without a JSON format');
    assert.ok(records.filter((e) => e.version === '1.1.0' && !e.toolCallCount).every((e) => e.schemaValid === false), JSON.stringify(records));
    assert.equal(records.filter((e) => e.toolCallCount === 1).length, 1, 'one invocation called a tool');

    const summary = async (compareTo) => {
      const s = await api('GET', `${GW}/telemetry/summary?promptId=${id}&compareTo=${compareTo}`);
      assert.equal(s.status, 200, JSON.stringify(s.body));
      return Object.fromEntries(s.body.entities.map((e) => [e.version, e]));
    };
    let byVersion = await summary('1.0.0');
    assert.equal(byVersion['1.0.0'].schemaValidRate, undefined, '1.0.0 has no schema-valid rate');
    const rate11 = byVersion['1.1.0'].schemaValidRate;
    const rate12 = byVersion['1.2.0'].schemaValidRate;
    assert.ok(rate11 && rate11.count >= 4 && rate11.valid === 0, JSON.stringify(byVersion['1.1.0']));
    assert.ok(rate12 && rate12.count === 3 && rate12.valid === 0, JSON.stringify(byVersion['1.2.0']));

    // --- The Performance section: the rate and its interval per version, the chart.
    const perf = section(page, 'Performance');
    const table = perf.getByRole('table', { name: 'Per-version summary' });
    const refresh = perf.getByRole('button', { name: 'Refresh', exact: true });
    const readTable = async () => {
      await refresh.click();
      await eventually('Refresh to finish', async () => refresh.isEnabled());
      if (!(await table.count())) return null;
      const headers = (await table.locator('thead th').allInnerTexts()).map((t) => t.trim());
      const rows = await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.innerText.trim())));
      return { headers, rows: Object.fromEntries(rows.map((cells) => [cells[0], cells])) };
    };
    const shown = await eventually('the schema-valid rates in the per-version table', async () => {
      const t = await readTable();
      return t && t.headers.includes('Schema valid') && t.rows['1.1.0'] && t.rows['1.2.0'] ? t : false;
    }, { timeout: TELEMETRY_WAIT_MS, interval: 500 });
    const col = shown.headers.indexOf('Schema valid');
    assert.equal(shown.rows['1.0.0'][col], 'not checked');
    assert.equal(shown.rows['1.1.0'][col], schemaValidText(rate11), 'the rate of 1.1.0 with its interval, as the summary gives it');
    assert.equal(shown.rows['1.2.0'][col], schemaValidText(rate12));
    const chartLabel = await perf.locator('svg[role="img"][aria-label^="Schema-valid rate by version"]').getAttribute('aria-label');
    assert.ok(chartLabel.includes(`1.1.0 ${schemaValidText(rate11)}`), `the chart states 1.1.0's rate and interval: ${chartLabel}`);
    assert.ok(chartLabel.includes('1.0.0 not checked'), chartLabel);
    await screenshot(page, '17-schema-valid-rate');
    await checkAccessibility(page, 'prompt (tools, schema-valid rate)');

    // Against 1.1.0, 1.2.0's schema-valid difference is in the forest plot and the verdict.
    byVersion = await summary('1.1.0');
    const diff = byVersion['1.2.0'].comparison && byVersion['1.2.0'].comparison.schemaValidRateDiff;
    assert.ok(diff && Array.isArray(diff.ci95), `the summary compares 1.2.0's schema-valid rate with 1.1.0's: ${JSON.stringify(byVersion['1.2.0'])}`);
    assert.equal(diff.significant, false, 'two versions that never produce JSON do not differ significantly');
    await perf.getByLabel('Compare against', { exact: true }).selectOption('1.1.0');
    const ciLabel = await eventually('the forest plot to show 1.2.0\'s schema-valid difference', async () => {
      const l = await perf.locator('svg[role="img"][aria-label^="Difference from the baseline"]').getAttribute('aria-label');
      return l && l.includes('1.2.0 schema valid') ? l : false;
    });
    const pts = (x) => (x * 100).toFixed(2);
    assert.ok(ciLabel.includes(`1.2.0 schema valid ${pts(diff.estimate)} pts (95% CI ${pts(diff.ci95[0])} to ${pts(diff.ci95[1])}, not significant)`), ciLabel);
    // The verdict names only significant differences; latency may differ by chance, so only
    // the schema-valid part is pinned: no claim about it for 1.2.0.
    const verdict = (await page.locator('#verdict').innerText()).trim();
    assert.match(verdict, /1\.2\.0/, `the verdict speaks of 1.2.0: ${verdict}`);
    assert.doesNotMatch(verdict, /significantly (lower|higher) schema-valid rate/, verdict);
    checkNoPageErrors();
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------------------------------------
// API keys (issue 21): the admin's page

test('api keys: create a key with one scope in the form, shown once; revoke it through the dialog; the server refuses it', LIMIT, async () => {
  const svc = await createClient('console-e2e-key-service', ['ai:prompt:read', 'ai:telemetry:read']);
  const KEY_NAME = 'e2e-reader';
  const { context, page } = await openConsole('api-keys');
  try {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(BASE).origin });
    await signIn(page, ADMIN_ID, ADMIN_SECRET);
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'API keys', exact: true }).click();
    await heading1(page, 'API keys');
    assert.equal(await nav.getByRole('link', { name: 'API keys', exact: true }).getAttribute('aria-current'), 'page');
    const create = section(page, 'Create a key');
    const keysSection = section(page, 'Keys');
    await visible(keysSection.getByText('No API keys yet.'), 'the empty list of keys');

    // The form: the client's scopes, all checked by default; leave one.
    const client = create.getByLabel('Client', { exact: true });
    await eventually('the new client to be offered', async () => (await client.locator(`option[value="${svc.id}"]`).count()) === 1);
    await client.selectOption(svc.id);
    const scopes = create.getByRole('group', { name: 'Scopes' });
    const readScope = scopes.getByLabel('ai:prompt:read', { exact: true });
    const telemetryScope = scopes.getByLabel('ai:telemetry:read', { exact: true });
    assert.ok(await readScope.isChecked(), 'ai:prompt:read is checked by default');
    assert.ok(await telemetryScope.isChecked(), 'ai:telemetry:read is checked by default');
    assert.equal(await scopes.getByRole('checkbox').count(), 2, 'the client\'s two scopes, no other');
    await telemetryScope.uncheck();
    await create.getByLabel('Key name', { exact: true }).fill(KEY_NAME);

    // The gateway's error next to the field it names: an expiry in the past (400 naming expiresAt).
    await create.getByLabel('Expires', { exact: true }).selectOption('date');
    const date = create.getByLabel('Expiry date', { exact: true });
    await date.fill('2020-01-01');
    await create.getByRole('button', { name: 'Create key', exact: true }).click();
    await eventually('the expiry date to be marked invalid', async () => (await date.getAttribute('aria-invalid')) === 'true');
    const errorId = (await date.getAttribute('aria-describedby')).split(/\s+/).find((id) => id.startsWith('err-'));
    assert.ok(errorId, 'the error is in the date\'s aria-describedby');
    const errorText = (await page.locator(`#${errorId}`).innerText()).trim();
    assert.match(errorText, /expiresAt/, `the error under the date is the gateway's, naming expiresAt: ${errorText}`);
    assert.ok(await date.evaluate((el) => el === document.activeElement), 'the focus goes to the field in error');
    let r = await api('GET', '/api/v2/oauth/api-keys');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.entities.filter((k) => k.name === KEY_NAME).length, 0, 'the refused request stored no key');
    await screenshot(page, '18-api-key-field-error');
    await checkAccessibility(page, 'api keys (field error)');

    // Create it with a 90-day expiry: the key is shown once, with its use.
    await create.getByLabel('Expires', { exact: true }).selectOption('90');
    await create.getByRole('button', { name: 'Create key', exact: true }).click();
    const keyInput = await visible(create.getByLabel('API key', { exact: true }), 'the new key');
    const key = await keyInput.inputValue();
    assert.match(key, /^pgk_[A-Za-z0-9_-]{43}$/, 'a pgk_ key');
    assert.ok(await keyInput.evaluate((el) => el.readOnly), 'the key is read-only');
    assert.ok(await keyInput.evaluate((el) => el === document.activeElement), 'the focus goes to the new key');
    assert.equal(await date.getAttribute('aria-invalid'), null, 'the old error is gone');
    await visible(create.getByText('Copy the key now: it is shown only this once.'), 'the shown-once note');
    await visible(create.getByText('Authorization: Bearer <key>', { exact: true }), 'the bearer header');
    await visible(create.getByText('api_key', { exact: true }), 'the SDKs\' api_key');
    await create.getByRole('button', { name: 'Copy key', exact: true }).click();
    await visible(create.getByText('Copied.', { exact: true }), 'the copy confirmation');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key, 'the clipboard holds the key');

    // The key works, with its one scope only.
    r = await api('GET', `${GW}/prompts`, undefined, key);
    assert.equal(r.status, 200, `the key reads prompts: ${JSON.stringify(r.body)}`);
    r = await api('GET', `${GW}/telemetry?pageSize=1`, undefined, key);
    assert.equal(r.status, 403, `the key lacks ai:telemetry:read: ${JSON.stringify(r.body)}`);

    // Its row, and a listing that never holds the key.
    const row = keysSection.locator('tbody tr').filter({ has: page.getByRole('rowheader', { name: KEY_NAME, exact: true }) });
    await visible(row, `the row of ${KEY_NAME}`);
    const cells = (await row.locator('td').allInnerTexts()).map((t) => t.trim());
    assert.ok(cells[0].includes('console-e2e-key-service') && cells[0].includes(svc.id), `the client's name and id: ${cells[0]}`);
    assert.equal(cells[1], 'ai:prompt:read', 'the one scope');
    assert.equal(cells[2], 'active');
    assert.match(cells[4], /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$/, `an expiry time: ${cells[4]}`);
    assert.equal(cells[5], 'never', 'not used when the page drew it');
    r = await api('GET', '/api/v2/oauth/api-keys');
    const listed = r.body.entities.find((k) => k.name === KEY_NAME);
    assert.ok(listed && listed.clientId === svc.id && listed.scopes === 'ai:prompt:read' && listed.expiresAt && !listed.revokedAt,
      `the server has the key: ${JSON.stringify(listed)}`);
    assert.ok(!JSON.stringify(r.body).includes(key), 'the listing never holds the key');
    await screenshot(page, '19-api-key-created');
    await checkAccessibility(page, 'api keys (new key)');

    // Revoke: the dialog names the key and its client; Cancel writes nothing.
    const revokeButton = row.getByRole('button', { name: `Revoke ${KEY_NAME}`, exact: true });
    await revokeButton.click();
    let dialog = await visible(page.getByRole('dialog'), 'the revoke confirmation');
    assert.equal((await dialog.getByRole('heading').innerText()).trim(), `Revoke the key ${KEY_NAME} of console-e2e-key-service?`);
    assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)), 'the dialog holds the focus');
    await screenshot(page, '20-api-key-revoke-dialog');
    await checkAccessibility(page, 'api key revoke dialog');
    await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
    await eventually('the dialog to close', async () => (await page.getByRole('dialog').count()) === 0);
    assert.ok(await revokeButton.evaluate((el) => el === document.activeElement), 'Cancel gives the focus back to the button');
    r = await api('GET', '/api/v2/oauth/api-keys');
    assert.equal(r.body.entities.find((k) => k.id === listed.id).revokedAt, null, 'Cancel revoked nothing');
    r = await api('GET', `${GW}/prompts`, undefined, key);
    assert.equal(r.status, 200, 'the key still works after Cancel');

    await revokeButton.click();
    dialog = await visible(page.getByRole('dialog'), 'the revoke confirmation (again)');
    await dialog.getByRole('button', { name: 'Revoke key', exact: true }).click();
    await visible(keysSection.getByText(`Revoked the key ${KEY_NAME} of console-e2e-key-service.`), 'the notice of the revocation');
    await eventually('the row to show revoked', async () => (await row.locator('td').nth(2).innerText()).trim().startsWith('revoked'));
    assert.equal(await row.getByRole('button').count(), 0, 'a revoked key has no Revoke button');
    assert.equal(await create.getByLabel('API key', { exact: true }).count(), 0, 'the revoked key is taken off the page');
    r = await api('GET', '/api/v2/oauth/api-keys');
    assert.ok(r.body.entities.find((k) => k.id === listed.id).revokedAt, 'the server has the key revoked');
    r = await api('GET', `${GW}/prompts`, undefined, key);
    assert.equal(r.status, 401, `the server refuses the revoked key: ${JSON.stringify(r.body)}`);

    // Shown once: after navigating away and back, the page holds no key.
    await create.getByLabel('Key name', { exact: true }).fill('e2e-second');
    await create.getByRole('button', { name: 'Create key', exact: true }).click();
    const second = await (await visible(create.getByLabel('API key', { exact: true }), 'the second key')).inputValue();
    await nav.getByRole('link', { name: 'Prompts', exact: true }).click();
    await heading1(page, 'Prompts');
    await nav.getByRole('link', { name: 'API keys', exact: true }).click();
    await heading1(page, 'API keys');
    await visible(keysSection.locator('tbody tr').filter({ has: page.getByRole('rowheader', { name: 'e2e-second', exact: true }) }), 'the second key\'s row');
    assert.equal(await page.getByLabel('API key', { exact: true }).count(), 0, 'no key field after navigating back');
    assert.ok(!(await page.content()).includes(second), 'the page no longer holds the key');
    await screenshot(page, '21-api-keys');
    await checkAccessibility(page, 'api keys');
    checkNoPageErrors();
  } finally {
    await context.close();
  }
});
