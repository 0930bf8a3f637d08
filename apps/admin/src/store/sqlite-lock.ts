/**
 * One admin per SQLite file. A second admin on the same file never sees the first one's writes
 * (each keeps the config in memory and numbers revisions from it), so its writes fail or fork the
 * history. The first admin holds `<file>.admin.lock`, created exclusively with its process id;
 * a second one is refused at start, naming the holder. A lock left by a process that is gone
 * (kill -9, a crash) is taken over. Several admins share a PostgreSQL database instead.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

export interface SqliteLock {
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockSqlite(dbFile: string): SqliteLock {
  const file = `${dbFile}.admin.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let held = true;
      return {
        release: () => {
          if (!held) return;
          held = false;
          try {
            if (Number(readFileSync(file, 'utf8').trim()) === process.pid) rmSync(file, { force: true });
          } catch {
            // gone already
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = NaN;
      try {
        holder = Number(readFileSync(file, 'utf8').trim());
      } catch {
        // removed meanwhile: try again
      }
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
        throw new Error(`another admin (process ${holder}) runs on ${dbFile}: one admin per SQLite file (it holds ${file}); several admins share a PostgreSQL database (--db postgresql://...)`);
      }
      rmSync(file, { force: true }); // left by a process that is gone
    }
  }
  throw new Error(`cannot take ${file}`);
}
