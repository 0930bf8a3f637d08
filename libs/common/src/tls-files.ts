/**
 * Certificate and key files that are re-read without a restart: on `reload()` (SIGHUP) and when
 * any of them changes on disk (polled with fs.watchFile, which follows a path through atomic
 * renames and symlink swaps, the way certificate managers rotate files). A new set is applied
 * only once it forms a valid TLS context (PEM parses, key matches certificate); a bad one is
 * refused with a log line and the previous set keeps serving. Connections already open keep
 * their session; only new handshakes see the new material.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';

export interface TlsPaths {
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
}

export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/** How often the files are checked for changes (SWITCHBOARD_TLS_WATCH_MS, default 2 s). */
export function tlsWatchIntervalMs(): number {
  const v = Number(process.env.SWITCHBOARD_TLS_WATCH_MS);
  return Number.isInteger(v) && v > 0 ? v : 2000;
}

/**
 * Polls a set of files for changes (fs.watchFile: it follows a path through renames and symlink
 * swaps, where fs.watch loses it) and calls `onChange`; `set` replaces the set, watching only
 * what is new and releasing what left.
 */
export class FileWatch {
  private files = new Set<string>();
  private readonly listener = (): void => this.onChange();

  constructor(private readonly onChange: () => void) {}

  set(files: Iterable<string>): this {
    const next = new Set(files);
    for (const f of this.files) if (!next.has(f)) unwatchFile(f, this.listener);
    for (const f of next) if (!this.files.has(f)) watchFile(f, { interval: tlsWatchIntervalMs(), persistent: false }, this.listener);
    this.files = next;
    return this;
  }

  stop(): void {
    this.set([]);
  }
}

/** Reads the files and checks that they make a TLS context; throws naming the file or the problem. */
export function loadTlsMaterial(paths: TlsPaths): TlsMaterial {
  const out: TlsMaterial = {};
  for (const k of ['cert', 'key', 'ca'] as const) {
    const file = paths[k];
    if (file === undefined) continue;
    try {
      out[k] = readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read ${k === 'ca' ? 'CA' : k} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  try {
    createSecureContext(out);
  } catch (err) {
    throw new Error(`${[paths.cert, paths.key, paths.ca].filter(Boolean).join(', ')}: ${(err as Error).message}`);
  }
  return out;
}

export class TlsFiles {
  private current: TlsMaterial;
  private readonly files: string[];
  private readonly watcher = new FileWatch(() => {
    this.reload('file changed');
  });

  /** Loads the files now (throws if they are unusable: at start-up that is fatal). */
  constructor(
    readonly paths: TlsPaths,
    private readonly what: string,
    private readonly log: Logger,
    private readonly onChange: (material: TlsMaterial) => void,
  ) {
    this.current = loadTlsMaterial(paths);
    this.files = [paths.cert, paths.key, paths.ca].filter((f): f is string => f !== undefined);
  }

  get material(): TlsMaterial {
    return this.current;
  }

  /** Starts watching the files for changes. */
  watch(): this {
    this.watcher.set(this.files);
    return this;
  }

  stop(): void {
    this.watcher.stop();
  }

  /** Re-reads the files; applies them if they are valid and changed. Returns whether they were applied. */
  reload(why: string): boolean {
    let next: TlsMaterial;
    try {
      next = loadTlsMaterial(this.paths);
    } catch (err) {
      this.log.error({ tls: this.what, why, err: (err as Error).message }, 'TLS files rejected; the previous certificate keeps serving');
      return false;
    }
    if (same(next, this.current)) return false;
    this.current = next;
    try {
      this.onChange(next);
    } catch (err) {
      this.log.error({ tls: this.what, why, err: (err as Error).message }, 'TLS files could not be applied');
      return false;
    }
    this.log.info({ tls: this.what, why, files: this.files }, 'TLS files reloaded: new handshakes use them');
    return true;
  }
}

function same(a: TlsMaterial, b: TlsMaterial): boolean {
  return (['cert', 'key', 'ca'] as const).every((k) => (a[k] === undefined ? b[k] === undefined : b[k] !== undefined && a[k]!.equals(b[k]!)));
}
