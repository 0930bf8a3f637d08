/** The primary's handle on one worker process: its state, and requests answered over IPC. */
import type { Worker } from 'node:cluster';
import type { FromWorker, ToWorker } from './messages';

type Pending = { resolve: (value: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

/** The worker exited before it answered: not the worker's verdict on the request. */
export class WorkerGone extends Error {}

/** The worker did not answer in time: it may be stopped or hung, not refusing. */
export class WorkerTimedOut extends Error {}

export class WorkerHandle {
  /** Told its revision (init sent): later applies must reach it. */
  initialised = false;
  listening = false;
  readonly startedAt = Date.now();
  private nextId = 1;
  /** The liveness ping waiting for its answer, sent at this time (null: none waits). */
  pingSentAt: number | null = null;
  /** Killed for not answering. */
  stalled = false;
  private readonly pending = new Map<number, Pending>();

  constructor(
    readonly worker: Worker,
    readonly slot: number,
  ) {
    // A send to a worker that is dying fails asynchronously with an 'error' event: without a
    // listener that would take the primary down with it.
    worker.on('error', () => this.exited());
  }

  get pid(): number {
    return this.worker.process.pid ?? 0;
  }

  /** Sends unless the worker is gone (a message to a dying worker is lost, as its calls are). */
  send(message: ToWorker): void {
    if (!this.worker.isConnected()) return;
    try {
      this.worker.send(message, (err: Error | null) => {
        if (err) this.exited(); // the channel broke: the worker is dying, nothing it was asked will be answered
      });
    } catch {
      this.exited();
    }
  }

  /** Sends a message with a fresh id and resolves with the worker's reply to it. */
  request(message: DistributiveOmit<Extract<ToWorker, { id: number }>, 'id'>, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new WorkerTimedOut(`worker ${this.worker.id} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ ...message, id } as ToWorker);
    });
  }

  /** A reply from the worker. */
  answered(m: Extract<FromWorker, { t: 'reply' }>): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.value);
    else p.reject(new Error(m.error));
  }

  /** The worker exited: whatever it was asked fails with WorkerGone. */
  exited(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new WorkerGone(`worker ${this.worker.id} exited`));
    }
    this.pending.clear();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
