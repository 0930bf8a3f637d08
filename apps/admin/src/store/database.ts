/**
 * Where the admin keeps its data, from `--db`: a SQLite file (a path or file:PATH, the embedded
 * default) or a PostgreSQL database (postgresql://USER[:PASSWORD]@HOST:PORT/DB, also
 * postgres://). Any other scheme is refused at start: it used to be taken as a relative path
 * (`mysql://...` made a folder named "mysql:").
 */
import * as path from 'node:path';

export type Database = { kind: 'sqlite'; file: string } | { kind: 'postgresql'; url: string };

export function parseDatabase(db: string): Database {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]+):/.exec(db)?.[1]?.toLowerCase();
  if (scheme === 'postgresql' || scheme === 'postgres') {
    let url: URL;
    try {
      url = new URL(db);
    } catch {
      throw new Error('--db: not a valid postgresql:// URL');
    }
    if (!url.hostname || url.pathname.length <= 1) throw new Error('--db: a PostgreSQL URL needs a host and a database name: postgresql://USER@HOST:PORT/DB');
    return { kind: 'postgresql', url: db };
  }
  if (scheme !== undefined && scheme !== 'file') {
    throw new Error(`--db ${scheme}:... is not supported: give a SQLite file path (or file:PATH) or a postgresql://USER@HOST:PORT/DB URL`);
  }
  if (db.trim() === '' || db === 'file:') throw new Error('--db needs a SQLite file path (or file:PATH) or a postgresql:// URL');
  return { kind: 'sqlite', file: path.resolve(db.startsWith('file:') ? db.slice('file:'.length) : db) };
}

/** The URL with its password replaced, for logs. */
export function describeDatabase(db: Database): string {
  if (db.kind === 'sqlite') return db.file;
  const url = new URL(db.url);
  if (url.password) url.password = '***';
  return url.toString();
}
