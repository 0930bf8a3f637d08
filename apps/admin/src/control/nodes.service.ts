/**
 * The balancers (nodes) the control plane knows: connection state, applied revision, last NACK
 * (persisted in the Node table, so `GET /v1/nodes` survives an admin restart) and their latest
 * stats reports (in memory: they are live figures, refreshed every few seconds).
 *
 * A node is a stream. One node id has at most one live stream across the fleet: a second hello
 * with an id that is connected (here, or to another admin sharing the database) is refused, so
 * neither an impostor nor a second balancer started with the same `--node-id` can speak for it.
 * What a stream says (acks, NACKs, reports) is kept against that stream's session alone.
 *
 * One fleet: admins that share a PostgreSQL database write which admin each node is connected
 * to, refresh the `lastSeen` of their connected nodes every HEARTBEAT_MS, and read the other
 * admins' nodes every FLEET_READ_MS (their latest stats reports every REPORT_READ_MS). A node
 * whose admin has not refreshed it for FLEET_STALE_MS counts as disconnected (its admin died).
 * So every admin lists every balancer, and `converged` is the fleet's.
 *
 * Bounded: a disconnected node is forgotten `nodeRetentionMs` after it was last seen (memory and
 * table alike), and at most MAX_DISCONNECTED of them are kept, oldest forgotten first, so node
 * ids made up by a misbehaving fleet (or a token holder) cannot pile up. A NACK's reason is kept
 * to 2 KB, without NUL characters (PostgreSQL's text refuses them).
 *
 * The table is written behind: changes are gathered and written at most every PERSIST_MS, in
 * one transaction (and at shutdown). A batch that fails (the database is away) is written again
 * with the next one, never dropped.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
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
/** Nodes per upsert statement (8 parameters each: far below SQLite's and PostgreSQL's limits). */
const UPSERT_ROWS = 500;
/** A connected node's lastSeen is written at least this often (the other admins' proof that its admin lives). */
const HEARTBEAT_MS = 2_000;
/** The other admins' nodes are read this often (shared database only). */
const FLEET_READ_MS = 1_000;
/** Their stats reports, this often; a node's report is written at most this often too. */
const REPORT_READ_MS = 5_000;
/** Another admin's node not refreshed for this long counts as disconnected. */
export const FLEET_STALE_MS = 10_000;

export interface NodeView {
  nodeId: string;
  /** A balancer (the control-plane protocol); xDS clients are listed by the xDS server. */
  kind?: 'balancer';
  connected: boolean;
  connectedSince: string | null;
  lastSeen: string;
  appliedRevision: number | null;
  lastNack: string | null;
  /** The admin the node is (or was last) connected to. */
  admin: string | null;
}

export interface NodeReport {
  nodeId: string;
  receivedAt: number;
  report: StatsReport;
  /** The report before, for rates. */
  previous?: StatsReport;
}

/** One stream's hold on a node id. */
export interface NodeSession {
  readonly nodeId: string;
  readonly peer: string;
}

interface OwnNode extends NodeView {
  /** When lastSeen was last written. */
  persistedAt: number;
  /** When the report was last written (shared database). */
  reportPersistedAt: number;
}

interface NodeRow {
  nodeId: string;
  connected: boolean;
  connectedSince: Date | null;
  lastSeen: Date;
  appliedRevision: number | null;
  lastNack: string | null;
  adminId: string | null;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** Text PostgreSQL can store: no NUL. */
export function storableText(s: string): string {
  return s.includes('\u0000') ? s.replaceAll('\u0000', '\uFFFD') : s;
}

@Injectable()
export class NodesService implements OnModuleInit, OnModuleDestroy {
  /** The nodes of this admin: connected, or remembered. */
  private readonly nodes = new Map<string, OwnNode>();
  private readonly reports = new Map<string, NodeReport>();
  /** The live stream of each connected node id. */
  private readonly sessions = new Map<string, NodeSession>();
  /** The other admins' nodes and reports, as last read (shared database). */
  private others = new Map<string, NodeView>();
  private otherReports = new Map<string, NodeReport>();
  private readonly retentionMs: number;
  private readonly dirty = new Set<string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private fleetTimer: NodeJS.Timeout | null = null;
  private lastReportRead = 0;
  private readonly shared: boolean;
  /** This admin's name in the Node table: host, HTTP port and a random part. */
  readonly adminId: string;

  constructor(
    private readonly prisma: PrismaService,
    convergence: ConvergenceService,
    @Inject(ADMIN_SETTINGS) private readonly settings: AdminSettings,
  ) {
    this.retentionMs = settings.nodeRetentionMs ?? 3_600_000;
    this.shared = settings.database.kind === 'postgresql';
    this.adminId = `${hostname()}:${settings.http.port}/${randomBytes(3).toString('hex')}`;
    convergence.useNodes(() => this.fleet());
  }

