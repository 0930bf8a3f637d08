import { describe, expect, it } from '@jest/globals';
import { parseConfigText, validateConfig } from '.';

describe('parseConfigText', () => {
  it('parses the contract example and fills defaults', () => {
    const result = parseConfigText(`
healthPolicies:
  - name: grpc-default
    active:  { protocol: grpc, service: "", intervalMs: 2000, timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 3 }
    passive: { consecutiveFailures: 5, baseEjectionMs: 30000, maxEjectionPercent: 50 }
pools:
  - name: greeter
    match: { services: [helloworld.Greeter] }
    healthPolicy: grpc-default
    backends:
      - { address: 127.0.0.1:50051, weight: 1 }
      - { address: 127.0.0.1:50052, weight: 2, drain: true }
`);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const pool = result.config.pools[0]!;
    expect(pool.algorithm).toBe('least_conn');
    expect(pool.maxStreamsPerBackend).toBe(0);
    expect(pool.panicThreshold).toBe(50);
    expect(pool.backends[1]).toEqual({ address: '127.0.0.1:50052', weight: 2, drain: true });
  });

  it('accepts JSON too', () => {
    const result = parseConfigText(JSON.stringify({ pools: [{ name: 'a', match: { services: ['*'] }, backends: [{ address: 'localhost:1' }] }] }));
    expect(result.ok).toBe(true);
  });

  it('names the field and the line of each error', () => {
    const result = parseConfigText(`pools:
  - name: Bad_Name
    match: { services: [ok.Service] }
    algorithm: fastest
    backends:
      - { address: 127.0.0.1:50051, weight: 0 }
      - { address: no-port }
`);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const byPath = Object.fromEntries(result.errors.map((e) => [e.path, e.line]));
    expect(byPath).toEqual({
      'pools[0].name': 2,
      'pools[0].algorithm': 4,
      'pools[0].backends[0].weight': 6,
      'pools[0].backends[1].address': 7,
    });
  });

  it('rejects unknown fields by name instead of dropping them', () => {
    const result = parseConfigText(`pools:\n  - name: a\n    match: { services: ["*"] }\n    wieght: 3\n`);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toEqual([expect.objectContaining({ path: 'pools[0].wieght', line: 4 })]);
  });

  it('rejects duplicate names, addresses, routes and unknown health policies', () => {
    const result = validateConfig({
      pools: [
        { name: 'a', match: { services: ['x.Y'] }, healthPolicy: 'missing', backends: [{ address: 'h:1' }, { address: 'h:1' }] },
        { name: 'a', match: { services: ['x.Y'] } },
      ],
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.path).sort()).toEqual(
      ['pools[0].backends[1].address', 'pools[0].healthPolicy', 'pools[1].match.services[0]', 'pools[1].name'].sort(),
    );
  });

  it('reports YAML syntax errors with a line', () => {
    const result = parseConfigText('pools:\n  - name: a\n   match: [\n');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]!.line).toBeGreaterThan(0);
  });
});
