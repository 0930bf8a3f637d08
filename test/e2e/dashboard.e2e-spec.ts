/**
 * The dashboard (GET /ui) in a real headless Chromium (Debian's chromium, driven by
 * puppeteer-core) against a real admin, a real balancer on its control plane and real grpc-js
 * backends with calls flowing, all on 127.0.0.1. Every request the page makes is recorded, and
 * every script error fails the test.
 */
import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { ADMIN_TOKEN, killAdmins, startAdmin, type AdminProcess } from '../support/admin';
import { killAll, sleep, startNode, waitFor, type BalancerProcess } from '../support/processes';
import type { EchoClient } from '../support/grpc';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the dashboard at /ui', () => {
  let admin: AdminProcess;
  let node: BalancerProcess;
  let backends: EchoBackend[];
  let browser: Browser;
  let client: EchoClient;
  let readToken: string;
  let traffic: NodeJS.Timeout;
  const requests: string[] = [];
  const problems: string[] = [];

  async function openPage(): Promise<Page> {
    const page = await browser.newPage();
    await page.setViewport({ width: 1440, height: 900 });
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (err) => problems.push(`page error: ${String(err)}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    await page.goto(`${admin.url}/ui`, { waitUntil: 'load' });
    return page;
  }

  async function signIn(page: Page, token: string): Promise<void> {
    await page.waitForSelector('#token', { visible: true });
    await page.type('#token', token);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#app-view:not([hidden])');
  }

  const backendRow = (address: string): string => `article[data-pool="echo"] tr[data-backend="${address}"]`;

  beforeAll(async () => {
    admin = await startAdmin();
    readToken = (await admin.api('POST', '/v1/tokens', { name: 'viewer', scopes: ['read'] })).body.token;
    const nodeToken = (await admin.api('POST', '/v1/tokens', { name: 'edge', scopes: ['node'] })).body.token;
    backends = await Promise.all(['b1', 'b2'].map((name) => startEchoBackend({ name })));
    const put = await admin.api('PUT', '/v1/pools/echo', { name: 'echo', match: { services: ['*'] }, algorithm: 'least_conn', backends: backends.map((b) => ({ address: b.address })) });
    expect(put.status).toBeLessThan(300);
    node = await startNode(admin.grpc, { nodeId: 'edge-1', token: nodeToken, statsIntervalMs: 500 });
    await waitFor('the node to apply the pool', async () => (await node.state()).pools.length === 1);
    client = echoClient(node.listen);
    // About 50 calls/s for the whole test (bounded by the test's own time limit).
    traffic = setInterval(() => client.Unary({ delayMs: 20 }, () => {}), 20);
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  }, 60_000);

  afterAll(async () => {
    clearInterval(traffic);
    client?.close();
    await browser?.close();
    await node?.stop();
    await admin?.stop();
    await Promise.all((backends ?? []).map((b) => b.stop()));
    killAll();
    killAdmins();
  });

  it('signs in with a token (kept in sessionStorage, never in the URL) and shows the pool, its backends and the node', async () => {
    const page = await openPage();
    expect(await page.$eval('#token', (e) => (e as HTMLInputElement).type)).toBe('password');
    expect(await page.$eval('label[for="token"]', (e) => e.textContent)).toBe('API token');
    // A wrong token is refused with a message, and not kept.
    await signInExpectingError(page, 'sbt_wrong');
    await signIn(page, ADMIN_TOKEN);
    expect(page.url()).not.toContain(ADMIN_TOKEN);
    expect(await page.evaluate(() => sessionStorage.getItem('switchboard.token'))).toBe(ADMIN_TOKEN);
    await page.waitForSelector(backendRow(backends[0]!.address));
    await page.waitForSelector(backendRow(backends[1]!.address));
    expect(await page.$eval('article[data-pool="echo"] .pool-meta', (e) => e.textContent)).toContain('algorithm least_conn');
    await page.waitForFunction(() => document.querySelector('#nodes tr[data-node="edge-1"]')?.textContent?.includes('connected'));
    // Routes are listed with their split.
    expect(await page.$eval('#routes', (e) => e.textContent)).toContain('No routes');
    const route = await admin.api('POST', '/v1/routes', { name: 'split', rules: [{ matches: [{ method: { service: 'switchboard.test.v1.Other' } }], backends: [{ pool: 'echo', weight: 3 }] }] });
    expect(route.status).toBe(201);
    await page.waitForFunction(() => document.querySelector('#routes table')?.textContent?.includes('echo 100%'), { timeout: 10_000 });
    expect((await admin.api('DELETE', '/v1/routes/split')).status).toBe(200);
    await page.close();
  }, 30_000);

  async function signInExpectingError(page: Page, token: string): Promise<void> {
    await page.type('#token', token);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => (document.getElementById('sign-in-error')?.textContent ?? '') !== '');
    expect(await page.$eval('#sign-in-error', (e) => e.textContent)).toContain('not valid');
    expect(await page.evaluate(() => sessionStorage.getItem('switchboard.token'))).toBeNull();
  }

  it('shows live figures that change while calls flow, refreshed every 2 s, with charts', async () => {
    const page = await openPage();
    await signIn(page, ADMIN_TOKEN);
    const row = backendRow(backends[0]!.address);
    const cps = async (): Promise<number> => Number(await page.$eval(`${row} td:nth-child(4)`, (e) => e.textContent));
    await page.waitForFunction((sel) => Number(document.querySelector(`${sel} td:nth-child(4)`)?.textContent) > 0, { timeout: 15_000 }, row);
    const first = await cps();
    // Refreshed every 2 s: the page's own record of when its last refreshes started.
    await sleep(7000);
    const starts = (await page.evaluate(() => document.body.dataset.refreshStarts ?? '')).split(',').map(Number);
    expect(starts.length).toBeGreaterThanOrEqual(4);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    for (const g of gaps.slice(-3)) expect(g).toBeLessThanOrEqual(2600);
    // calls/s is a live rate: it moves from refresh to refresh while traffic flows.
    await waitFor('calls/s to change', async () => (await cps()) !== first, 15_000);
    expect(await page.$eval(row, (e) => e.querySelector('.state')?.textContent)).toBe('healthy');
    expect(await page.$$eval(`${row} canvas`, (c) => c.length)).toBeGreaterThan(0);
    // The chart says its scale: the top of each line.
    expect(await page.$eval(`${row} .chart-scale`, (e) => e.textContent)).toMatch(/^top: \d+ active, \d+ calls\/s$/);
    await page.close();
  }, 40_000);

  it('drains a backend from the page after confirmation: it gets no new calls', async () => {
    const page = await openPage();
    await signIn(page, ADMIN_TOKEN);
    const target = backends[0]!;
    const row = backendRow(target.address);
    await page.waitForSelector(`${row} button.drain`);
    const before = (await admin.api('GET', '/v1/revisions?limit=1')).body.items[0].number as number;
    await page.click(`${row} button.drain`);
    await page.waitForSelector('#confirm[open]');
    // Cancel first: nothing changes.
    await page.keyboard.press('Escape');
    await sleep(300);
    expect((await admin.api('GET', '/v1/revisions?limit=1')).body.items[0].number).toBe(before);
    await page.click(`${row} button.drain`);
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    await page.waitForFunction((sel) => document.querySelector(`${sel} .state`)?.textContent === 'draining', { timeout: 10_000 }, row);
    expect(await page.$eval('#status', (e) => e.textContent)).toContain(`Draining ${target.address}`);
    await waitFor('the node to apply the drain', async () => (await node.state()).pools[0]!.backends.find((b) => b.address === target.address)!.draining);
    await sleep(300); // calls picked before the revision finish
    const calls = target.stats.calls;
    const other = backends[1]!.stats.calls;
    await sleep(1500);
    expect(target.stats.calls).toBe(calls);
    expect(backends[1]!.stats.calls).toBeGreaterThan(other + 20);
    // The README's screenshot: a drained backend, a live one, the node and the revisions.
    await page.click(`#revisions tr[data-revision] button:not(.rollback)`);
    await page.waitForSelector('.diff');
    mkdirSync('docs', { recursive: true });
    await page.screenshot({ path: 'docs/dashboard.png', fullPage: true });
    await page.close();
  }, 40_000);

  it('rolls back to a revision from the page: a new revision equal to it', async () => {
    const page = await openPage();
    await signIn(page, ADMIN_TOKEN);
    const list = (await admin.api('GET', '/v1/revisions?limit=5')).body.items as { number: number }[];
    const top = list[0]!.number;
    const target = list[1]!.number; // before the drain
    await page.waitForSelector(`#revisions tr[data-revision="${target}"] button.rollback`);
    // The diff of the drain revision names the field.
    await page.click(`#revisions tr[data-revision="${top}"] button:not(.rollback)`);
    await page.waitForSelector(`.diff[data-diff="${top}"]`);
    expect(await page.$eval(`.diff[data-diff="${top}"]`, (e) => e.textContent)).toContain('drain');
    await page.click(`#revisions tr[data-revision="${target}"] button.rollback`);
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    await page.waitForSelector(`#revisions tr[data-revision="${top + 1}"]`, { timeout: 10_000 });
    expect(await page.$eval('#status', (e) => e.textContent)).toContain(`Rolled back to revision ${target}: now revision ${top + 1}`);
    const now = (await admin.api('GET', `/v1/revisions/${top + 1}`)).body;
    const then = (await admin.api('GET', `/v1/revisions/${target}`)).body;
    expect(now.config).toEqual(then.config);
    await page.waitForFunction((sel) => document.querySelector(`${sel} .state`)?.textContent === 'healthy', { timeout: 10_000 }, backendRow(backends[0]!.address));
    await page.close();
  }, 40_000);

  it('a read-scope token sees everything but no actions, and the API refuses them anyway; sign-out forgets the token', async () => {
    const page = await openPage();
    await signIn(page, readToken);
    await page.waitForSelector(backendRow(backends[0]!.address));
    await page.waitForSelector('#revisions tr[data-revision]');
    expect(await page.$$eval('button.drain, button.rollback', (b) => b.length)).toBe(0);
    expect(await page.$eval('#who', (e) => e.textContent)).toContain('read only');
    const refused = await admin.api('PATCH', `/v1/pools/echo/backends/${encodeURIComponent(backends[0]!.address)}`, { drain: true }, { token: readToken });
    expect(refused.status).toBe(403);
    // Keyboard: the sign-out button is reachable and works with Enter.
    await page.focus('#sign-out');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#sign-in-view:not([hidden])');
    expect(await page.evaluate(() => sessionStorage.getItem('switchboard.token'))).toBeNull();
    // Nothing of the session stays in the page, hidden or not, and no refresh brings it back.
    const leftOver = (): Promise<number> => page.evaluate(() => document.querySelectorAll('#pools *, #nodes tbody tr, #revisions tbody tr').length);
    expect(await leftOver()).toBe(0);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await leftOver()).toBe(0);
    await page.close();
  }, 30_000);

  it('made no request outside the admin\'s origin, and no script error occurred', () => {
    expect(requests.length).toBeGreaterThan(10);
    const foreign = requests.filter((u) => !u.startsWith(`${admin.url}/`));
    expect(foreign).toEqual([]);
    // The one failed load is the wrong token's 401 in the first test (Chromium logs every failed request).
    const expected = 'console error: Failed to load resource: the server responded with a status of 401 (Unauthorized)';
    expect(problems.filter((p) => p === expected)).toHaveLength(1);
    expect(problems.filter((p) => p !== expected)).toEqual([]);
    // The token never travelled in a URL.
    expect(requests.filter((u) => u.includes(ADMIN_TOKEN) || u.includes(readToken))).toEqual([]);
  });
});
