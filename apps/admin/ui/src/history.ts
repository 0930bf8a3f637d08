/**
 * The last few minutes of each backend's figures, one point per refresh, for the charts and for
 * rates computed between refreshes (the error rate of the last interval).
 */
export const WINDOW_POINTS = 150; // 5 minutes at one point every 2 s

export interface Series {
  /** Unix seconds. */
  t: number[];
  active: number[];
  callsPerSecond: number[];
  totalCalls: number[];
  errors: number[];
}

export class History {
  private readonly series = new Map<string, Series>();

  add(key: string, t: number, point: { active: number; callsPerSecond: number; totalCalls: number; errors: number }): Series {
    let s = this.series.get(key);
    if (s === undefined) {
      s = { t: [], active: [], callsPerSecond: [], totalCalls: [], errors: [] };
      this.series.set(key, s);
    }
    s.t.push(t);
    s.active.push(point.active);
    s.callsPerSecond.push(point.callsPerSecond);
    s.totalCalls.push(point.totalCalls);
    s.errors.push(point.errors);
    if (s.t.length > WINDOW_POINTS) for (const a of [s.t, s.active, s.callsPerSecond, s.totalCalls, s.errors]) a.shift();
    return s;
  }

  /** Errors over calls between the last two points, in percent; null before two points or with no calls. */
  static errorRate(s: Series): number | null {
    const n = s.t.length;
    if (n < 2) return null;
    const calls = s.totalCalls[n - 1]! - s.totalCalls[n - 2]!;
    const errors = s.errors[n - 1]! - s.errors[n - 2]!;
    return calls > 0 ? (100 * Math.max(0, errors)) / calls : null;
  }

  /** Forgets backends no longer shown. */
  keep(keys: Set<string>): void {
    for (const k of this.series.keys()) if (!keys.has(k)) this.series.delete(k);
  }
}
