/**
 * Admins that share one PostgreSQL database tell each other of their commits at once:
 * LISTEN/NOTIFY on one channel, the payload the revision number. A dedicated connection (pg)
 * listens; a lost connection is re-made with backoff, and ConfigService's periodic check covers
 * whatever a notification may miss meanwhile.
 */
import { Client } from 'pg';
import type { Logger } from 'pino';

const CHANNEL = 'switchboard_commits';

export class CommitNotifier {
  private client: Client | null = null;
  private stopped = false;
  private retryMs = 200;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    /** Another admin (or this one) committed `revision`. */
    private readonly onCommit: (revision: number) => void,
  ) {}

  async start(): Promise<void> {
    if (this.stopped) return;
    const client = new Client({ connectionString: this.url });
    client.on('notification', (n) => {
      const revision = Number(n.payload);
      if (Number.isInteger(revision)) this.onCommit(revision);
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.client = client;
      this.retryMs = 200;
    } catch (err) {
      this.lost(client, err as Error);
    }
  }

  /** Tells the other admins (best effort: they also check periodically). */
  async notify(revision: number): Promise<void> {
    await this.client?.query('SELECT pg_notify($1, $2)', [CHANNEL, String(revision)]).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  private lost(client: Client, err?: Error): void {
    if (this.client !== client && this.client !== null) return;
    this.client = null;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.stopped) return;
    this.log.warn({ err: err?.message, retryInMs: this.retryMs }, 'lost the commit notifications of the other admins; checking periodically and reconnecting');
    setTimeout(() => void this.start(), this.retryMs).unref();
    this.retryMs = Math.min(this.retryMs * 2, 5000);
  }
}
