/**
 * One pass over a JSON text for what JSON.parse does not tell: how deeply it nests (a body
 * nested 20,000 levels deep overflows any recursive walk of it, merge-patch's included) and
 * whether an object repeats a key (JSON.parse keeps the last one silently, so `{"weight": 1,
 * "weight": 100}` would mean whatever the parser happened to do). Iterative, so hostile nesting
 * costs a counter, not the stack.
 *
 * The scan stops at the first finding and answers with where it is: the path of the key, and
 * the offset in the text. On text that is not JSON at all it may find nothing; JSON.parse then
 * reports that.
 */
import { formatPath } from '#config';

export type JsonFinding = { kind: 'too-deep'; depth: number; offset: number; path: string } | { kind: 'duplicate-key'; key: string; offset: number; path: string };

interface Frame {
  /** Keys seen so far (objects), or null (arrays). */
  keys: Set<string> | null;
  /** The next string in this object is a key. */
  expectKey: boolean;
  /** The current key (objects) or index (arrays). */
  at: string | number;
}

export function scanJson(text: string, maxDepth: number): JsonFinding | null {
  const stack: Frame[] = [];
  const path = (): (string | number)[] => stack.map((f) => f.at);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        let key: string;
        // A key without escapes is its text (the common case: one slice, not a parse per key).
        if (!escaped) key = text.slice(start + 1, i);
        else {
          try {
            key = JSON.parse(text.slice(start, i + 1)) as string;
          } catch {
            return null; // not JSON: JSON.parse will say where
          }
        }
        top.expectKey = false;
        top.at = key;
        if (top.keys.has(key)) return { kind: 'duplicate-key', key, offset: start, path: formatPath(path()) };
        top.keys.add(key);
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= maxDepth) return { kind: 'too-deep', depth: stack.length + 1, offset: i, path: formatPath(path()) };
      stack.push(c === 0x7b ? { keys: new Set(), expectKey: true, at: '' } : { keys: null, expectKey: false, at: 0 });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
      else if (top) top.at = (top.at as number) + 1;
    }
  }
  return null;
}

/** Nesting depth of a parsed value (objects and arrays), counted without recursion, stopping past `max`. */
export function depthOf(value: unknown, max: number): number {
  let deepest = 0;
  const pending: [unknown, number][] = [[value, 1]];
  while (pending.length > 0) {
    const [v, d] = pending.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > deepest) deepest = d;
    if (deepest > max) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') pending.push([child, d + 1]);
  }
  return deepest;
}

/** 1-based line and column of an offset in `text`. */
export function lineColumnAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
