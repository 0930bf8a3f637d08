/**
 * AdminConfigSource against a scripted admin: a real grpc-js server on loopback serving the
 * control-plane service, whose Connect handler the test drives message by message (as undici
 * tests its client against a scripted server). The sink is the balancer's seam (ConfigSink), so
 * what reaches the data plane is what the test reads. No clock is asserted: each test waits on
 * the messages themselves.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { canonicalConfig, configTag, diffConfigs, patchFromDiff, validateConfig, type SwitchboardConfig } from '#config';
import { controlPlane, type ControlMessage, type NodeMessage } from '#proto';
import { AdminConfigSource } from './admin-config-source';
import type { ConfigSink } from './config-source';

type ServerStream = grpc.ServerDuplexStream<NodeMessage, ControlMessage>;

/** One Connect stream as the admin sees it: what the balancer sent, read in order one kind at a time. */
class Connection {
  readonly received: NodeMessage[] = [];
  private readonly taken = new Map<string, number>();
  private waiters: (() => boolean)[] = [];

  constructor(readonly stream: ServerStream) {
    stream.on('data', (m: NodeMessage) => {
      this.received.push(m);
      this.waiters = this.waiters.filter((w) => !w());
    });
    stream.on('error', () => {});
  }

  /** The next message of `kind` this test has not read yet, once it came. */
  next<K extends NodeMessage['message']>(kind: K): Promise<Extract<NodeMessage, { message: K }>> {
    return new Promise((resolve) => {
      const take = (): boolean => {
        const n = this.taken.get(kind) ?? 0;
        const m = this.received.filter((x) => x.message === kind)[n];
        if (m === undefined) return false;
        this.taken.set(kind, n + 1);
        resolve(m as Extract<NodeMessage, { message: K }>);
        return true;
      };
      if (!take()) this.waiters.push(take);
    });
  }

  send(m: ControlMessage): void {
    this.stream.write(m);
  }
}

/** A scripted admin: every Connect stream is handed to the test, in order. */
class ScriptedAdmin {
  readonly connections: Connection[] = [];
  private waiters: (() => boolean)[] = [];
  readonly server = new grpc.Server();
  address = '';

