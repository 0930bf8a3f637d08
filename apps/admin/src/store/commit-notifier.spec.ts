import { describe, expect, it } from '@jest/globals';
import * as fc from 'fast-check';
import { parseNotice } from './commit-notifier';

describe('commit notifications', () => {
  it('read a revision, or a revision with its base and patch', () => {
    expect(parseNotice('7')).toEqual({ revision: 7 });
    expect(parseNotice('7:6:{"backends":{"put":[]}}')).toEqual({ revision: 7, delta: { base: 6, patchJson: '{"backends":{"put":[]}}' } });
    expect(parseNotice('7:6:{"a":"line\nbreak"}')?.delta?.patchJson).toBe('{"a":"line\nbreak"}');
  });

  it('refuse anything else (another client may NOTIFY the channel)', () => {
    for (const bad of [undefined, '', 'x', '-1', '1.5', '7:', '7:6', '7:6:[1]', '7:x:{}', '12345678901', ' 7']) expect(parseNotice(bad)).toBeUndefined();
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const n = parseNotice(s);
        if (n !== undefined) expect(Number.isInteger(n.revision) && n.revision >= 0).toBe(true);
      }),
    );
  });
});
