/**
 * Admins that share one PostgreSQL database tell each other of their commits at once:
 * LISTEN/NOTIFY on one channel. The payload is the revision number and, when it fits in
 * NOTIFY's 8,000 bytes, the revision it was made from and its patch (`7:6:{...}`), so an admin
 * at that base applies it without reading the database. A dedicated connection (pg) listens; a lost connection is re-made with backoff, and ConfigService's periodic check covers
 * whatever a notification may miss meanwhile.
 */
import { Client } from 'pg';
import type { Logger } from 'pino';

const CHANNEL = 'switchboard_commits';
/** NOTIFY's payload limit is 8,000 bytes. */
const MAX_PAYLOAD_BYTES = 7900;
/** The longest a commit waits for its own NOTIFY to come back before it goes on. */
const NOTIFY_WAIT_MS = 50;

/** What a notification says: a revision, and the patch that made it from `base` when it fit. */
export interface CommitNotice {
  revision: number;
  delta?: { base: number; patchJson: string };
}

export function parseNotice(payload: string | undefined): CommitNotice | undefined {
  const m = /^(\d{1,10})(?::(\d{1,10}):(\{.*\}))?$/s.exec(payload ?? '');
  if (!m) return undefined;
  const revision = Number(m[1]);
  return m[2] !== undefined ? { revision, delta: { base: Number(m[2]), patchJson: m[3]! } } : { revision };
}

export class CommitNotifier {
  private client: Client | null = null;
  private stopped = false;
  private retryMs = 200;
  /** This admin's own notifications in flight, by revision: resolved when they come back. */
  private readonly echoes = new Map<number, () => void>();

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    /** Another admin (or this one) committed a revision. */
    private readonly onCommit: (notice: CommitNotice) => void,
  ) {}

  async start(): Promise<void> {
    if (this.stopped) return;
    const client = new Client({ connectionString: this.url });
    client.on('notification', (n) => {
      const notice = parseNotice(n.payload);
      if (notice === undefined) return;
      this.echoes.get(notice.revision)?.();
      this.onCommit(notice);
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

  /**
   * Tells the other admins (best effort: they also look periodically). Resolves once the
   * notification came back to this admin, which listens too: PostgreSQL has then handed it to
   * every listener. Or after `waitMs` at most: a connection that hangs never holds a commit up.
   */
  async notify(revision: number, base: number, patchJson: string, waitMs = NOTIFY_WAIT_MS): Promise<void> {
    const client = this.client;
    if (client === null) return;
    const full = `${revision}:${base}:${patchJson}`;
    const payload = Buffer.byteLength(full) <= MAX_PAYLOAD_BYTES ? full : String(revision);
    let timer: NodeJS.Timeout | undefined;
    const back = new Promise<void>((resolve) => {
      this.echoes.set(revision, resolve);
      timer = setTimeout(resolve, waitMs);
    });
    client.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]).catch(() => this.echoes.get(revision)?.());
    await back;
    clearTimeout(timer);
    this.echoes.delete(revision);
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
