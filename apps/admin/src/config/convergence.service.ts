/**
 * Whether a revision has converged: every connected balancer runs it or a later one. The
 * control plane's NodesService is the source of node state (registered at start, so the REST
 * side does not depend on the gRPC side); with no balancer connected every revision counts as
 * converged (there is nobody left to tell).
 */
import { Injectable } from '@nestjs/common';

export interface NodeRevision {
  connected: boolean;
  appliedRevision: number | null;
}

@Injectable()
export class ConvergenceService {
  private nodes: () => readonly NodeRevision[] = () => [];

  /** The control plane registers where node state comes from. */
  useNodes(source: () => readonly NodeRevision[]): void {
    this.nodes = source;
  }

  converged(revision: number): boolean {
    return this.nodes().every((n) => !n.connected || (n.appliedRevision ?? 0) >= revision);
  }
}