  async start(): Promise<this> {
    this.server.addService(controlPlane().service, {
      Connect: (stream: ServerStream) => {
        this.connections.push(new Connection(stream));
        this.waiters = this.waiters.filter((w) => !w());
      },
    });
    const port = await new Promise<number>((resolve, reject) => this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    this.address = `127.0.0.1:${port}`;
    return this;
  }

  /** Connection number `n` (0: the first), once it is open. */
  connection(n: number): Promise<Connection> {
    return new Promise((resolve) => {
      const take = (): boolean => {
        const c = this.connections[n];
        if (c !== undefined) resolve(c);
        return c !== undefined;
      };
      if (!take()) this.waiters.push(take);
    });
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

/** The balancer's side of the seam: what was applied, what was refused. */
class RecordingSink implements ConfigSink {
  readonly applied: { revision: number; config: SwitchboardConfig }[] = [];
  readonly rejected: string[] = [];
  /** Revisions whose apply throws (a multi-worker apply that failed). */
  readonly failing = new Set<number>();
  apply(config: SwitchboardConfig, revision: number): void {
    if (this.failing.has(revision)) throw new Error(`revision ${revision} does not fit this host`);
    this.applied.push({ revision, config });
  }
  reject(reason: string): void {
    this.rejected.push(reason);
  }
}

const log = pino({ level: 'silent' });
const started: { stop(): void }[] = [];
afterEach(() => {
  for (const s of started.splice(0).reverse()) s.stop();
});

function config(backends: string[], algorithm = 'least_conn'): SwitchboardConfig {
  const r = validateConfig({ pools: [{ name: 'echo', algorithm, match: { services: ['*'] }, backends: backends.map((address) => ({ address })) }] });
  if (!r.ok) throw new Error('test config invalid');
  return canonicalConfig(r.config);
}
const snapshot = (revision: number, c: unknown): ControlMessage => ({ message: 'snapshot', snapshot: { revision, configJson: JSON.stringify(c), part: 0, parts: 1 } });

async function setUp(opts: { addresses?: (admin: ScriptedAdmin) => string[]; stateDir?: string; statsIntervalMs?: number } = {}) {
  const admin = await new ScriptedAdmin().start();
  started.push(admin);
  const sink = new RecordingSink();
  const stateDir = opts.stateDir ?? mkdtempSync(path.join(tmpdir(), 'switchboard-acs-'));
  const source = new AdminConfigSource({
    addresses: opts.addresses ? opts.addresses(admin) : [admin.address],
    nodeId: 'edge-1',
    token: 'sbt_test',
    stateDir,
    statsIntervalMs: opts.statsIntervalMs ?? 3_600_000,
    stats: () => [{ name: 'echo', panic: false, backends: [] }],
    log,
    backoff: { initialMs: 10, maxMs: 20 },
  });
  started.push(source);
  await source.start(sink);
  return { admin, sink, source, stateDir };
}

/** The balancer's first stream to the admin, once it has said hello and acknowledged revision 1 (`first`). */
async function serving(admin: ScriptedAdmin, first: SwitchboardConfig = config(['127.0.0.1:7001'])) {
  const c = await admin.connection(0);
  await c.next('hello');
  c.send(snapshot(1, first));
  await c.next('ack');
  return c;
}

describe('AdminConfigSource (scripted admin on loopback)', () => {
  it('says hello with its node id, token and revision; applies, acknowledges and stores a snapshot', async () => {
    const { admin, sink, source, stateDir } = await setUp();
    const c = await admin.connection(0);
    expect(c.stream.metadata.get('authorization')).toEqual(['Bearer sbt_test']);
    expect((await c.next('hello')).hello).toMatchObject({ nodeId: 'edge-1', appliedRevision: 0, deltas: true });
    c.send(snapshot(1, config(['127.0.0.1:7001'])));
    expect((await c.next('ack')).ack).toEqual({ revision: 1 });
    expect(sink.applied.map((a) => a.revision)).toEqual([1]);
    await source.flushed();
    expect(JSON.parse(readFileSync(path.join(stateDir, 'snapshot.json'), 'utf8'))).toMatchObject({ revision: 1 });
  });

  it('nacks a snapshot that is not JSON or not a valid config, naming the field, and keeps serving the last good one', async () => {
    const { admin, sink } = await setUp();
    const c = await serving(admin);
    c.send({ message: 'snapshot', snapshot: { revision: 2, configJson: '{"pools": [', part: 0, parts: 1 } });
    expect((await c.next('nack')).nack).toMatchObject({ revision: 2, reason: expect.stringContaining('not JSON') });
    c.send(snapshot(3, { pools: [{ name: 'echo', algorithm: 'fastest', match: { services: ['*'] }, backends: [] }] }));
    expect((await c.next('nack')).nack).toMatchObject({ revision: 3, reason: expect.stringContaining('algorithm') });
    expect(sink.applied.map((a) => a.revision)).toEqual([1]);
    expect(sink.rejected).toHaveLength(2);
    // The stream still works: a good revision after them is applied.
    c.send(snapshot(4, config(['127.0.0.1:7002'])));
    expect((await c.next('ack')).ack).toEqual({ revision: 4 });
  });

  it('a revision the data plane refuses is nacked; on reconnect the hello names the last good revision', async () => {
    const { admin, sink } = await setUp();
    const c = await serving(admin);
    sink.failing.add(2);
    c.send(snapshot(2, config(['127.0.0.1:7002'])));
    expect((await c.next('nack')).nack).toMatchObject({ revision: 2, reason: expect.stringContaining('does not fit this host') });
    c.stream.end(); // the admin goes away; the balancer comes back
    const again = await admin.connection(1);
    expect((await again.next('hello')).hello.appliedRevision).toBe(1);
  });

  it('applies a delta based on the revision it runs when it gives the admin\'s hash; otherwise asks for a snapshot', async () => {
    const { admin, sink } = await setUp();
    const one = config(['127.0.0.1:7001']);
    const two = config(['127.0.0.1:7001', '127.0.0.1:7002']);
    const c = await serving(admin, one);
    const patchJson = JSON.stringify(patchFromDiff(two, diffConfigs(one, two)));
    // Another base than the one it runs: resync, nothing applied.
    c.send({ message: 'delta', delta: { baseRevision: 7, revision: 8, patchJson, configHash: configTag(two) } });
    expect((await c.next('nack')).nack).toMatchObject({ revision: 8, resync: true });
    // The right base but another result than the admin's: resync.
    c.send({ message: 'delta', delta: { baseRevision: 1, revision: 2, patchJson, configHash: 'not-the-hash' } });
    expect((await c.next('nack')).nack).toMatchObject({ revision: 2, resync: true });
    // A patch that is not JSON: resync, not a crash.
    c.send({ message: 'delta', delta: { baseRevision: 1, revision: 2, patchJson: '{', configHash: configTag(two) } });
    expect((await c.next('nack')).nack).toMatchObject({ revision: 2, resync: true });
    expect(sink.applied.map((a) => a.revision)).toEqual([1]);
    expect(sink.rejected).toEqual([]); // a resync is not a rejected config
    c.send({ message: 'delta', delta: { baseRevision: 1, revision: 2, patchJson, configHash: configTag(two) } });
    expect((await c.next('ack')).ack).toEqual({ revision: 2 });
    expect(sink.applied[1]!.config.pools[0]!.backends.map((b) => b.address)).toEqual(['127.0.0.1:7001', '127.0.0.1:7002']);
  });

  it('puts a snapshot in parts together in order; a part out of order drops them and asks for a snapshot', async () => {
    const { admin, sink } = await setUp();
    const c = await admin.connection(0);
    await c.next('hello');
    const json = JSON.stringify(config(['127.0.0.1:7001']));
    const cut = [json.slice(0, 10), json.slice(10, 30), json.slice(30)];
    c.send({ message: 'snapshot', snapshot: { revision: 5, configJson: cut[0]!, part: 0, parts: 3 } });
    c.send({ message: 'snapshot', snapshot: { revision: 5, configJson: cut[2]!, part: 2, parts: 3 } });
    expect((await c.next('nack')).nack).toMatchObject({ revision: 5, resync: true });
    cut.forEach((piece, part) => c.send({ message: 'snapshot', snapshot: { revision: 6, configJson: piece, part, parts: 3 } }));
    expect((await c.next('ack')).ack).toEqual({ revision: 6 });
    expect(sink.applied.map((a) => a.revision)).toEqual([6]);
  });

  it('serves the stored snapshot before any admin answers, and acknowledges it without applying it twice', async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'switchboard-acs-'));
    const stored = config(['127.0.0.1:7009']);
    writeFileSync(path.join(stateDir, 'snapshot.json'), JSON.stringify({ revision: 41, config: stored }));
    const { admin, sink } = await setUp({ stateDir });
    expect(sink.applied.map((a) => a.revision)).toEqual([41]); // applied by start(), before the admin said anything
    const c = await admin.connection(0);
    expect((await c.next('hello')).hello.appliedRevision).toBe(41);
    c.send(snapshot(41, stored));
    expect((await c.next('ack')).ack).toEqual({ revision: 41 });
    expect(sink.applied).toHaveLength(1);
  });

  it('an unreadable or invalid stored snapshot is skipped: it waits for the admin instead', async () => {
    for (const content of ['{"revision": 3, "config": ', JSON.stringify({ revision: 3, config: { pools: 'none' } })]) {
      const stateDir = mkdtempSync(path.join(tmpdir(), 'switchboard-acs-'));
      writeFileSync(path.join(stateDir, 'snapshot.json'), content);
      const { admin, sink } = await setUp({ stateDir });
      expect(sink.applied).toEqual([]);
      const c = await admin.connection(0);
      expect((await c.next('hello')).hello.appliedRevision).toBe(0);
    }
  });

  it('fails over to the next admin when the first cannot be reached', async () => {
    const dead = new grpc.Server();
    const deadPort = await new Promise<number>((resolve, reject) => dead.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    dead.forceShutdown(); // the port is free: connections are refused
    const { admin } = await setUp({ addresses: (a) => [`127.0.0.1:${deadPort}`, a.address] });
    const c = await admin.connection(0);
    expect((await c.next('hello')).hello.nodeId).toBe('edge-1');
  });

  it('sends stats up the same stream, with the revision it runs', async () => {
    const { admin } = await setUp({ statsIntervalMs: 20 });
    const c = await serving(admin);
    let stats = await c.next('stats');
    while (stats.stats.appliedRevision !== 1) stats = await c.next('stats');
    expect(stats.stats.pools).toEqual([expect.objectContaining({ name: 'echo', panic: false })]);
  });

  it('stop() ends the stream and writes nothing after it', async () => {
    const { admin, source, stateDir } = await setUp();
    const c = await admin.connection(0);
    await c.next('hello');
    const ended = new Promise<void>((resolve) => c.stream.once('cancelled', () => resolve()).once('end', () => resolve()));
    source.stop();
    await ended;
    expect(existsSync(path.join(stateDir, 'snapshot.json'))).toBe(false);
  });
});
