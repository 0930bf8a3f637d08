/**
 * The primary's data listener, and the hand-off of each connection it accepts to a worker.
 *
 * Why not node:cluster's own round robin: the primary accepts, sends the socket to a worker and
 * closes its copy only when the worker acknowledges. A worker killed while a socket is on its way
 * never acknowledges, and node never closes the primary's copy: the client's connection stays
 * open with nobody reading it (no SETTINGS, no FIN), so a gRPC channel that reconnected at that
 * moment waits on it until every call's deadline, for as long as it lives (issue 28's churn soak:
 * one of four long-lived channels timed out 26% of all calls). One connection is stranded this way
 * per worker kill under reconnect load (seen in 4 of 4 tries).
 *
 * Here the primary keeps its copy of a handed-off socket only until the worker says it took it,
 * or HANDOFF_TIMEOUT_MS, or the worker's exit, whichever comes first, and then closes it: a
 * connection never outlives the processes that could serve it. If the worker never got it, the
 * client sees the connection close and reconnects. Connections go round robin to the workers
 * that serve and answer the primary: not to one whose liveness ping has waited STALE_PING_MS
 * (stopped, hung), which the primary is about to replace.
 */
import * as net from 'node:net';
import type { Logger } from 'pino';
import type { HostPort } from '../balancer';
import type { WorkerHandle } from './worker-handle';

/** The longest the primary holds its copy of a socket a worker has not confirmed. */
export const HANDOFF_TIMEOUT_MS = 2_000;
/** A worker whose ping has waited this long gets no new connection. */
export const STALE_PING_MS = 1_000;

interface Pending {
  socket: net.Socket;
  worker: WorkerHandle;
  timer: NodeJS.Timeout;
}

export interface HandoffCounts {
  /** Connections a worker confirmed. */
  handed: number;
  /** Connections closed because no worker could take them (none serving, send failed, no confirmation in time). */
  dropped: number;
}

export class ConnectionHandoff {
  private readonly server: net.Server;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private turn = 0;
  readonly counts: HandoffCounts = { handed: 0, dropped: 0 };

  constructor(
    /** The workers, in a stable order. */
    private readonly workers: () => Iterable<WorkerHandle>,
    private readonly log: Logger,
  ) {
    // Paused: the primary never reads a byte; what the client sent waits in the socket for the worker.
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this.handOff(socket));
  }

  listen(address: HostPort): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(address.port, address.host, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => this.log.error({ err: err.message }, 'data listener error'));
        const a = this.server.address() as net.AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /** No new connections (the drain); those on their way are let go. */
  close(): void {
    this.server.close();
  }

  /** A worker took connection `id`. */
  confirmed(id: number): void {
    if (this.release(id)) this.counts.handed++;
  }

  /** A worker exited: what was on its way to it is let go (closing the last copy the primary holds). */
  workerGone(w: WorkerHandle): void {
    for (const [id, p] of this.pending) if (p.worker === w) this.drop(id, 'its worker exited');
  }

  private eligible(): WorkerHandle[] {
    const now = Date.now();
    const out: WorkerHandle[] = [];
    for (const w of this.workers()) {
      if (!w.listening || w.stalled || !w.worker.isConnected() || w.worker.isDead()) continue;
      if (w.pingSentAt !== null && now - w.pingSentAt >= STALE_PING_MS) continue;
      out.push(w);
    }
    return out;
  }

  private handOff(socket: net.Socket): void {
    socket.on('error', () => {});
    const candidates = this.eligible();
    if (candidates.length === 0) {
      this.counts.dropped++;
      this.log.warn('no worker can take a connection now: closing it (the client reconnects)');
      socket.destroy();
      return;
    }
    const w = candidates[this.turn++ % candidates.length]!;
    const id = ++this.seq;
    const timer = setTimeout(() => this.drop(id, `no confirmation within ${HANDOFF_TIMEOUT_MS} ms`), HANDOFF_TIMEOUT_MS);
    timer.unref();
    this.pending.set(id, { socket, worker: w, timer });
    try {
      w.worker.send({ t: 'conn', id }, socket, { keepOpen: true }, (err: Error | null) => {
        if (err) this.drop(id, `could not send it: ${err.message}`);
      });
    } catch (err) {
      this.drop(id, `could not send it: ${(err as Error).message}`);
    }
  }

  private drop(id: number, why: string): void {
    const p = this.pending.get(id);
    if (p === undefined || !this.release(id)) return;
    this.counts.dropped++;
    this.log.warn({ worker: p.worker.worker.id, why }, 'connection hand-off failed: closed it (the client reconnects)');
  }

  /** Closes the primary's copy of connection `id` (the worker's copy, if it has one, serves on). */
  private release(id: number): boolean {
    const p = this.pending.get(id);
    if (p === undefined) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.socket.destroy();
    return true;
  }
}
