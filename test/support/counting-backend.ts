/**
 * An HTTP/2 backend that only counts the streams reaching it and answers each with grpc-status 0,
 * with node's default limits (its own rapid-reset defence included), as a typical backend has
 * them. For tests and benchmarks that need to know what a balancer forwarded.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface CountingBackend {
  address: string;
  streams(): number;
  close(): void;
}

export async function countingBackend(): Promise<CountingBackend> {
  let streams = 0;
  const server = http2.createServer();
  server.on('stream', (s) => {
    streams++;
    s.on('error', () => {});
    if (!s.destroyed) s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' }, { endStream: true });
  });
  server.on('sessionError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, streams: () => streams, close: () => server.close() };
}

/** Resident memory of a process (Linux /proc), now and at its peak, in MiB. */
export function rssMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
}
