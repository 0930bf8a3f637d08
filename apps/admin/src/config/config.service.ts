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
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { applyPatches, canonicalConfig, configJsonBytes, configTag, diffConfigs, patchFromDiff, validateConfigSteps, type ConfigDiff, type ConfigError, type ConfigPatch, type SwitchboardConfig } from '#config';
import { ValidationProblem, type FieldError, ProblemException } from '../http/problem';
import { CommitNotifier, type CommitNotice } from '../store/commit-notifier';
import { ConfigRepository } from '../store/config-repository';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';

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

/** A committed change as the control plane pushes it: the whole new config, or the patch from `base`. */
export interface CommitEvent {
  state: ConfigState;
  diff: ConfigDiff;
  /** The revision `patch` applies to (the one before, or older when another admin's commits are caught up with at once). */
  base: number;
  patch: ConfigPatch;
  /** configTag of `state.config` (GET /v1/config's ETag): a balancer checks the config a patch gave it against this. */
  hash(): string;
}

export type CommitListener = (event: CommitEvent) => void;

/**
 * The largest configuration the admin keeps. Balancers get it in parts (no gRPC message limit
 * applies), so this bounds memory: the admin and every balancer hold it, parsed, and its JSON.
 */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/**
 * How often an admin on a shared (PostgreSQL) database looks for revisions committed by the
 * others, besides being told at once (LISTEN/NOTIFY): what a lost notification costs at most.
 */
const CATCH_UP_MS = 1000;
/**
 * A revision the periodic look finds is usually being notified at that moment (NOTIFY goes out
 * right after the commit): the look leaves it that long to the notification, which applies it
 * without reading the database, before reading it itself.
 */
const NOTICE_GRACE_MS = 250;

@Injectable()
export class ConfigService implements OnModuleInit, OnModuleDestroy {
  private state: ConfigState = { revision: 0, config: { healthPolicies: [], pools: [] } as SwitchboardConfig };
  private lock: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<CommitListener>();
  private catchUpTimer: NodeJS.Timeout | null = null;
  private looking = false;
  /** On PostgreSQL several admins may share the database: each hears of (and catches up with) the others' commits. Null on SQLite. */
  private readonly notifier: CommitNotifier | null;

  constructor(
    private readonly repository: ConfigRepository,
    @Inject(ADMIN_SETTINGS) settings: AdminSettings,
  ) {
    this.notifier =
      settings.database.kind === 'postgresql'
        ? new CommitNotifier(settings.database.url, settings.logger, (notice) => {
            if (notice.revision > this.state.revision) this.scheduleCatchUp(notice);
          })
        : null;
  }

  async onModuleInit(): Promise<void> {
    this.state = await this.repository.loadCurrent();
    if (this.notifier !== null) {
      // Others may commit while this one reads the tables: settle on the newest revision's own copy.
      this.state = { revision: 0, config: this.state.config };
      await this.catchUp();
      await this.notifier.start();
      this.catchUpTimer = setInterval(() => void this.lookForCommits(), CATCH_UP_MS);
      this.catchUpTimer.unref();
    }
  }

  async onModuleDestroy(): Promise<void> {
    if (this.catchUpTimer !== null) clearInterval(this.catchUpTimer);
    await this.notifier?.stop();
  }

  /**
   * The periodic look for revisions whose notification was lost. It reads outside the write lock
   * and takes it only to catch up: a look that held the lock while the database answered (over
   * 150 ms with a fleet's balancers busy on the same cores) held back the notification that came
   * meanwhile, and with it this admin's balancers.
   */
  private async lookForCommits(): Promise<void> {
    if (this.looking) return;
    this.looking = true;
    try {
      const latest = await this.repository.latestRevision();
      if (latest <= this.state.revision) return;
      await new Promise((resolve) => setTimeout(resolve, NOTICE_GRACE_MS).unref());
      if (latest > this.state.revision) this.scheduleCatchUp();
    } catch {
      // The database is away: the next look, or the next write, catches up.
    } finally {
      this.looking = false;
    }
  }

  private scheduleCatchUp(notice?: CommitNotice): void {
    this.lock = this.lock
      .then(() => {
        // Taken in meanwhile: this admin's own commit (its NOTIFY comes back to it too), or an earlier catch-up.
        if (notice !== undefined && notice.revision <= this.state.revision) return;
        return notice?.delta !== undefined ? this.applyNotice(notice) : this.catchUp();
      })
      .catch(() => undefined);
  }

  /**
   * Another admin's commit, with its patch in the notification: applied without reading the
   * database when this admin runs its base (validated all the same); otherwise, and on any
   * doubt, caught up with from the database.
   */
  private async applyNotice(notice: CommitNotice): Promise<void> {
    const { base, patchJson } = notice.delta!;
    if (notice.revision !== base + 1 || base !== this.state.revision) return this.catchUp();
    try {
      const patch = JSON.parse(patchJson) as ConfigPatch;
      const result = await validateConfigSteps(applyPatches(this.state.config, [patch]), this.state.config);
      if (!result.ok) return this.catchUp();
      this.advance(notice.revision, canonicalConfig(result.config), patch);
    } catch {
      return this.catchUp();
    }
  }

