/**
 * What a balancer reports about one backend to the admin: calls ended by gRPC status since
 * start, and call latency percentiles over the current report window (an HDR histogram in
 * microseconds, 2 significant digits, cleared at each report). Recording is an array increment
 * and one histogram record per call.
 */
import * as hdr from 'hdr-histogram-js';
import { codeName } from '../proxy/grpc-status';

export interface CallWindow {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

export class CallStats {
  private readonly byCode: number[] = [];
  private readonly window = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 });

  record(code: number, seconds: number): void {
    this.byCode[code] = (this.byCode[code] ?? 0) + 1;
    this.window.recordValue(Math.max(1, Math.round(seconds * 1e6)));
  }

  callsByCode(): Record<string, number> {
    const out: Record<string, number> = {};
    this.byCode.forEach((n, code) => {
      if (n) out[codeName(code)] = n;
    });
    return out;
  }

  /** Percentiles since the last call, then starts a new window. */
  takeWindow(): CallWindow {
    const out = percentiles(this.window);
    this.window.reset();
    return out;
  }

  /** The window since the last call as an encoded histogram (for a primary to merge), then starts a new one. */
  takeEncodedWindow(): string {
    const out = hdr.encodeIntoCompressedBase64(this.window);
    this.window.reset();
    return out;
  }
}

/** The percentiles of several workers' encoded windows taken together. */
export function mergedWindow(encoded: readonly string[]): CallWindow {
  const sum = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 });
  for (const e of encoded) sum.add(hdr.decodeFromCompressedBase64(e));
  return percentiles(sum);
}

function percentiles(h: hdr.Histogram): CallWindow {
  const ms = (p: number): number => (h.totalCount === 0 ? 0 : Math.round(h.getValueAtPercentile(p) / 10) / 100);
  return { p50Ms: ms(50), p90Ms: ms(90), p99Ms: ms(99) };
}
