import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { loadConfigFiles } from './config-files';
import { mergeOwned, parseSelectTags, selectOwned } from './select-tags';

const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-files-'));
const write = (name: string, text: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('loadConfigFiles', () => {
  it('interpolates ${VAR} and ${VAR:-default} in values, never in comments or keys', () => {
    const f = write('a.yaml', '# ${NOT_SET} in a comment\npools:\n  - name: p\n    match: { authority: "${HOST:-h.internal}" }\n    labels: { raw: "$${KEEP}" }\n    backends: [{ address: "${IP}:80" }]\n');
    const r = loadConfigFiles([f], { IP: '127.0.0.3' });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.config.pools[0]!.match?.authority).toBe('h.internal');
    expect(r.config.pools[0]!.labels).toEqual({ raw: '${KEEP}' });
    expect(r.config.pools[0]!.backends.map((b) => b.address)).toEqual(['127.0.0.3:80']);
    const unset = loadConfigFiles([f], {});
    expect(unset.ok ? [] : unset.errors).toEqual([`${f}:6: \${IP} is not set (give it a value or a default: \${IP:-value})`]);
  });

  it('merges files and names the file and line of a conflict between them', () => {
    const a = write('b1.yaml', 'healthPolicies:\n  - name: hp\npools:\n  - name: p1\n    match: { services: [s.S] }\n');
    const b = write('b2.json', '{"pools": [\n {"name": "p2", "healthPolicy": "hp",\n  "match": {"services": ["s.S"]}}\n]}');
    const r = loadConfigFiles([a, b], {});
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors).toEqual([`${b}:3: pools[0].match.services[0]: "s.S" is already routed to pool "p1"`]);
  });
});

describe('select tags', () => {
  const server = {
    healthPolicies: [],
    pools: [
      { name: 'mine', labels: { team: 'a' } },
      { name: 'theirs', labels: { team: 'b' } },
    ],
  } as never;
  it('keeps what is not ours, replaces what is, and labels our resources', () => {
    const tags = parseSelectTags(['team=a']);
    const merged = mergeOwned(server, { healthPolicies: [], pools: [{ name: 'new' }] } as never, tags);
    expect(merged.pools).toEqual([{ name: 'theirs', labels: { team: 'b' } }, { name: 'new', labels: { team: 'a' } }]);
    expect(selectOwned(server, tags).pools.map((p) => p.name)).toEqual(['mine']);
    expect(() => parseSelectTags(['team'])).toThrow('must be key=value');
  });
});
