/**
 * The balancers (nodes) the control plane knows: connection state, applied revision, last NACK
 * (persisted in the Node table, so `GET /v1/nodes` survives an admin restart) and their latest
 * stats reports (in memory: they are live figures, refreshed every few seconds).
 *
 * Bounded: a disconnected node is forgotten `nodeRetentionMs` after it was last seen (memory and
 * table alike), and at most MAX_DISCONNECTED of them are kept, oldest forgotten first, so node
 * ids made up by a misbehaving fleet (or a token holder) cannot pile up. A NACK's reason is kept
 * to 2 KB.
 *
 * The table is written behind: changes are gathered and written at most every PERSIST_MS, in
 * one transaction (and at shutdown). A fleet of 100 balancers acknowledging each revision made
 * 100 upserts per write, whose CPU competed with the balancers for the same cores; what is lost
 * to a kill -9 is at most that window of node state, which the balancers restore on reconnect.
 */
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { StatsReport } from '#proto';
import { ConvergenceService } from '../config/convergence.service';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';
// The SQL tag of the SQLite client; it is the runtime's, which both clients share (e2e-tested on both).
import { Prisma } from '../generated/prisma/client';
import { PrismaService } from '../store/prisma.service';

export const MAX_DISCONNECTED = 1000;
const MAX_NACK_CHARS = 2048;
/** Node state is written to the table at most this often. */
const PERSIST_MS = 500;
/** Nodes per upsert statement (6 parameters each: far below SQLite's and PostgreSQL's limits). */
const UPSERT_ROWS = 500;

export interface NodeView {
  nodeId: string;
  connected: boolean;
  connectedSince: string | null;
  lastSeen: string;
  appliedRevision: number | null;
  lastNack: string | null;
}

export interface NodeReport {
  nodeId: string;
  receivedAt: number;
  report: StatsReport;
  /** The report before, for rates. */
  previous?: StatsReport;
}

