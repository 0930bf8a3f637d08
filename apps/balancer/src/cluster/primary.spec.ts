/**
 * BalancerPrimary over scripted workers: each "worker" is an in-process stand-in for a
 * node:cluster Worker that speaks the primary's IPC protocol (messages.ts) as the test scripts it
 * (boot, listen, apply or refuse, answer queries or stay silent, die), as undici tests its client
 * against scripted servers. The primary itself is real: its data listener and ops endpoint
 * listen on loopback. No clock is asserted: tests wait for the messages and the kills themselves,
 * with the primary's timeouts made short through its timing options.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:cluster';
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { canonicalConfig, validateConfig, type SwitchboardConfig } from '#config';
import { describeState } from '../ops/state';
import { Runtime } from '../config/runtime';
import { BalancerPrimary, type PrimaryTiming } from './primary';
import type { FromWorker, ToWorker } from './messages';

type Message<T extends ToWorker['t']> = Extract<ToWorker, { t: T }>;
/** What a worker does with a message from the primary; `serving` is the healthy default. */
type Script = (w: FakeWorker, m: ToWorker) => void;

class FakeWorker extends EventEmitter {
  private static ids = 0;
  readonly id = ++FakeWorker.ids;
  readonly received: ToWorker[] = [];
  readonly calls = new Registry();
  killedWith: string | null = null;
  private dead = false;
  readonly process: { pid: number; stdout: null; stderr: null; kill(signal?: string): boolean };

  constructor(
    readonly slot: number,
    public script: Script,
  ) {
    super();
    this.process = {
      pid: 40_000 + this.id,
      stdout: null,
      stderr: null,
      kill: (signal = 'SIGTERM') => {
        this.killedWith = signal;
        this.exit(null, signal);
        return true;
      },
    };
    new Counter({ name: 'switchboard_test_calls_total', help: 'calls this worker served', registers: [this.calls] }).inc(this.id);
    this.say({ t: 'booted' });
  }

  isDead(): boolean {
    return this.dead;
  }

  isConnected(): boolean {
    return !this.dead;
  }

  /** As Worker.send: the message (and a socket handle, which these tests never send), then a callback. */
  send(m: ToWorker, ...rest: unknown[]): boolean {
    const done = rest.find((x): x is (err: Error | null) => void => typeof x === 'function');
    if (this.dead) {
      if (done) setImmediate(() => done(new Error('channel closed')));
      return false;
    }
    this.received.push(m);
    setImmediate(() => {
      done?.(null);
      if (!this.dead) this.script(this, m);
    });
    return true;
  }

  /** A message to the primary; one said before the worker exits arrives before its exit, as over IPC. */
  say(m: FromWorker): void {
    if (this.dead) return;
    setImmediate(() => this.emit('message', m));
  }

  reply(id: number, value: unknown): void {
    this.say({ t: 'reply', id, ok: true, value });
  }

  exit(code: number | null, signal: string | null): void {
    if (this.dead) return;
    this.dead = true;
    setImmediate(() => this.emit('exit', code, signal));
  }

  of<T extends ToWorker['t']>(t: T): Message<T>[] {
    return this.received.filter((m): m is Message<T> => m.t === t);
  }
}

const serving: Script = (w, m) => {
  switch (m.t) {
    case 'init':
      w.say({ t: 'listening', host: '127.0.0.1', port: 1 });
      return;
    case 'apply':
      w.reply(m.id, null);
      return;
    case 'query':
      if (m.what === 'metrics') void w.calls.getMetricsAsJSON().then((json) => w.reply(m.id, json));
      else if (m.what === 'state') w.reply(m.id, { ...describeState(Runtime.empty()), pid: w.process.pid });
      else w.reply(m.id, m.what === 'stats' ? [] : null);
      return;
    case 'drain':
      w.exit(0, null);
      return;
    default:
      return;
  }
};

/** `serving`, except for the messages `unless` takes (returns true for). */
const servingUnless =
  (unless: (w: FakeWorker, m: ToWorker) => boolean): Script =>
  (w, m) => {
    if (!unless(w, m)) serving(w, m);
  };

function config(backends: string[], extra: { pool?: Record<string, unknown>; top?: Record<string, unknown> } = {}): SwitchboardConfig {
  const r = validateConfig({ pools: [{ name: 'echo', algorithm: 'least_conn', match: { services: ['*'] }, backends: backends.map((address) => ({ address })), ...extra.pool }], ...extra.top });
  if (!r.ok) throw new Error(`test config invalid: ${JSON.stringify(r)}`);
  return canonicalConfig(r.config);
}

