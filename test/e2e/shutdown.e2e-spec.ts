/**
 * Shutdown never hangs (issue 10, defect 5): SIGTERM ends the balancer and the admin within
 * their drain timeout (plus a fixed grace) whatever holds them: a stdout that was closed, a
 * stdout nobody reads, a control-plane connection that sent only the HTTP/2 preface, an HTTP
 * request that never finishes. And `npm start`'s children die with it, even when it is killed
 * with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { unary } from '../support/grpc';
import { PREFACE, settingsFrame } from '../support/h2-frames';
import { startAdmin, killAdmins } from '../support/admin';
import { freePort, killAll, poolConfig, sleep, spawnBackend, startBalancer, waitFor } from '../support/processes';

afterAll(() => {
  killAll();
  killAdmins();
});

const said = (what: string): void => {
  process.stdout.write(`shutdown: ${what}\n`);
};

/** SIGTERM, then the milliseconds until the process exited (or `limitMs` + 1 if it did not: then it is killed). */
function termAndTime(proc: ChildProcess, limitMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(0);
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve(limitMs + 1);
    }, limitMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
    proc.kill('SIGTERM');
  });
}

function openTcp(address: string, bytes: Buffer | string): Promise<net.Socket> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(address.slice(colon + 1)), address.slice(0, colon), () => {
      socket.write(bytes);
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

describe('the balancer stops on SIGTERM', () => {
  it('with its stdout closed (EPIPE on every log line)', async () => {
    const backend = await spawnBackend('sd1');
    const lb = await startBalancer(poolConfig([backend.address]), ['--log-level', 'debug']);
    said('closing the read end of the balancer\'s stdout, then calls that log, then SIGTERM');
    lb.proc.stdout!.destroy();
    const c = echoClient(lb.listen);
    for (let i = 0; i < 20; i++) await unary(c, {});
    c.close();
    // Drain timeout 2 s (test default) + 5 s grace at most.
    expect(await termAndTime(lb.proc, 10_000)).toBeLessThan(7_500);
  }, 20_000);

  it('with its stdout a full pipe nobody reads', async () => {
    const backend = await spawnBackend('sd2');
    const lb = await startBalancer(poolConfig([backend.address]), ['--log-level', 'debug']);
    said('pausing the balancer\'s stdout, then 2,000 calls that each log a line, then SIGTERM');
    lb.proc.stdout!.pause();
    lb.proc.stdout!.removeAllListeners('data');
    const c = echoClient(lb.listen);
    for (let i = 0; i < 200; i++) await Promise.all(Array.from({ length: 10 }, () => unary(c, { payload: Buffer.alloc(64) })));
    c.close();
    expect(await termAndTime(lb.proc, 10_000)).toBeLessThan(7_500);
  }, 30_000);

  it('with a scraper stuck half-way through a request on the ops port', async () => {
    const lb = await startBalancer(poolConfig([]));
    said('GET /metrics on the ops port without the final CRLF, then SIGTERM');
    const socket = await openTcp(lb.ops, 'GET /metrics HTTP/1.1\r\nHost: x\r\n');
    socket.on('error', () => {});
    expect(await termAndTime(lb.proc, 10_000)).toBeLessThan(7_500);
    socket.destroy();
  });
});

describe('the admin stops on SIGTERM', () => {
  it('with a control-plane connection that sent only the HTTP/2 preface, and a half-sent REST request', async () => {
    const admin = await startAdmin();
    said('the HTTP/2 preface to the control plane; half a request to the REST port; then SIGTERM');
    const cp = await openTcp(admin.grpc, Buffer.concat([PREFACE, settingsFrame()]));
    const rest = await openTcp(admin.url.replace('http://', ''), 'GET /v1/pools HTTP/1.1\r\nHost: x\r\n');
    cp.on('error', () => {});
    rest.on('error', () => {});
    await sleep(200);
    // Requests in flight get 3 s, the control plane 2 s (at the same time): well under the 10 s + 5 s hard limit.
    expect(await termAndTime(admin.proc, 20_000)).toBeLessThan(5_000);
    cp.destroy();
    rest.destroy();
  }, 30_000);

  it('with its stdout a full pipe nobody reads', async () => {
    const admin = await startAdmin();
    said('pausing the admin\'s stdout, then 1,500 requests that each log at debug level, then SIGTERM');
    admin.proc.stdout!.pause();
    admin.proc.stdout!.removeAllListeners('data');
    for (let i = 0; i < 150; i++) await Promise.all(Array.from({ length: 10 }, () => admin.api('GET', `/v1/pools?prefix=${'p'.repeat(200)}`)));
    expect(await termAndTime(admin.proc, 20_000)).toBeLessThan(15_500);
  }, 60_000);
});

describe('npm start', () => {
  it('takes the admin and the balancer down with it when it is killed with SIGKILL', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-start-'));
    const ports = await Promise.all([0, 0, 0, 0].map(() => freePort()));
    const [http, grpcPort, listen, ops] = ports.map((p) => `127.0.0.1:${p}`);
    const start = spawn(process.execPath, ['scripts/start.mjs'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SWITCHBOARD_HTTP: http, SWITCHBOARD_GRPC: grpcPort, SWITCHBOARD_LISTEN: listen, SWITCHBOARD_OPS: ops, SWITCHBOARD_DB: `file:${path.join(dir, 'switchboard.db')}` },
    });
    let out = '';
    start.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    start.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('npm start running', () => out.includes('Switchboard is running'), 30_000);
    said('SIGKILL to scripts/start.mjs');
    start.kill('SIGKILL');
    // Every port it opened is closed soon after: nothing orphaned on them.
    await waitFor('admin and balancer gone', async () => (await Promise.all([http!, listen!, ops!].map(accepts))).every((up) => !up), 15_000);
  }, 60_000);
});