  /**
   * Loads what other admins committed since this one last looked, and tells the listeners (the
   * control plane pushes it to this admin's balancers). Runs under the write lock.
   */
  private async catchUp(): Promise<void> {
    const latest = await this.repository.latestRevision();
    if (latest <= this.state.revision) return;
    // Read from the revision rows, one consistent read (the resource tables, read table by table,
    // could mix two commits made meanwhile): the patches after this admin's revision, or the
    // newest revision's config when a checkpoint lies between.
    const patches = this.state.revision > 0 ? await this.repository.patches(this.state.revision, latest) : undefined;
    if (patches !== undefined) return this.advance(latest, applyPatches(this.state.config, patches), patches.length === 1 ? patches[0] : undefined);
    const stored = await this.repository.config(latest);
    if (stored !== undefined) this.advance(latest, canonicalConfig(stored));
  }

  /** Another admin's commit(s) taken in: this admin now runs `revision` and pushes it. */
  private advance(revision: number, config: SwitchboardConfig, patch?: ConfigPatch): void {
    const diff = diffConfigs(this.state.config, config);
    this.publish(this.state.revision, { revision, config }, diff, patch ?? patchFromDiff(config, diff));
  }

  private publish(base: number, state: ConfigState, diff: ConfigDiff, patch: ConfigPatch): void {
    this.state = state;
    if (this.listeners.size === 0) return;
    const event: CommitEvent = { state, diff, base, patch, hash: () => configTag(state.config) };
    for (const listener of this.listeners) listener(event);
  }

  current(): ConfigState {
    return this.state;
  }

  onCommit(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The diff `desired` would make, and the validated canonical form of it; changes nothing. */
  async plan(desired: unknown, errorPath?: (e: ConfigError) => string): Promise<{ config: SwitchboardConfig; diff: ConfigDiff }> {
    const current = this.state.config;
    const config = await this.validate(desired, current, errorPath);
    return { config, diff: diffConfigs(current, config) };
  }

  /** Runs `change` on the current config under the write lock and commits its result. */
  commit(change: (current: ConfigState) => unknown, options: CommitOptions): Promise<CommitResult> {
    const run = this.lock.then(async (): Promise<CommitResult> => {
      // Another admin may have committed since: change what is really current (If-Match too).
      if (this.notifier !== null) await this.catchUp();
      const before = this.state;
      const next = await this.validate(change(before), before.config, options.errorPath);
      // Each step of a whole-config write (validate's last pass, diff, measure: 5-30 ms each at
      // 10,000 backends, more while the JIT is cold) gets an event-loop turn of its own, so other
      // requests and the control plane wait for one step, not for their sum.
      await nextTurn();
      const diff = diffConfigs(before.config, next);
      if (diff.changes.length === 0) return { state: before, diff, changed: false };
      await nextTurn();
      // Measured, not serialised: the JSON is made when a checkpoint or a balancer's snapshot needs it (configJson).
      const bytes = configJsonBytes(next);
      if (bytes > MAX_CONFIG_BYTES) {
        throw new ProblemException(
          413,
          'config-too-large',
          'Configuration too large',
          `the configuration would be ${bytes} bytes; the admin keeps configurations of at most ${MAX_CONFIG_BYTES} bytes (16 MiB), so this change is refused and nothing changed`,
          { bytes, limit: MAX_CONFIG_BYTES },
        );
      }
      await nextTurn();
      const revision = before.revision + 1;
      const patch = patchFromDiff(next, diff);
      const message = typeof options.message === 'function' ? options.message() : options.message;
      try {
        await this.repository.commit(revision, { next, bytes, diff, patch }, { author: options.author, ...(message !== undefined ? { message } : {}), ...(options.rollbackOf !== undefined ? { rollbackOf: options.rollbackOf } : {}) });
      } catch (err) {
        // Another admin committed this revision number first (the whole transaction rolled back).
        if (this.notifier !== null && (err as { code?: string }).code === 'P2002') {
          await this.catchUp();
          throw new ProblemException(409, 'concurrent-commit', 'Concurrent change', `another admin committed revision ${revision} first; nothing was written: read the current state and retry`);
        }
        throw err;
      }
      // The other admins first: pushing to this admin's balancers wakes them all, and a NOTIFY sent
      // alongside waited behind them for the CPU (PostgreSQL's processes too), so the other
      // admins' balancers started 100-250 ms late with a fleet on the same cores. So this admin
      // pushes once its NOTIFY came back to it (a round trip or two; at most 50 ms).
      await this.notifier?.notify(revision, before.revision, JSON.stringify(patch));
      this.publish(before.revision, { revision, config: next }, diff, patch);
      return { state: this.state, diff, changed: true };
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  /**
   * Validated with the balancers' schema, reusing the resources `known` has (a one-backend write
   * checks that backend), in slices that let other requests in: a whole 10,000-backend config
   * does not hold the event loop.
   */
  private async validate(value: unknown, known: SwitchboardConfig, errorPath?: (e: ConfigError) => string): Promise<SwitchboardConfig> {
    const result = await validateConfigSteps(value, known);
    if (!result.ok) {
      const errors: FieldError[] = result.errors.map((e) => ({ path: errorPath ? errorPath(e) : e.path, message: e.message }));
      throw new ValidationProblem(errors, 'Invalid configuration');
    }
    return canonicalConfig(result.config);
  }
}