const log = pino({ level: 'silent' });
const running: BalancerPrimary[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

type SetUp = { workers?: number; script?: (slot: number, generation: number) => Script; timing?: Partial<PrimaryTiming>; ops?: boolean };

/** A primary whose workers are FakeWorkers (in `forked`, in the order started), not started yet. */
function primaryOf(opts: SetUp = {}) {
  const forked: FakeWorker[] = [];
  const primary = new BalancerPrimary({
    workers: opts.workers ?? 2,
    listen: { host: '127.0.0.1', port: 0 },
    ops: opts.ops ? { host: '127.0.0.1', port: 0 } : null,
    drainTimeoutMs: 200,
    logger: log,
    output: { stdout: () => {}, stderr: () => {} },
    fork: (env) => {
      const slot = Number(env.SWITCHBOARD_WORKER_SLOT);
      const generation = forked.filter((w) => w.slot === slot).length;
      const w = new FakeWorker(slot, opts.script?.(slot, generation) ?? serving);
      forked.push(w);
      return w as unknown as Worker;
    },
    // Long by default, so that no test sees a ping or timeout it did not ask for.
    timing: { livenessMs: 60_000, applyTimeoutMs: 60_000, queryTimeoutMs: 60_000, ...opts.timing },
  });
  return { primary, forked };
}

async function setUp(opts: SetUp = {}) {
  const { primary, forked } = primaryOf(opts);
  running.push(primary);
  const addresses = await primary.start(null);
  return { primary, forked, addresses };
}

const get = async (ops: { host: string; port: number }, path: string): Promise<string> => (await fetch(`http://${ops.host}:${ops.port}${path}`)).text();

describe('BalancerPrimary (scripted workers)', () => {
  it('starts one worker per slot, tells each the revision it serves, and acknowledges a revision once every worker applied it', async () => {
    const { primary, forked, addresses } = await setUp({ workers: 3 });
    expect(forked.map((w) => w.slot)).toEqual([0, 1, 2]);
    expect(addresses.listen.port).toBeGreaterThan(0);
    for (const w of forked) expect(w.of('init')).toEqual([expect.objectContaining({ config: null, revision: 0 })]);
    const c = config(['127.0.0.1:7001']);
    await primary.apply(c, 1);
    expect(primary.servingRevision).toBe(1);
    for (const w of forked) expect(w.of('apply').map((m) => [m.revision, m.config])).toEqual([[1, c]]);
  });

  it('a revision any worker refuses is refused, and every worker goes back to the last good one', async () => {
    const { primary, forked } = await setUp({
      script: (slot) => servingUnless((w, m) => slot === 1 && m.t === 'apply' && m.revision === 2 && (w.say({ t: 'reply', id: m.id, ok: false, error: 'does not fit this host' }), true)),
    });
    const one = config(['127.0.0.1:7001']);
    await primary.apply(one, 1);
    await expect(primary.apply(config(['127.0.0.1:7002']), 2)).rejects.toThrow(/^worker \d+: does not fit this host$/);
    expect(primary.servingRevision).toBe(1);
    for (const w of forked) {
      expect(w.of('apply').map((m) => m.revision)).toEqual([1, 2, 1]);
      expect(w.of('apply')[2]!.config).toEqual(one);
    }
    // The primary serves on: the next revision applies everywhere.
    await primary.apply(config(['127.0.0.1:7003']), 3);
    expect(primary.servingRevision).toBe(3);
  });

  it('a worker that does not apply in time has not refused: it is killed, the revision serves, and its replacement starts on it', async () => {
    const { primary, forked } = await setUp({
      timing: { applyTimeoutMs: 100, respawnDelayMs: 0 },
      script: (slot, generation) => servingUnless((_, m) => slot === 1 && generation === 0 && m.t === 'apply' && m.revision === 2),
    });
    await primary.apply(config(['127.0.0.1:7001']), 1);
    const two = config(['127.0.0.1:7002']);
    await primary.apply(two, 2);
    expect(primary.servingRevision).toBe(2);
    expect(forked[1]!.killedWith).toBe('SIGKILL');
    expect(forked[0]!.killedWith).toBeNull();
    const replacement = await until('a replacement in slot 1', () => forked[2]);
    expect(replacement.slot).toBe(1);
    await until('its init', () => replacement.of('init')[0]);
    expect(replacement.of('init')[0]).toMatchObject({ revision: 2, config: two });
  });

  it('a worker that dies is replaced in its slot on the current revision, and /state counts the restart', async () => {
    const { primary, forked, addresses } = await setUp({ ops: true, timing: { respawnDelayMs: 20 } });
    const c = config(['127.0.0.1:7001']);
    await primary.apply(c, 1);
    forked[0]!.exit(1, null);
    const replacement = await until('a replacement', () => forked[2]);
    expect(replacement.slot).toBe(0);
    await until('it listens', () => replacement.of('init').length > 0);
    expect(replacement.of('init')[0]).toMatchObject({ revision: 1, config: c });
    const state = JSON.parse(await get(addresses.ops!, '/state'));
    expect(state.workers).toMatchObject({ count: 2, restarts: 1 });
    expect(await get(addresses.ops!, '/metrics')).toMatch(/^switchboard_worker_restarts_total 1$/m);
  });

  it('a worker that stops answering pings (SIGSTOP, a hung loop) is killed and replaced; one that answers is left alone', async () => {
    const { forked } = await setUp({
      timing: { livenessMs: 10, stallMs: 80, respawnDelayMs: 0 },
      script: (slot, generation) => servingUnless((_, m) => slot === 1 && generation === 0 && m.t === 'query' && m.what === 'ping'),
    });
    await until('the silent worker killed', () => forked[1]!.killedWith === 'SIGKILL');
    const replacement = await until('its replacement', () => forked[2]);
    expect(replacement.slot).toBe(1);
    expect(forked[0]!.killedWith).toBeNull();
    expect(forked[0]!.of('query').filter((m) => m.what === 'ping').length).toBeGreaterThan(1);
  });

  it('/metrics adds up the workers that answer, and leaves out one that stays silent past queryTimeoutMs', async () => {
    let silent = false;
    const { forked, addresses } = await setUp({
      ops: true,
      timing: { queryTimeoutMs: 100 },
      script: (slot) => servingUnless((_, m) => silent && slot === 1 && m.t === 'query' && m.what === 'metrics'),
    });
    const [a, b] = [forked[0]!.id, forked[1]!.id];
    expect(await get(addresses.ops!, '/metrics')).toMatch(new RegExp(`^switchboard_test_calls_total ${a + b}$`, 'm'));
    silent = true;
    const text = await get(addresses.ops!, '/metrics');
    expect(text).toMatch(new RegExp(`^switchboard_test_calls_total ${a}$`, 'm'));
    expect(text).toMatch(/^switchboard_workers 2$/m);
  });

  it('outcomes from every worker count once for the balancer: a backend is ejected and every worker is told', async () => {
    const { primary, forked } = await setUp();
    const c = config(['127.0.0.1:7001', '127.0.0.1:7002'], { pool: { healthPolicy: 'p' }, top: { healthPolicies: [{ name: 'p', passive: { consecutiveFailures: 5 } }] } });
    await primary.apply(c, 1);
    // 3 and then 2 UNAVAILABLE in a row, from two workers: 5 in a row for the balancer.
    forked[0]!.say({ t: 'outcomes', runs: [['echo', '127.0.0.1:7001', [3]]] });
    forked[1]!.say({ t: 'outcomes', runs: [['echo', '127.0.0.1:7001', [2]]] });
    for (const w of forked) {
      await until(`worker ${w.id} told`, () => w.of('verdict').length > 0);
      expect(w.of('verdict').map((m) => m.v)).toEqual([['echo', '127.0.0.1:7001', true, true]]);
    }
  });

  it('what a broken worker says is ignored: replies nobody asked for, a reply after its timeout, outcomes and latency for pools that do not exist', async () => {
    let late: number | null = null;
    const { primary, forked, addresses } = await setUp({
      ops: true,
      timing: { queryTimeoutMs: 50 },
      script: (slot) =>
        servingUnless((w, m) => {
          if (slot !== 0 || m.t !== 'query' || m.what !== 'metrics' || late !== null) return false;
          late = m.id; // answered only after the primary gave up on it
          setTimeout(() => w.reply(m.id, []), 150);
          return true;
        }),
    });
    await primary.apply(config(['127.0.0.1:7001']), 1);
    const w = forked[0]!;
    w.say({ t: 'reply', id: 9_999, ok: true, value: 'nobody asked' });
    w.say({ t: 'reply', id: -1, ok: false, error: 'x' });
    w.say({ t: 'outcomes', runs: [['nope', '127.0.0.1:1', [1_000]], ['echo', '127.0.0.1:9', [1_000]]] });
    w.say({ t: 'latency', pools: [['nope', [1, 2, 3]]] });
    expect(await get(addresses.ops!, '/metrics')).toMatch(/^switchboard_workers 2$/m);
    await until('the late reply sent', () => late !== null);
    await new Promise((r) => setTimeout(r, 200));
    // Still one balancer serving: a revision applies on both, nothing was ejected, nothing restarted.
    await primary.apply(config(['127.0.0.1:7001', '127.0.0.1:7002']), 2);
    expect(primary.servingRevision).toBe(2);
    expect(forked.every((x) => x.of('verdict').length === 0 && x.killedWith === null)).toBe(true);
    expect(forked).toHaveLength(2);
  });

  it('a worker that cannot listen fails the start, and no worker is left running', async () => {
    const { primary, forked } = primaryOf({
      script: (slot) => servingUnless((x, m) => slot === 1 && m.t === 'init' && (x.say({ t: 'failed', error: 'listen EADDRINUSE 127.0.0.1:1' }), x.exit(1, null), true)),
    });
    await expect(primary.start(null)).rejects.toThrow('listen EADDRINUSE 127.0.0.1:1');
    expect(forked[0]!.killedWith).toBe('SIGKILL');
    await primary.stop(); // resolves at once: nothing left to drain
  });

  it('stop drains every worker; one that does not exit within the drain timeout (+2 s) is killed', async () => {
    const { primary, forked } = await setUp({ script: (slot) => servingUnless((_, m) => slot === 0 && m.t === 'drain') });
    running.splice(0);
    await primary.stop();
    expect(forked.map((w) => w.of('drain').length)).toEqual([1, 1]);
    expect(forked[0]!.killedWith).toBe('SIGKILL');
    expect(forked[1]!.killedWith).toBeNull();
    expect(forked.every((w) => w.isDead())).toBe(true);
  });
});