  async onModuleInit(): Promise<void> {
    // Nobody is connected to a process that just started; on a shared database, other admins' nodes stay theirs.
    const rows = await this.readRows();
    if (!this.shared) await this.prisma.node.updateMany({ data: { connected: false, connectedSince: null } });
    for (const n of rows) {
      if (this.shared && n.adminId !== null && n.adminId !== this.adminId && Boolean(n.connected)) continue;
      this.nodes.set(n.nodeId, { ...this.viewOf(n), connected: false, connectedSince: null, persistedAt: 0, reportPersistedAt: 0 });
    }
    if (this.shared) {
      this.absorb(rows);
      this.fleetTimer = setInterval(() => void this.readFleet(), FLEET_READ_MS);
      this.fleetTimer.unref();
    }
  }

  private viewOf(n: NodeRow): NodeView {
    return { nodeId: n.nodeId, connected: Boolean(n.connected), connectedSince: iso(n.connectedSince), lastSeen: iso(n.lastSeen)!, appliedRevision: n.appliedRevision, lastNack: n.lastNack, admin: n.adminId };
  }

  private readRows(): Promise<NodeRow[]> {
    return this.prisma.node.findMany({ select: { nodeId: true, connected: true, connectedSince: true, lastSeen: true, appliedRevision: true, lastNack: true, adminId: true } });
  }

  /** Takes in the other admins' nodes from the table's rows. */
  private absorb(rows: NodeRow[]): void {
    const now = Date.now();
    const others = new Map<string, NodeView>();
    for (const r of rows) {
      if (r.adminId === this.adminId || r.adminId === null) continue;
      const view = this.viewOf(r);
      // Its admin stopped refreshing it: that admin is gone, and so is the node's stream.
      if (view.connected && now - Date.parse(view.lastSeen) > FLEET_STALE_MS) {
        view.connected = false;
        view.connectedSince = null;
      }
      others.set(r.nodeId, view);
    }
    this.others = others;
  }

  private async readFleet(): Promise<void> {
    try {
      this.heartbeat();
      this.absorb(await this.readRows());
      if (Date.now() - this.lastReportRead >= REPORT_READ_MS) {
        this.lastReportRead = Date.now();
        const rows = await this.prisma.node.findMany({ where: { connected: true, report: { not: null }, NOT: { adminId: this.adminId } }, select: { nodeId: true, adminId: true, report: true } });
        const reports = new Map<string, NodeReport>();
        for (const r of rows) {
          if (r.adminId === this.adminId || r.report === null || !this.others.get(r.nodeId)?.connected) continue;
          try {
            const parsed = JSON.parse(r.report) as NodeReport;
            const prior = this.otherReports.get(r.nodeId);
            reports.set(r.nodeId, { nodeId: r.nodeId, receivedAt: parsed.receivedAt, report: parsed.report, ...(prior && prior.report.atMs < parsed.report.atMs ? { previous: prior.report } : prior?.previous ? { previous: prior.previous } : {}) });
          } catch {
            // A report another admin wrote is checked already; one unreadable is skipped.
          }
        }
        this.otherReports = reports;
      }
    } catch (err) {
      this.settings.logger.warn({ err: (err as Error).message }, 'could not read the other admins\' balancers; keeping what was read last');
    }
  }

  /** Every node of the fleet this admin knows: its own, then the other admins' (shared database). */
  private fleet(): NodeView[] {
    const all = new Map<string, NodeView>(this.others);
    for (const n of this.nodes.values()) {
      const other = all.get(n.nodeId);
      if (other === undefined || n.connected || (!other.connected && other.lastSeen <= n.lastSeen)) all.set(n.nodeId, n);
    }
    return [...all.values()];
  }

  list(): NodeView[] {
    this.forgetStale();
    return this.fleet()
      .map(({ nodeId, connected, connectedSince, lastSeen, appliedRevision, lastNack, admin }) => ({ nodeId, kind: 'balancer' as const, connected, connectedSince, lastSeen, appliedRevision, lastNack, admin }))
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
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
    return this.fleet().find((n) => n.nodeId === nodeId);
  }

  /**
   * A stream says hello as `nodeId`: its session, or why it is refused (the id has a live
   * stream here or on another admin).
   */
  connect(nodeId: string, appliedRevision: number, from: { peer: string; tokenId: string }): NodeSession | string {
    const live = this.sessions.get(nodeId);
    if (live !== undefined) return `node id "${nodeId}" is already connected (from ${live.peer}); a node id has one stream: give each balancer its own --node-id`;
    const elsewhere = this.others.get(nodeId);
    if (elsewhere?.connected) return `node id "${nodeId}" is already connected to admin ${elsewhere.admin ?? '?'}; a node id has one stream: give each balancer its own --node-id`;
    const now = new Date().toISOString();
    const session: NodeSession = { nodeId, peer: from.peer };
    this.sessions.set(nodeId, session);
    const prior = this.nodes.get(nodeId) ?? elsewhere;
    this.nodes.set(nodeId, {
      nodeId,
      connected: true,
      connectedSince: now,
      lastSeen: now,
      appliedRevision: appliedRevision > 0 ? appliedRevision : null,
      lastNack: prior?.lastNack ?? null,
      admin: this.adminId,
      persistedAt: Date.now(),
      reportPersistedAt: 0,
    });
    this.others.delete(nodeId);
    this.persist(nodeId);
    this.forgetStale();
    return session;
  }