describe('npm start and Ctrl-C', () => {
  it('one Ctrl-C (SIGINT to the whole process group, as a terminal sends it) drains the balancer once: no "second signal"', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-start-'));
    const ports = await Promise.all([0, 0, 0, 0].map(() => freePort()));
    const [http, grpcPort, listen, ops] = ports.map((p) => `127.0.0.1:${p}`);
    // Its own process group, as a terminal's foreground job has.
    const start = spawn(process.execPath, ['scripts/start.mjs'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SWITCHBOARD_HTTP: http, SWITCHBOARD_GRPC: grpcPort, SWITCHBOARD_LISTEN: listen, SWITCHBOARD_OPS: ops, SWITCHBOARD_DB: `file:${path.join(dir, 'switchboard.db')}` },
    });
    let out = '';
    start.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    start.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
    await waitFor('npm start running', () => out.includes('Switchboard is running'), 30_000);
    // A call in flight through its balancer when Ctrl-C comes: it completes.
    const token = /^\s+admin token\s+(sbt_\S+)/m.exec(out)![1]!;
    const backend = await startEchoBackend({ name: 'in-flight' });
    const put = await fetch(`http://${http}/v1/pools/echo`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ match: { services: ['*'] }, backends: [{ address: backend.address }] }) });
    expect(put.status).toBe(201);
    const client = echoClient(listen!);
    await waitFor('the balancer serves the pool', async () => (await unary(client, {})).error === undefined, 15_000);
    const inFlight = unary(client, { delayMs: 1500 });
    await waitFor('the call at the backend', () => backend.stats.active === 1);
    said('SIGINT to the process group of scripts/start.mjs');
    process.kill(-start.pid!, 'SIGINT');
    const r = await inFlight;
    expect(r.error).toBeUndefined();
    expect(await exited).toBe(0);
    client.close();
    await backend.stop();
    expect(out).toContain('draining: no new connections');
    expect(out).not.toContain('second signal');
  }, 60_000);
});

function accepts(address: string): Promise<boolean> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = net.connect(Number(address.slice(colon + 1)), address.slice(0, colon));
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
