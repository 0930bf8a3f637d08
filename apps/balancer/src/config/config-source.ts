/**
 * Where configuration revisions come from. The balancer only implements ConfigSink; a source
 * pushes validated revisions into it. The file source is here; the admin service's control-plane
 * stream is another source behind the same seam.
 */
import type { SwitchboardConfig } from '#config';

export interface ConfigSink {
  /**
   * Applies a revision, or throws or rejects (and keeps the current one) when it cannot. A
   * multi-worker balancer resolves once every worker applied it.
   */
  apply(config: SwitchboardConfig, revision: number): void | Promise<void>;
  /** A revision the source could not offer (unreadable, invalid); the current one keeps serving. */
  reject(reason: string): void;
}

export interface ConfigSource {
  /** Resolves once the first revision was applied; rejects if there is none to apply. */
  start(sink: ConfigSink): Promise<void>;
  stop(): void;
  /** Resolves once what the source still writes (a stored snapshot) is on disk. */
  flushed?(): Promise<void>;
}