  /** The node of a live session (undefined once it is over). */
  private live(session: NodeSession): OwnNode | undefined {
    if (this.sessions.get(session.nodeId) !== session) return undefined;
    const node = this.nodes.get(session.nodeId);
    if (node) node.lastSeen = new Date().toISOString();
    return node;
  }

  disconnected(session: NodeSession): void {
    const node = this.live(session);
    this.sessions.delete(session.nodeId);
    if (!node) return;
    node.connected = false;
    node.connectedSince = null;
    this.reports.delete(session.nodeId);
    this.persist(session.nodeId);
  }

  acked(session: NodeSession, revision: number): void {
    const node = this.live(session);
    if (!node) return;
    node.appliedRevision = revision;
    this.persist(session.nodeId);
  }

  nacked(session: NodeSession, revision: number, reason: string): void {
    const node = this.live(session);
    if (!node) return;
    const text = storableText(reason);
    node.lastNack = `revision ${revision}: ${text.length > MAX_NACK_CHARS ? `${text.slice(0, MAX_NACK_CHARS)}...` : text}`;
    this.persist(session.nodeId);
  }

  /** A checked report (stats-report-check.ts) of a live session. */
  reported(session: NodeSession, report: StatsReport): void {
    const node = this.live(session);
    if (!node) return;
    const prior = this.reports.get(session.nodeId);
    this.reports.set(session.nodeId, { nodeId: session.nodeId, receivedAt: Date.now(), report, ...(prior ? { previous: prior.report } : {}) });
    if (this.shared && Date.now() - node.reportPersistedAt >= REPORT_READ_MS) this.persist(session.nodeId);
  }

  /** The latest report of every connected node of the fleet. */
  latestReports(): NodeReport[] {
    const own = [...this.reports.values()];
    if (this.otherReports.size === 0) return own;
    return [...own, ...[...this.otherReports.values()].filter((r) => !this.reports.has(r.nodeId))];
  }

  /** Connected nodes whose lastSeen was written too long ago are written again. */
  private heartbeat(): void {
    const now = Date.now();
    for (const n of this.nodes.values()) {
      if (!n.connected || now - n.persistedAt < HEARTBEAT_MS) continue;
      n.lastSeen = new Date(now).toISOString();
      this.persist(n.nodeId);
    }
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
    const now = Date.now();
    const rows = ids.flatMap((nodeId) => {
      const n = this.nodes.get(nodeId);
      if (!n) return [];
      n.persistedAt = now;
      const report = this.shared ? this.reports.get(nodeId) : undefined;
      if (report !== undefined) n.reportPersistedAt = now;
      const reportJson = report !== undefined ? JSON.stringify({ receivedAt: report.receivedAt, report: report.report }) : null;
      return [Prisma.sql`(${nodeId}, ${n.connected}, ${n.connectedSince ? new Date(n.connectedSince) : null}, ${new Date(n.lastSeen)}, ${n.appliedRevision}, ${n.lastNack}, ${this.adminId}, ${reportJson})`];
    });
    if (rows.length === 0) return this.flushing;
    const statements: Prisma.Sql[] = [];
    for (let i = 0; i < rows.length; i += UPSERT_ROWS) {
      statements.push(Prisma.sql`INSERT INTO "Node" ("nodeId", "connected", "connectedSince", "lastSeen", "appliedRevision", "lastNack", "adminId", "report") VALUES ${Prisma.join(rows.slice(i, i + UPSERT_ROWS))}
        ON CONFLICT ("nodeId") DO UPDATE SET "connected" = excluded."connected", "connectedSince" = excluded."connectedSince", "lastSeen" = excluded."lastSeen", "appliedRevision" = excluded."appliedRevision", "lastNack" = excluded."lastNack", "adminId" = excluded."adminId", "report" = COALESCE(excluded."report", "Node"."report")`);
    }
    this.flushing = this.flushing.then(() =>
      this.prisma.$transaction(statements.map((q) => this.prisma.$executeRaw(q))).then(
        () => undefined,
        (err: Error) => {
          // Kept for the next flush: node state is not lost to a database that is away for a while.
          this.settings.logger.warn({ err: err.message, nodes: ids.length }, 'could not write node state; retrying');
          for (const id of ids) this.dirty.add(id);
          if (!this.stopping) this.flushTimer ??= setTimeout(() => void this.flush(), PERSIST_MS * 4);
        },
      ),
    );
    return this.flushing;
  }

  private stopping = false;

  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    if (this.fleetTimer !== null) clearInterval(this.fleetTimer);
    await this.flush();
  }
}
