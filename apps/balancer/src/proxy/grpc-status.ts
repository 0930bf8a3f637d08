/**
 * gRPC status codes and the responses the balancer generates itself. Calls that never reach a
 * backend are answered "trailers-only" (one HEADERS frame with END_STREAM), as gRPC servers do.
 */
import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { GRPC_CODE_NAMES, type GrpcCodeName } from '#config';

export { GRPC_CODE_NAMES };

/** Every status by name (Status.UNAVAILABLE is 14), built once from the one list in #config. */
export const Status: { readonly [K in GrpcCodeName]: number } = Object.freeze(Object.fromEntries(GRPC_CODE_NAMES.map((name, code) => [name, code])) as Record<GrpcCodeName, number>);


export function codeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? String(code);
}

/** Percent-encodes a grpc-message as the gRPC HTTP/2 spec asks (bytes outside 0x20-0x7E, and %). */
export function encodeGrpcMessage(message: string): string {
  // encodeURIComponent also escapes printable ASCII; undo that for the characters gRPC allows raw.
  return encodeURIComponent(message).replace(/%(2[0-46-9A-F]|3[0-9A-F]|[4-6][0-9A-F]|7[0-9A-E])/gi, (m, hex: string) =>
    String.fromCharCode(parseInt(hex, 16)),
  );
}

export function statusTrailers(code: number, message: string): OutgoingHttpHeaders {
  return { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) };
}

/** Answers a call that got no response from a backend: HTTP 200, grpc-status in the only HEADERS frame. */
export function respondTrailersOnly(stream: ServerHttp2Stream, code: number, message: string): void {
  if (stream.headersSent || stream.destroyed || stream.closed) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...statusTrailers(code, message) }, { endStream: true });
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** The `grpc-timeout` header in milliseconds: 1 to 8 digits and a unit (H M S m u n); undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || value.length < 2 || value.length > 9) return undefined;
  const unit = TIMEOUT_UNIT_MS[value[value.length - 1]!];
  const digits = value.slice(0, -1);
  if (unit === undefined || !/^[0-9]+$/.test(digits)) return undefined;
  return Number(digits) * unit;
}
