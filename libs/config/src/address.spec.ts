import * as http2 from 'node:http2';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { addressProblem } from './address';
import { backendSchema } from './schema';

describe('backend addresses', () => {
  it.each(['127.0.0.1:50051', 'localhost:1', 'greeter.localhost:65535', '[::1]:8080', '[::ffff:127.0.0.1]:443', 'a-b.localhost:80'])('accepts %s', (a) => {
    expect(addressProblem(a)).toBeNull();
    expect(backendSchema.safeParse({ address: a }).success).toBe(true);
  });

  it.each(['[127.0.0.1]:80', '127.0.0.999:80', '127.1:80', '127.0.1:80', '0x7f.1:80', 'a..b:80', '-a:80', 'a-:80', '[::1', '[::1]', '::1:80', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:+80', '[fe80::1%eth0]:80', 'a b:80', ':80', `${'a'.repeat(64)}:80`])(
    'refuses %s',
    (a) => {
      expect(addressProblem(a)).not.toBeNull();
      expect(backendSchema.safeParse({ address: a }).success).toBe(false);
    },
  );

  it('whatever it accepts, node can dial: new URL and http2.connect do not throw (fast-check)', () => {
    const host = fc.oneof(fc.ipV4(), fc.ipV6().map((v) => `[${v}]`), fc.domain(), fc.string({ maxLength: 30 }), fc.ipV4Extended());
    fc.assert(
      fc.property(host, fc.oneof(fc.integer({ min: -1, max: 70_000 }).map(String), fc.string({ maxLength: 6 })), (h, p) => {
        const address = `${h}:${p}`;
        if (addressProblem(address) !== null) return;
        expect(() => new URL(`http://${address}`)).not.toThrow();
        // Dial, and hang up at once: the address is only parsed here (and a test never reaches past loopback).
        if (h.startsWith('127.') || h === '[::1]') {
          const session = http2.connect(`http://${address}`);
          session.on('error', () => {});
          session.destroy();
        }
      }),
      { numRuns: 2000, seed: 42 },
    );
  });
});
