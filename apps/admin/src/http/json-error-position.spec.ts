import { describe, expect, it } from '@jest/globals';
import { jsonErrorPosition } from './json-error-position';

describe('jsonErrorPosition', () => {
  it.each([
    ['{"a": [}', 7, 1, 8],
    ['{"a": 1,}', 8, 1, 9],
    ['{\n  "a": tru\n}', 12, 2, 11],
    ['{"a": "x\\q"}', 9, 1, 10],
    ['{"a": 01}', 7, 1, 8],
    ['{"a": 1} x', 9, 1, 10],
    ['{"a": ', 6, 1, 7],
  ])('%j goes wrong at offset %i (line %i, column %i)', (text, offset, line, column) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(jsonErrorPosition(text)).toEqual({ offset, line, column });
  });
});
