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
 * or HANDOFF_TIMEOUT_MS, whichever comes first, and then closes it: a connection never outlives
 * the processes that could serve it. A worker that exits (or whose channel fails) before it says
 * so cannot be serving it: the socket goes to another worker instead, up to MAX_HANDOFFS times,
 * and is closed only when none is left. Closing it costs more than the connection: a gRPC client
 * whose new connection closes before HTTP/2 starts backs off (grpc-js: about a second) and fails
 * every call on that channel meanwhile. (A 1-minute churn soak in CI once lost 76 calls in the
 * second of one worker kill, where a kill usually costs 0-18: a channel's second of backoff; the
 * run kept no log to say which closed connection caused it.) A worker that took the socket and died
 * before its confirmation arrived may have read the client's first bytes; the next worker then
 * sees a broken preface and closes it, which is what closing it here would have done.
 *
 * Connections go round robin to the workers that serve and answer the primary: not to one whose
 * liveness ping has waited STALE_PING_MS (stopped, hung, or only busy for a moment) while
 * another answers. When none answers, a listening worker that has not been declared stalled
 * still gets it: a slow worker serves the connection sooner than a client's reconnect backoff.
 */
import * as net from 'node:net';
import type { Logger } from 'pino';
import type { HostPort } from '../balancer';
import type { WorkerHandle } from './worker-handle';

/** The longest the primary holds its copy of a socket a worker has not confirmed. */
export const HANDOFF_TIMEOUT_MS = 2_000;
/** A worker whose ping has waited this long gets no new connection while another answers. */
export const STALE_PING_MS = 1_000;
/** Workers one connection is sent to at most, before the primary gives up and closes it. */
export const MAX_HANDOFFS = 3;

interface Pending {
  socket: net.Socket;
  worker: WorkerHandle;
  timer: NodeJS.Timeout;
  /** Workers it has been sent to, this one included. */
  tries: number;
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
    // noDelay: Nagle off on every client connection, kept on the socket the worker is handed.
    this.server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.handOff(socket));
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

  /** A worker exited: what was on its way to it goes to another worker (it cannot be serving it). */
  workerGone(w: WorkerHandle): void {
    for (const [id, p] of this.pending) if (p.worker === w) this.again(id, 'its worker exited');
  }

  /** The workers a new connection may go to: those that answer, else any still serving. */
  private eligible(except: WorkerHandle | null): WorkerHandle[] {
    const now = Date.now();
    const answering: WorkerHandle[] = [];
    const serving: WorkerHandle[] = [];
    for (const w of this.workers()) {
      if (w === except || !w.listening || w.stalled || !w.worker.isConnected() || w.worker.isDead()) continue;
      serving.push(w);
      if (w.pingSentAt === null || now - w.pingSentAt < STALE_PING_MS) answering.push(w);
    }
    return answering.length > 0 ? answering : serving;
  }

  private handOff(socket: net.Socket, tries = 0, except: WorkerHandle | null = null): void {
    if (tries === 0) socket.on('error', () => {});
    const candidates = this.eligible(except);
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
    this.pending.set(id, { socket, worker: w, timer, tries: tries + 1 });
    try {
      w.worker.send({ t: 'conn', id }, socket, { keepOpen: true }, (err: Error | null) => {
        if (err) this.again(id, `could not send it: ${err.message}`);
      });
    } catch (err) {
      this.again(id, `could not send it: ${(err as Error).message}`);
    }
  }

  /** Connection `id` did not reach its worker: to another one, unless it was tried MAX_HANDOFFS times or the client left. */
  private again(id: number, why: string): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    if (p.tries >= MAX_HANDOFFS || p.socket.destroyed) return this.drop(id, why);
    this.pending.delete(id);
    clearTimeout(p.timer);
    this.log.warn({ worker: p.worker.worker.id, why, tries: p.tries }, 'connection hand-off failed: sending it to another worker');
    this.handOff(p.socket, p.tries, p.worker);
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
