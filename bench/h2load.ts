/**
 * Saturation throughput with h2load (nghttp2-client), a C load generator that costs far less
 * CPU per call than a grpc-js client, so the proxy rather than the client is what saturates.
 * h2load checks only the HTTP status (always 200 in gRPC), so the request is a valid Echo call
 * whose grpc-status the benchmark does not read.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export function h2loadAvailable(): boolean {
  return spawnSync('h2load', ['--version']).status === 0;
}

export interface H2loadResult {
  calls: number;
  failed: number;
  callsPerS: number;
}

/** One length-prefixed EchoRequest { payload: "hi" }. */
const REQUEST = Buffer.from([0, 0, 0, 0, 4, 0x0a, 2, 0x68, 0x69]);

export function h2load(address: string, calls: number, connections = 4, streamsPerConnection = 32): H2loadResult {
  const body = path.join(tmpdir(), 'switchboard-h2load-request.bin');
  writeFileSync(body, REQUEST);
  const out = execFileSync('h2load', [
    '-n', String(calls), '-c', String(connections), '-m', String(streamsPerConnection), '-d', body,
    '-H', 'content-type: application/grpc', '-H', 'te: trailers',
    `http://${address}/switchboard.test.v1.Echo/Unary`,
  ]).toString();
  const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(out);
  if (!done || Number(done[2]) === 0) throw new Error(`h2load through ${address}: no call succeeded:\n${out.split('\n').slice(-14).join('\n')}`);
  return { calls: Number(done[2]), failed: Number(done[3]), callsPerS: Math.round(Number(rate?.[1] ?? 0)) };
}
