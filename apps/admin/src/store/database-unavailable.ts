/**
 * Whether an error means the database cannot be reached now (down, restarting, connection lost,
 * too many connections, SQLite busy), as opposed to a fault of the request or the code. Such a
 * write is answered 503 with Retry-After: nothing was stored, and the same write will work once
 * the database is back. The error is looked for along the `cause` chain, since Prisma's driver
 * adapters wrap the driver's own error.
 */
const CODES = new Set([
  // Prisma: cannot reach the server, timed out, server closed the connection, pool timeout.
  'P1001', 'P1002', 'P1008', 'P1017', 'P2024',
  // Node's sockets.
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  // PostgreSQL: admin shutdown, crash shutdown, cannot connect now, too many connections.
  '57P01', '57P02', '57P03', '53300',
  // SQLite: the file is locked by another writer.
  'SQLITE_BUSY', 'SQLITE_LOCKED',
]);
const MESSAGES = /connection terminated|connection (is )?closed|can't reach database|server closed the connection|database system is (starting up|shutting down|in recovery)|database is locked|ECONNREFUSED|ECONNRESET|timeout exceeded when trying to connect/i;

export function isDatabaseUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e !== null && typeof e === 'object'; depth++) {
    const o = e as { code?: unknown; errno?: unknown; originalCode?: unknown; kind?: unknown; message?: unknown; cause?: unknown };
    for (const c of [o.code, o.originalCode, o.errno]) if (typeof c === 'string' && (CODES.has(c) || /^08/.test(c))) return true;
    if (o.kind === 'DatabaseNotReachable' || o.kind === 'ConnectionClosed' || o.kind === 'SocketTimeout' || o.kind === 'TooManyConnections') return true;
    if (typeof o.message === 'string' && MESSAGES.test(o.message)) return true;
    e = o.cause;
  }
  return false;
}

/** Seconds a client should wait before it writes again. */
export const DATABASE_RETRY_AFTER_S = 2;
