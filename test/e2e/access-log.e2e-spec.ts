/**
 * `--access-log`: one JSON line per call (issue 21), with the default workers and with one.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from '@jest/globals';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { unary } from '../support/grpc';
import { killAll, poolConfig, startBalancer, waitFor } from '../support/processes';

afterAll(() => killAll());

describe('--access-log and --method-metrics', () => {
  for (const workers of ['1', '2']) {
    it(`writes one JSON line per call: method, status, duration, pool, backend, attempts (--workers ${workers})`, async () => {
      const backend = await startEchoBackend({ name: 'logged' });
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-access-')), 'access.log');
      const lb = await startBalancer(poolConfig([backend.address]), ['--workers', workers, '--access-log', file, '--method-metrics', '5']);
      const client = echoClient(lb.listen);
      try {
        expect((await unary(client, {})).error).toBeUndefined();
        expect((await unary(client, { statusCode: grpc.status.NOT_FOUND, statusMessage: 'no such thing' })).error?.code).toBe(grpc.status.NOT_FOUND);
        const lines = await waitFor('two lines', () => {
          if (!existsSync(file)) return undefined;
          const l = readFileSync(file, 'utf8').split('\n').filter(Boolean);
          return l.length >= 2 && l;
        });
        const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(entries[0]).toMatchObject({ method: '/switchboard.test.v1.Echo/Unary', status: 'OK', code: 0, pool: 'echo', backend: backend.address, attempts: 1 });
        expect(entries[1]).toMatchObject({ status: 'NOT_FOUND', code: 5, backend: backend.address });
        for (const e of entries) {
          expect(typeof e.durationMs).toBe('number');
          expect(Number.isNaN(Date.parse(String(e.time)))).toBe(false);
        }
        // --method-metrics: the per-method breakdown, summed across workers.
        const metrics = await lb.metrics();
        expect(metrics).toMatch(/switchboard_method_calls_total\{pool="echo",method="switchboard\.test\.v1\.Echo\/Unary",code="OK"\} 1/);
        expect(metrics).toMatch(/switchboard_method_calls_total\{pool="echo",method="switchboard\.test\.v1\.Echo\/Unary",code="NOT_FOUND"\} 1/);
      } finally {
        client.close();
        await lb.stop();
        await backend.stop();
      }
    });
  }
});
