/**
 * The premature-reset limit of one client connection (CVE-2023-44487, "HTTP/2 rapid reset").
 *
 * A stream the client resets before its call got an answer costs the balancer a pick, an
 * upstream stream and a reset towards the backend, and costs the client one frame. After
 * Envoy's `premature_reset_total_stream_count`: once a connection has reset `limit` streams
 * early, and those are at least half of the streams it opened, it gets GOAWAY(ENHANCE_YOUR_CALM)
 * and is closed. A client that cancels some of its calls (deadlines, hedging) never gets near
 * half; a flood gets there after `limit` streams instead of nghttp2's own budget of about 1000.
 *
 * The per-stream path pays one WeakMap lookup: counting happens only when a client resets a
 * call, and the streams a connection opened are read from nghttp2's own last stream id. A
 * connection that has reset a stream early is a suspect: its calls pick a backend only after
 * the frames already read are handled, so a stream reset in the same read never reaches one.
 */
import { constants, type Http2Session } from 'node:http2';

export class PrematureResets {
  private readonly counts = new WeakMap<Http2Session, number>();

  constructor(
    private readonly limit: number,
    /** Told once per connection that crossed the limit, after its GOAWAY. */
    private readonly onLimit: (session: Http2Session, resets: number, streams: number) => void,
  ) {}

  /** The connection has reset a stream before its answer. */
  suspect(session: Http2Session): boolean {
    return this.counts.has(session);
  }

  /** A stream of `session` was reset by the client before its call was answered. */
  record(session: Http2Session | undefined): void {
    if (session === undefined || session.destroyed) return;
    const resets = (this.counts.get(session) ?? 0) + 1;
    this.counts.set(session, resets);
    if (this.limit <= 0 || resets < this.limit) return;
    // Client stream ids are odd and increasing: the last one processed tells how many were opened.
    const streams = Math.max(resets, ((session.state.lastProcStreamID ?? 0) + 1) / 2);
    if (resets * 2 < streams) return;
    // GOAWAY with that code, then close. (destroy(undefined, code) would send NO_ERROR: node
    // turns a missing error into code 0.)
    session.destroy(new Error(`${resets} of ${streams} streams reset before their answer`), constants.NGHTTP2_ENHANCE_YOUR_CALM);
    this.onLimit(session, resets, streams);
  }
}
