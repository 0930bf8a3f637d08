import { describe, expect, it } from '@jest/globals';
import { validateConfig, type SwitchboardConfig } from '#config';
import { effectiveConfig } from './effective-config';

const valid = (value: unknown): SwitchboardConfig => {
  const r = validateConfig(value);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
};

const config = valid({
    pools: [
      {
        name: 'greeter',
        match: { services: ['helloworld.Greeter'] },
        discovery: { dns: { name: 'grpc.svc.test', type: 'A', port: 50051 } },
        drainAddresses: ['127.0.0.12:50051', '127.0.0.1:7000'],
        backends: [{ address: '127.0.0.1:7000' }, { address: '127.0.0.11:50051', weight: 5 }],
      },
      { name: 'plain', match: { services: ['*'] }, backends: [{ address: '127.0.0.1:7001' }] },
    ],
});

describe('effectiveConfig', () => {
  it('serves static backends and discovered ones together; a static one wins a collision; drainAddresses drains either kind', () => {
    const served = effectiveConfig(
      config,
      new Map([
        [
          'greeter',
          {
            backends: [
              { address: '127.0.0.11:50051', weight: 1, priority: 0 },
              { address: '127.0.0.12:50051', weight: 1, priority: 0 },
              { address: '127.0.0.13:50051', weight: 2, priority: 1 },
            ],
            emptyReason: null,
          },
        ],
      ]),
    );
    const greeter = served.pools[0]!;
    expect(greeter.backends.map((b) => [b.address, b.weight, b.drain, (b as { source?: string }).source ?? 'static'])).toEqual([
      ['127.0.0.1:7000', 1, true, 'static'],
      ['127.0.0.11:50051', 5, false, 'static'],
      ['127.0.0.12:50051', 1, true, 'dns'],
      ['127.0.0.13:50051', 2, false, 'dns'],
    ]);
    expect(served.pools[1]).toBe(config.pools[1]); // untouched
    expect((greeter as { discoveryNote?: string }).discoveryNote).toBeUndefined();
  });

  it('an empty discovered set names the DNS name for UNAVAILABLE messages', () => {
    const served = effectiveConfig(config, new Map([['greeter', { backends: [], emptyReason: 'DNS name "grpc.svc.test" (A) has no usable answer: NXDOMAIN' }]]));
    expect((served.pools[0] as { discoveryNote?: string }).discoveryNote).toMatch(/grpc\.svc\.test.*NXDOMAIN/);
    const unresolved = effectiveConfig(config, new Map());
    expect((unresolved.pools[0] as { discoveryNote?: string }).discoveryNote).toMatch(/not resolved yet/);
  });

  it('a config without discovery is served as it is', () => {
    const plain = valid({ pools: [{ name: 'p', match: { services: ['*'] }, backends: [{ address: '127.0.0.1:1' }] }] });
    expect(effectiveConfig(plain, new Map())).toBe(plain);
  });
});
