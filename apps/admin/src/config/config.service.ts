/**
 * The one place where the configuration changes. Every write (a REST resource call, a whole
 * config apply, a rollback) is a function from the current config to the next one, run under a
 * lock so that its preconditions (If-Match, existence) are checked against the state it
 * changes: concurrent writers are serialised and never lose an update. The result is validated
 * as a whole with the schema the balancers use, so nothing the API accepts can be rejected by a
 * balancer for its shape; an unchanged config is a no-op (no revision), otherwise the changed
 * rows and one new revision are committed in one transaction and subscribers (the control
 * plane) are told.
 *
 * The current config is kept in memory and replaced after each commit: reads never touch the
 * database. One admin process owns a database file.
 */
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { canonicalConfig, diffConfigs, validateConfig, type ConfigDiff, type ConfigError, type SwitchboardConfig } from '#config';
import { ValidationProblem, type FieldError, ProblemException } from '../http/problem';
import { ConfigRepository } from '../store/config-repository';

export interface ConfigState {
  readonly revision: number;
  readonly config: SwitchboardConfig;
}

export interface CommitResult {
  state: ConfigState;
  diff: ConfigDiff;
  /** false: the change was a no-op and no revision was made. */
  changed: boolean;
}

export interface CommitOptions {
  author: string;
  /** A note stored with the revision; a function is called after `change` ran. */
  message?: string | (() => string);
  rollbackOf?: number;
  /** Renames whole-config error paths for the resource being written (`pools[2].weight` -> `weight`). */
  errorPath?: (error: ConfigError) => string;
}

export type CommitListener = (state: ConfigState, diff: ConfigDiff) => void;

/** The largest configuration a balancer can receive in one snapshot: gRPC's 4 MiB message limit, less room for the envelope. */
export const MAX_PUSHED_CONFIG_BYTES = 4 * 1024 * 1024 - 64 * 1024;

@Injectable()
export class ConfigService implements OnModuleInit {
  private state: ConfigState = { revision: 0, config: { healthPolicies: [], pools: [] } };
  private lock: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<CommitListener>();

  constructor(private readonly repository: ConfigRepository) {}

  async onModuleInit(): Promise<void> {
    this.state = await this.repository.loadCurrent();
  }

  current(): ConfigState {
    return this.state;
  }

  onCommit(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The diff `desired` would make, and the validated canonical form of it; changes nothing. */
  plan(desired: unknown, errorPath?: (e: ConfigError) => string): { config: SwitchboardConfig; diff: ConfigDiff } {
    const config = this.validate(desired, errorPath);
    return { config, diff: diffConfigs(this.state.config, config) };
  }

  /** Runs `change` on the current config under the write lock and commits its result. */
  commit(change: (current: ConfigState) => unknown, options: CommitOptions): Promise<CommitResult> {
    const run = this.lock.then(async (): Promise<CommitResult> => {
      const before = this.state;
      const next = this.validate(change(before), options.errorPath);
      const diff = diffConfigs(before.config, next);
      if (diff.changes.length === 0) return { state: before, diff, changed: false };
      const bytes = Buffer.byteLength(JSON.stringify(next));
      if (bytes > MAX_PUSHED_CONFIG_BYTES) {
        // A revision no balancer can receive (gRPC's 4 MiB message limit) must not be committed.
        throw new ProblemException(
          413,
          'config-too-large',
          'Configuration too large',
          `the configuration would be ${bytes} bytes; balancers receive at most ${MAX_PUSHED_CONFIG_BYTES} bytes per snapshot, so this change is refused and nothing changed`,
          { bytes, limit: MAX_PUSHED_CONFIG_BYTES },
        );
      }
      const revision = before.revision + 1;
      const message = typeof options.message === 'function' ? options.message() : options.message;
      await this.repository.commit(revision, next, diff, { author: options.author, ...(message !== undefined ? { message } : {}), ...(options.rollbackOf !== undefined ? { rollbackOf: options.rollbackOf } : {}) });
      this.state = { revision, config: next };
      for (const listener of this.listeners) listener(this.state, diff);
      return { state: this.state, diff, changed: true };
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  private validate(value: unknown, errorPath?: (e: ConfigError) => string): SwitchboardConfig {
    const result = validateConfig(value);
    if (!result.ok) {
      const errors: FieldError[] = result.errors.map((e) => ({ path: errorPath ? errorPath(e) : e.path, message: e.message }));
      throw new ValidationProblem(errors, 'Invalid configuration');
    }
    return canonicalConfig(result.config);
  }
}
