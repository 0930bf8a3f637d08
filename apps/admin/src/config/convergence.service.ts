/**
 * Whether a revision has converged: every connected balancer has applied it or a later one.
 * The control plane (issue 4) reports node state here; until a node connects every revision
 * counts as converged (there is nobody left to tell).
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
