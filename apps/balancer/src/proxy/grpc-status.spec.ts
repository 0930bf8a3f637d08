import { describe, expect, it } from '@jest/globals';
import { encodeGrpcMessage, parseGrpcTimeout, Status } from './grpc-status';

describe('grpc-timeout', () => {
  it.each([
    ['100m', 100],
    ['2S', 2000],
    ['1M', 60_000],
    ['1H', 3_600_000],
    ['5000u', 5],
    ['99999999n', 99.999999],
  ])('%s is %d ms', (value, ms) => expect(parseGrpcTimeout(value)).toBeCloseTo(ms));

  it.each([undefined, '', '10', 'm', '123456789m', '1x', '-1S'])('%p is ignored', (value) => expect(parseGrpcTimeout(value)).toBeUndefined());
});

describe('grpc-message encoding', () => {
  it('keeps printable ASCII and percent-encodes the rest', () => {
    expect(encodeGrpcMessage('pool "a": no healthy backend (3 configured)')).toBe('pool "a": no healthy backend (3 configured)');
    expect(encodeGrpcMessage('100% ü\n')).toBe('100%25 %C3%BC%0A');
  });
});

describe('Status', () => {
  it('has the codes of the gRPC spec, from the one list in #config', () => {
    expect([Status.OK, Status.CANCELLED, Status.DEADLINE_EXCEEDED, Status.RESOURCE_EXHAUSTED, Status.UNIMPLEMENTED, Status.UNAVAILABLE, Status.UNAUTHENTICATED]).toEqual([0, 1, 4, 8, 12, 14, 16]);
  });
});
