/**
 * A worker's side of a multi-worker balancer: a data plane (a Balancer whose verdicts come from
 * the primary) driven by the primary over the cluster IPC channel. It serves only once it has
 * the primary's current revision, answers the ops endpoint's queries with its own share, and
 * stops when the primary says so (SIGTERM and SIGINT are the primary's to handle), or at once
 * when the primary is gone.
 */
import * as net from 'node:net';
import type { Logger } from 'pino';
import type { Balancer } from '../balancer';
import type { FromWorker, Query, ToWorker } from './messages';
import type { WorkerVerdicts } from './worker-verdicts';

/** How often a worker sends its new latency samples to the primary (one window per balancer). */
const LATENCY_SHARE_MS = 1000;

export interface WorkerHooks {
  /** SIGHUP reached the primary: re-read certificate files. */
  hup(): void;
  /** Drain, then exit. */
  stop(): void;
}

export class WorkerLink {
  constructor(
    private readonly balancer: Balancer,
    private readonly verdicts: WorkerVerdicts,
    private readonly hooks: WorkerHooks,
    private readonly log: Logger,
  ) {}

  start(): void {
    process.on('message', (m: ToWorker, handle: unknown) => this.on(m, handle));
    process.on('disconnect', () => {
      this.log.error('the primary is gone: exiting');
      process.exit(1);
    });
    // Signals sent to the whole process group (Ctrl-C) reach the workers too: the primary
    // orchestrates the drain, so a worker waits for its word instead of stopping on its own.
    process.on('SIGINT', () => {});
    process.on('SIGTERM', () => {});
    process.on('SIGHUP', () => {});
    setInterval(() => {
      const pools = this.balancer.takeLatencyDeltas();
      if (pools.length > 0) this.send({ t: 'latency', pools });
    }, LATENCY_SHARE_MS).unref();
    this.send({ t: 'booted' });
  }

  static send(message: FromWorker): void {
    if (process.connected) process.send!(message, undefined, {}, () => {}); // a failed send: the primary is gone ('disconnect' follows)
  }

  private send(message: FromWorker): void {
    WorkerLink.send(message);
  }

  private on(m: ToWorker, handle?: unknown): void {
    switch (m.t) {
      case 'conn':
        // Confirmed whatever becomes of it: the primary then lets go of its copy.
        if (handle instanceof net.Socket) this.balancer.adopt(handle);
        this.send({ t: 'conn-ok', id: m.id });
        return;
      case 'init':
        try {
          if (m.config !== null) {
            this.verdicts.setAll(m.verdicts);
            this.balancer.apply(m.config, m.revision);
          }
        } catch (err) {
          this.log.error({ err: (err as Error).message, revision: m.revision }, 'worker cannot apply the running revision');
        }
        this.balancer.start(null).then(
          ({ listen }) => this.send({ t: 'listening', host: listen.host, port: listen.port }),
          (err: Error) => {
            this.send({ t: 'failed', error: err.message });
            setTimeout(() => process.exit(1), 100);
          },
        );
        return;
      case 'apply':
        try {
          this.verdicts.setAll(m.verdicts);
          this.balancer.apply(m.config, m.revision, m.cause);
          this.send({ t: 'reply', id: m.id, ok: true, value: null });
        } catch (err) {
          this.send({ t: 'reply', id: m.id, ok: false, error: (err as Error).message });
        }
        return;
      case 'verdict':
        this.verdicts.update(m.v);
        return;
      case 'query':
        this.answer(m.what).then(
          (value) => this.send({ t: 'reply', id: m.id, ok: true, value }),
          (err: Error) => this.send({ t: 'reply', id: m.id, ok: false, error: err.message }),
        );
        return;
      case 'hup':
        this.hooks.hup();
        return;
      case 'drain':
        this.hooks.stop();
        return;
      case 'latency':
        this.balancer.useSharedHedgeDelays(m.values);
        return;
    }
  }

  private async answer(what: Query): Promise<unknown> {
    switch (what) {
      case 'state':
        return { ...this.balancer.describe(), pid: process.pid };
      case 'metrics':
        return this.balancer.metricsJson();
      case 'stats':
        return this.balancer.collectWorkerStats();
      case 'ping':
        return null;
    }
  }
}