@Injectable()
export class NodesService implements OnModuleInit, OnModuleDestroy {
  private readonly nodes = new Map<string, NodeView>();
  private readonly reports = new Map<string, NodeReport>();
  /** One live stream per node id; a reconnect replaces the old one. */
  private readonly sessions = new Map<string, symbol>();
  private readonly retentionMs: number;
  private readonly dirty = new Set<string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly prisma: PrismaService,
    convergence: ConvergenceService,
    @Inject(ADMIN_SETTINGS) settings: AdminSettings,
  ) {
    this.retentionMs = settings.nodeRetentionMs ?? 3_600_000;
    convergence.useNodes(() => [...this.nodes.values()]);
  }

  async onModuleInit(): Promise<void> {
    // Nobody is connected to a process that just started.
    await this.prisma.node.updateMany({ data: { connected: false, connectedSince: null } });
    for (const n of await this.prisma.node.findMany()) {
      this.nodes.set(n.nodeId, { nodeId: n.nodeId, connected: false, connectedSince: null, lastSeen: n.lastSeen.toISOString(), appliedRevision: n.appliedRevision, lastNack: n.lastNack });
    }
  }

  list(): NodeView[] {
    this.forgetStale();
    return [...this.nodes.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  }

  /** Forgets disconnected nodes past the retention, and the oldest past MAX_DISCONNECTED. */
  private forgetStale(): void {
    const cutoff = Date.now() - this.retentionMs;
    const disconnected = [...this.nodes.values()].filter((n) => !n.connected).sort((a, b) => (a.lastSeen < b.lastSeen ? -1 : 1));
    const excess = disconnected.length - MAX_DISCONNECTED;
    const gone = disconnected.filter((n, i) => i < excess || Date.parse(n.lastSeen) < cutoff).map((n) => n.nodeId);
    if (gone.length === 0) return;
    for (const id of gone) this.nodes.delete(id);
    this.prisma.node.deleteMany({ where: { nodeId: { in: gone }, connected: false } }).catch(() => undefined);
  }

  get(nodeId: string): NodeView | undefined {
    return this.nodes.get(nodeId);
  }

  connected(nodeId: string, appliedRevision: number): symbol {
    const now = new Date().toISOString();
    const session = Symbol(nodeId);
    this.sessions.set(nodeId, session);
    const prior = this.nodes.get(nodeId);
    this.nodes.set(nodeId, { nodeId, connected: true, connectedSince: now, lastSeen: now, appliedRevision: appliedRevision > 0 ? appliedRevision : (prior?.appliedRevision ?? null), lastNack: prior?.lastNack ?? null });
    this.persist(nodeId);
    this.forgetStale();
    return session;
  }

  disconnected(nodeId: string, session: symbol): void {
    if (this.sessions.get(nodeId) !== session) return; // a newer stream of the same node took over
    this.sessions.delete(nodeId);
    const node = this.nodes.get(nodeId);
    if (!node) return;
    node.connected = false;
    node.connectedSince = null;
    this.reports.delete(nodeId);
    this.persist(nodeId);
  }

  acked(nodeId: string, revision: number): void {
    const node = this.touch(nodeId);
    if (!node) return;
    node.appliedRevision = revision;
    this.persist(nodeId);
  }

  nacked(nodeId: string, revision: number, reason: string): void {
    const node = this.touch(nodeId);
    if (!node) return;
    node.lastNack = `revision ${revision}: ${reason.length > MAX_NACK_CHARS ? `${reason.slice(0, MAX_NACK_CHARS)}...` : reason}`;
    this.persist(nodeId);
  }

  reported(nodeId: string, report: StatsReport): void {
    this.touch(nodeId);
    const prior = this.reports.get(nodeId);
    this.reports.set(nodeId, { nodeId, receivedAt: Date.now(), report, ...(prior ? { previous: prior.report } : {}) });
  }

  latestReports(): NodeReport[] {
    return [...this.reports.values()];
  }

  private touch(nodeId: string): NodeView | undefined {
    const node = this.nodes.get(nodeId);
    if (node) node.lastSeen = new Date().toISOString();
    return node;
  }

  private persist(nodeId: string): void {
    this.dirty.add(nodeId);
    this.flushTimer ??= setTimeout(() => void this.flush(), PERSIST_MS);
  }

  /**
   * Writes the nodes changed since the last flush: one INSERT ... ON CONFLICT statement per
   * UPSERT_ROWS nodes (the same SQL on SQLite and PostgreSQL), in one transaction. One Prisma
   * upsert per node cost the admin ~1 ms of CPU each (Prisma compiles every query), so a fleet
   * of 50 acknowledging a revision took ~50 ms of CPU per flush.
   */
  private flush(): Promise<void> {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const ids = [...this.dirty];
    this.dirty.clear();
    const rows = ids.flatMap((nodeId) => {
      const n = this.nodes.get(nodeId);
      return n ? [Prisma.sql`(${nodeId}, ${n.connected}, ${n.connectedSince ? new Date(n.connectedSince) : null}, ${new Date(n.lastSeen)}, ${n.appliedRevision}, ${n.lastNack})`] : [];
    });
    if (rows.length === 0) return this.flushing;
    const statements: Prisma.Sql[] = [];
    for (let i = 0; i < rows.length; i += UPSERT_ROWS) {
      statements.push(Prisma.sql`INSERT INTO "Node" ("nodeId", "connected", "connectedSince", "lastSeen", "appliedRevision", "lastNack") VALUES ${Prisma.join(rows.slice(i, i + UPSERT_ROWS))}
        ON CONFLICT ("nodeId") DO UPDATE SET "connected" = excluded."connected", "connectedSince" = excluded."connectedSince", "lastSeen" = excluded."lastSeen", "appliedRevision" = excluded."appliedRevision", "lastNack" = excluded."lastNack"`);
    }
    this.flushing = this.flushing.then(() => this.prisma.$transaction(statements.map((q) => this.prisma.$executeRaw(q))).then(() => undefined, () => undefined));
    return this.flushing;
  }

  async onModuleDestroy(): Promise<void> {
    await this.flush();
  }
}
