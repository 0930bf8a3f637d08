/**
 * The primary's connection hand-off over scripted workers: real TCP connections on loopback to
 * the primary's listener, and stand-ins for the workers that receive the socket (as
 * worker.send(message, socket) does) and confirm it, or die, or fail the send, as each test
 * scripts. What is checked is what a client sees: whether its connection stays open, and which
 * worker it went to. In one process the primary's copy of a socket is the only one, so once a
 * worker confirms it (and the primary lets its copy go) the client's connection closes here, where
 * a real worker would hold its own; what a worker would serve is checked on arrival instead.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import * as net from 'node:net';
import pino from 'pino';
import { ConnectionHandoff, MAX_HANDOFFS, STALE_PING_MS } from './connection-handoff';
import type { WorkerHandle } from './worker-handle';
import type { ToWorker } from './messages';

type Behaviour = 'confirm' | 'die' | 'fail-send';

class FakeWorker {
  private static ids = 0;
  readonly id = ++FakeWorker.ids;
  listening = true;
  stalled = false;
  pingSentAt: number | null = null;
  dead = false;
  readonly got: number[] = [];
  /** Whether each socket was still open (the client's connection alive) when it arrived. */
  readonly open: boolean[] = [];
  constructor(
    public behaviour: Behaviour,
    private readonly handoff: () => ConnectionHandoff,
  ) {}

  readonly worker = {
    id: this.id,
    isConnected: () => !this.dead,
    isDead: () => this.dead,
    send: (m: ToWorker, socket: net.Socket, _opts: unknown, cb: (err: Error | null) => void): boolean => {
      if (m.t !== 'conn') return true;
      this.got.push(m.id);
      this.open.push(!socket.destroyed);
      setImmediate(() => {
        switch (this.behaviour) {
          case 'confirm':
            cb(null);
            this.handoff().confirmed(m.id);
            return;
          case 'fail-send':
            cb(new Error('channel closed'));
            return;
          case 'die':
            cb(null);
            this.dead = true;
            this.handoff().workerGone(this as unknown as WorkerHandle);
            return;
        }
      });
      return true;
    },
  };
}

let handoff: ConnectionHandoff | null = null;
const clients: net.Socket[] = [];

afterEach(() => {
  handoff?.close();
  handoff = null;
  for (const c of clients.splice(0)) c.destroy();
});

async function setUp(...behaviours: Behaviour[]): Promise<{ h: ConnectionHandoff; workers: FakeWorker[]; port: number }> {
  const workers: FakeWorker[] = [];
  const h = new ConnectionHandoff(() => workers as unknown as WorkerHandle[], pino({ level: 'silent' }));
  handoff = h;
  for (const b of behaviours) workers.push(new FakeWorker(b, () => h));
  const { port } = await h.listen({ host: '127.0.0.1', port: 0 });
  return { h, workers, port };
}

/** Connects, and resolves once the primary has settled the connection: handed (to a worker) or dropped (closed by the primary). */
async function connect(port: number, h: ConnectionHandoff): Promise<{ socket: net.Socket; closed: () => boolean }> {
  const before = h.counts.handed + h.counts.dropped;
  const dropped = h.counts.dropped;
  const socket = net.connect(port, '127.0.0.1');
  clients.push(socket);
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  await waitUntil(() => h.counts.handed + h.counts.dropped > before);
  if (h.counts.dropped > dropped) await waitUntil(() => closed);
  return { socket, closed: () => closed };
}

async function waitUntil(ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('ConnectionHandoff', () => {
  it('hands connections round robin to the workers that confirm them', async () => {
    const { h, workers, port } = await setUp('confirm', 'confirm');
    for (let i = 0; i < 4; i++) await connect(port, h);
    expect(workers.map((w) => w.got.length)).toEqual([2, 2]);
    expect(h.counts).toEqual({ handed: 4, dropped: 0 });
  });

  it.each([
    ['a worker that dies before confirming', 'die'],
    ['a send that fails', 'fail-send'],
  ] as const)('%s: the connection goes to another worker, still open', async (_what, behaviour) => {
    const { h, workers, port } = await setUp(behaviour, 'confirm');
    await connect(port, h);
    expect(workers[0]!.got).toHaveLength(1);
    expect(workers[1]!.open).toEqual([true]);
    expect(h.counts).toEqual({ handed: 1, dropped: 0 });
  });

  it('a confirmation for a connection that is not on its way (unknown, or confirmed already) changes nothing', async () => {
    const { h, workers, port } = await setUp('confirm');
    await connect(port, h);
    const id = workers[0]!.got[0]!;
    for (const bogus of [id, id + 1, -1, 0, Number.NaN, 2 ** 53]) h.confirmed(bogus);
    expect(h.counts).toEqual({ handed: 1, dropped: 0 });
    await connect(port, h);
    expect(h.counts).toEqual({ handed: 2, dropped: 0 });
  });

  it(`gives up after ${MAX_HANDOFFS} workers failed it, and closes the connection`, async () => {
    const { h, workers, port } = await setUp('fail-send', 'fail-send', 'fail-send', 'fail-send', 'fail-send');
    const c = await connect(port, h);
    expect(workers.reduce((n, w) => n + w.got.length, 0)).toBe(MAX_HANDOFFS);
    expect(h.counts).toEqual({ handed: 0, dropped: 1 });
    expect(c.closed()).toBe(true);
  });

  it('closes the connection when every worker is gone', async () => {
    const { h, port } = await setUp('die');
    const c = await connect(port, h);
    expect(h.counts).toEqual({ handed: 0, dropped: 1 });
    expect(c.closed()).toBe(true);
  });

  it('prefers a worker that answers its pings, and still uses a slow one when none does', async () => {
    const { h, workers, port } = await setUp('confirm', 'confirm');
    workers[0]!.pingSentAt = Date.now() - STALE_PING_MS - 10;
    for (let i = 0; i < 3; i++) await connect(port, h);
    expect(workers.map((w) => w.got.length)).toEqual([0, 3]);
    workers[1]!.pingSentAt = Date.now() - STALE_PING_MS - 10;
    await connect(port, h);
    expect(workers[0]!.got.length + workers[1]!.got.length).toBe(4);
    expect(h.counts).toEqual({ handed: 4, dropped: 0 });
  });

  it('never hands a connection to a worker declared stalled or not listening', async () => {
    const { h, workers, port } = await setUp('confirm', 'confirm');
    workers[0]!.stalled = true;
    workers[1]!.listening = false;
    const c = await connect(port, h);
    expect(workers.map((w) => w.got.length)).toEqual([0, 0]);
    expect(h.counts).toEqual({ handed: 0, dropped: 1 });
    expect(c.closed()).toBe(true);
  });
});
