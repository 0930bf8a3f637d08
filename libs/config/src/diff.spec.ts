import { describe, expect, it } from '@jest/globals';
import { canonicalConfig, entityTag } from './canonical';
import { diffConfigs } from './diff';
import { validateConfig } from './parse';
import type { SwitchboardConfig } from './schema';

const cfg = (raw: unknown): SwitchboardConfig => {
  const r = validateConfig(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return canonicalConfig(r.config);
};

const base = cfg({
  healthPolicies: [{ name: 'hp', active: {} }],
  pools: [{ name: 'a', match: { services: ['x.A'] }, healthPolicy: 'hp', backends: [{ address: '127.0.0.1:1' }, { address: '127.0.0.2:1', weight: 2 }] }],
});

describe('diffConfigs', () => {
  it('is empty for the same config in another order or spelling (defaults, empty labels)', () => {
    const same = cfg({
      pools: [{ name: 'a', match: { services: ['x.A'] }, healthPolicy: 'hp', algorithm: 'least_conn', labels: {}, backends: [{ address: '127.0.0.2:1', weight: 2 }, { address: '127.0.0.1:1', weight: 1, drain: false }] }],
      healthPolicies: [{ name: 'hp', active: { protocol: 'grpc' } }],
    });
    expect(diffConfigs(base, same)).toEqual({ changes: [] });
    expect(entityTag(same)).toBe(entityTag(base));
  });

  it('reports a backend change as one backend update with the field before and after, not as a pool rewrite', () => {
    const next = cfg({ ...base, pools: [{ ...base.pools[0]!, backends: [{ address: '127.0.0.1:1' }, { address: '127.0.0.2:1', weight: 5 }] }] });
    expect(diffConfigs(base, next).changes).toEqual([{ action: 'update', kind: 'backend', name: '127.0.0.2:1', pool: 'a', fields: [{ path: 'weight', before: 2, after: 5 }] }]);
  });

  it('orders policies, then each pool followed by its backends; nested fields by dotted path; arrays whole', () => {
    const next = cfg({
      healthPolicies: [{ name: 'hp', active: { intervalMs: 500 } }, { name: 'new', passive: {} }],
      pools: [
        { name: 'a', match: { services: ['x.A', 'x.B'] }, healthPolicy: 'hp', labels: { team: 't' }, backends: [{ address: '127.0.0.1:1' }] },
        { name: 'b', match: { authority: 'b' } },
      ],
    });
    const changes = diffConfigs(base, next).changes;
    expect(changes.map((c) => `${c.action} ${c.kind} ${c.name}`)).toEqual([
      'update healthPolicy hp',
      'create healthPolicy new',
      'update pool a',
      'delete backend 127.0.0.2:1',
      'create pool b',
    ]);
    expect(changes[0]!.fields).toEqual([{ path: 'active.intervalMs', before: 2000, after: 500 }]);
    expect(changes[2]!.fields).toEqual([
      { path: 'labels.team', before: null, after: 't' },
      { path: 'match.services', before: ['x.A'], after: ['x.A', 'x.B'] },
    ]);
    expect(changes[3]!.fields).toEqual([
      { path: 'drain', before: false, after: null },
      { path: 'weight', before: 2, after: null },
    ]);
  });

  it('deleting a pool deletes its backends too', () => {
    const changes = diffConfigs(base, cfg({ healthPolicies: base.healthPolicies })).changes;
    expect(changes.map((c) => `${c.action} ${c.kind} ${c.name}`)).toEqual(['delete pool a', 'delete backend 127.0.0.1:1', 'delete backend 127.0.0.2:1']);
  });
});
