/** The median of a bench's rounds (the upper one of an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}
