/**
 * The balancers (nodes) the control plane knows: connection state, applied revision, last NACK
 * (persisted in the Node table, so `GET /v1/nodes` survives an admin restart) and their latest
 * stats reports (in memory: they are live figures, refreshed every few seconds).
 */
import { Injectable, type OnModuleInit } from '@nestjs/common';
import type { StatsReport } from '../../../../libs/proto/src';
import { ConvergenceService } from '../config/convergence.service';
import { PrismaService } from '../store/prisma.service';

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
export class NodesService implements OnModuleInit {
  private readonly nodes = new Map<string, NodeView>();
  private readonly reports = new Map<string, NodeReport>();
  /** One live stream per node id; a reconnect replaces the old one. */
  private readonly sessions = new Map<string, symbol>();

  constructor(
    private readonly prisma: PrismaService,
    convergence: ConvergenceService,
  ) {
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
    return [...this.nodes.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
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
    node.lastNack = `revision ${revision}: ${reason}`;
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
    const n = this.nodes.get(nodeId)!;
    const row = { connected: n.connected, connectedSince: n.connectedSince ? new Date(n.connectedSince) : null, lastSeen: new Date(n.lastSeen), appliedRevision: n.appliedRevision, lastNack: n.lastNack };
    this.prisma.node.upsert({ where: { nodeId }, create: { nodeId, ...row }, update: row }).catch(() => undefined);
  }
}
