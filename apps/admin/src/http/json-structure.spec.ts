import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { depthOf, lineColumnAt, scanJson } from './json-structure';

describe('scanJson', () => {
  it('finds nothing in what JSON.stringify writes, within the depth (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        const text = JSON.stringify(v, null, Math.random() < 0.5 ? 2 : 0);
        // JSON.stringify never repeats a key; depth 6 values nest at most 7 levels.
        expect(scanJson(text, 8)).toBeNull();
        expect(depthOf(JSON.parse(text), 100)).toBeLessThanOrEqual(8);
      }),
      { numRuns: 500, seed: 7 },
    );
  });

  it('names a duplicate key with its path, escapes and all', () => {
    expect(scanJson('{"pools":[{"name":"a"},{"name":"b","na\\u006de":"c"}]}', 32)).toMatchObject({ kind: 'duplicate-key', key: 'name', path: 'pools[1].name' });
    expect(scanJson('{"a":"{\\"a\\":1}","b":[1,2,{"c":1,"d":{"c":2}}]}', 32)).toBeNull();
  });

  it('finds a repeated key whether spelled plainly or escaped, and only then (fast-check)', () => {
    const key = fc.string({ unit: fc.constantFrom('a', 'b', '"', '\\', '\n', 'é', '😀'), maxLength: 3 });
    // Each key written as JSON.stringify writes it, or with every UTF-16 unit as \uXXXX.
    const spell = (k: string, escaped: boolean) => (escaped ? `"${Array.from({ length: k.length }, (_, j) => `\\u${k.charCodeAt(j).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(k));
    fc.assert(
      fc.property(fc.array(fc.tuple(key, fc.boolean()), { maxLength: 6 }), (entries) => {
        const text = `{${entries.map(([k, e], i) => `${spell(k, e)}:${i}`).join(',')}}`;
        const keys = entries.map(([k]) => k);
        const repeated = keys.find((k, i) => keys.indexOf(k) < i);
        const finding = scanJson(text, 8);
        if (repeated === undefined) expect(finding).toBeNull();
        else expect(finding).toMatchObject({ kind: 'duplicate-key', key: repeated });
      }),
      { numRuns: 500, seed: 11 },
    );
  });

  it('stops at the depth limit without recursion, at 1,000,000 levels', () => {
    expect(scanJson('['.repeat(1_000_000), 32)).toMatchObject({ kind: 'too-deep', depth: 33, offset: 32 });
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(depthOf(deep, 32)).toBe(33);
  });

  it('reports line and column', () => {
    expect(lineColumnAt('{\n  "a": 1,\n  "a": 2}', 14)).toEqual({ line: 3, column: 3 });
  });
});
