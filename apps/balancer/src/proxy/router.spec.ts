import { describe, expect, it } from '@jest/globals';
import { validateConfig } from '#config';
import { Router } from './router';

function router(pools: unknown[]): Router<string> {
  const result = validateConfig({ pools });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return new Router(result.config.pools.map((config) => ({ config, pool: config.name })));
}

describe('Router', () => {
  const r = router([
    { name: 'greeter', match: { services: ['helloworld.Greeter', 'helloworld.Other'] } },
    { name: 'greeter-canary', match: { services: ['helloworld.Greeter'], authority: 'canary.example' } },
    { name: 'fallback', match: { services: ['*'] } },
    { name: 'tenant', match: { authority: 'tenant.example' } },
  ]);

  it('extracts the service from a gRPC path', () => {
    expect(Router.serviceOf('/helloworld.Greeter/SayHello')).toBe('helloworld.Greeter');
    expect(Router.serviceOf('/nomethod')).toBe('');
    expect(Router.serviceOf('')).toBe('');
  });

  it('routes by service, then authority, then the default pool', () => {
    expect(r.route('helloworld.Greeter', 'lb:9000')).toBe('greeter');
    expect(r.route('helloworld.Other', undefined)).toBe('greeter');
    expect(r.route('helloworld.Greeter', 'canary.example:443')).toBe('greeter-canary');
    expect(r.route('unknown.Service', 'lb:9000')).toBe('fallback');
    expect(r.route('unknown.Service', 'tenant.example')).toBe('tenant');
  });

  it('finds nothing when there is no default pool', () => {
    expect(router([{ name: 'a', match: { services: ['a.A'] } }]).route('b.B', undefined)).toBeUndefined();
  });
});
