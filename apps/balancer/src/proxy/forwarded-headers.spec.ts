import { describe, expect, it } from '@jest/globals';
import { forwardedHeaders } from './forwarded-headers';

describe('forwardedHeaders', () => {
  it('returns the same object when nothing is connection-specific', () => {
    const h = { ':path': '/a.B/C', 'content-type': 'application/grpc', te: 'trailers', 'x-user': 'u' };
    expect(forwardedHeaders(h)).toBe(h);
  });

  it('drops hop-by-hop fields and pins te to trailers', () => {
    const h = { ':path': '/a.B/C', 'http2-settings': 'AAA', connection: 'close', 'keep-alive': '5', 'proxy-connection': 'x', 'transfer-encoding': 'chunked', upgrade: 'h2c', te: 'gzip', 'x-user': 'u' };
    expect(forwardedHeaders(h)).toEqual({ ':path': '/a.B/C', te: 'trailers', 'x-user': 'u' });
    expect(h['http2-settings']).toBe('AAA'); // the client's headers are left as they were
  });
});

describe('forwardedHeaders: the attempt count is the balancer\'s', () => {
  it('drops a client\'s own grpc-previous-rpc-attempts (a first attempt carries none)', () => {
    const h = { ':path': '/a.B/C', te: 'trailers', 'grpc-previous-rpc-attempts': '7' };
    expect(forwardedHeaders(h)).toEqual({ ':path': '/a.B/C', te: 'trailers' });
  });
});
