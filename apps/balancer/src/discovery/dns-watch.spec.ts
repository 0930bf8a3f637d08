/** DnsWatch with a scripted DNS client and clock: refresh, TTL, backoff, hold, bounds. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { addressProblem, dnsDiscoverySchema, type DnsDiscoveryConfig } from '#config';
import { lookup } from './dns-lookup';
import { MAX_ADDRESSES, type DnsClient } from './dns-lookup';
import { DnsWatch, type WatchTimers } from './dns-watch';

type Answer = { address: string; ttl: number }[] | { code: string };

/** A DNS client answering from a script, one answer per call to resolve4 (the last repeats). */
function scripted(answers: Answer[]): DnsClient & { calls: number } {
  const client = {
    calls: 0,
    resolve4: async () => {
      const a = answers[Math.min(client.calls++, answers.length - 1)]!;
      if ('code' in a) throw Object.assign(new Error(a.code), { code: a.code });
      return a;
    },
    resolve6: async () => [],
    resolveSrv: async () => [],
  };
  return client;
}

/** Timers that run only when the test says so: `advance(ms)` fires what falls due. */
function clock(): WatchTimers & { advance(ms: number): Promise<void>; due: number[] } {
  let now = 1_000_000;
  let queue: { at: number; fn: () => void }[] = [];
  const t = {
    now: () => now,
    setTimeout: (fn: () => void, ms: number) => {
      const entry = { at: now + ms, fn };
      queue.push(entry);
      return entry;
    },
    clearTimeout: (h: unknown) => {
      queue = queue.filter((e) => e !== h);
    },
    random: () => 0, // no jitter: delays are exact
    get due() {
      return queue.map((e) => e.at - now);
    },
    async advance(ms: number) {
      const end = now + ms;
      for (;;) {
        await flush();
        queue.sort((a, b) => a.at - b.at);
        const next = queue[0];
        if (next === undefined || next.at > end) break;
        queue.shift();
        now = next.at;
        next.fn();
      }
      now = end;
      await flush();
    },
  };
  return t;
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

const A: DnsDiscoveryConfig = { name: 'grpc.svc.test', type: 'A', port: 50051, refreshMs: 5000, holdMs: 30_000 };
const rec = (...last: number[]) => last.map((n) => ({ address: `127.0.0.${n}`, ttl: 60 }));

function watch(answers: Answer[], config: DnsDiscoveryConfig = A) {
  const client = scripted(answers);
  const timers = clock();
  const sets: string[][] = [];
  const results: string[] = [];
  const w = new DnsWatch(config, client, { changed: (b) => sets.push(b.map((x) => x.address)), resolved: (r) => results.push(r), transition: () => {} }, timers);
  w.start();
  return { w, client, timers, sets, results };
}

describe('DnsWatch (scripted DNS and clock)', () => {
  it('resolves at once, then every refreshMs; tells only changes', async () => {
    const { client, timers, sets } = watch([rec(11, 12, 13), rec(11, 12, 13), rec(11, 12, 13, 14, 15, 16)]);
    await timers.advance(0);
    expect(sets).toEqual([['127.0.0.11:50051', '127.0.0.12:50051', '127.0.0.13:50051']]);
    expect(timers.due).toEqual([5000]);
    await timers.advance(5000);
    expect(sets).toHaveLength(1); // same answer: nothing to tell
    await timers.advance(5000);
    expect(client.calls).toBe(3);
    expect(sets[1]).toHaveLength(6);
  });

  it('a shorter TTL wins over refreshMs, never below a second', async () => {
    const { timers } = watch([[{ address: '127.0.0.11', ttl: 2 }]]);
    await timers.advance(0);
    expect(timers.due).toEqual([2000]);
    const zero = watch([[{ address: '127.0.0.11', ttl: 0 }]]);
    await zero.timers.advance(0);
    expect(zero.timers.due).toEqual([1000]);
  });

  it('a timeout, SERVFAIL or REFUSED keeps the last good set and backs off 1 s, 2 s, 4 s (at most refreshMs)', async () => {
    const { w, timers, sets, results } = watch([rec(11, 12), { code: 'ETIMEOUT' }, { code: 'ESERVFAIL' }, { code: 'EREFUSED' }, { code: 'ECONNREFUSED' }, rec(11, 12)]);
    await timers.advance(0);
    await timers.advance(5000); // ETIMEOUT
    expect(timers.due).toEqual([1000]);
    await timers.advance(1000); // ESERVFAIL
    expect(timers.due).toEqual([2000]);
    await timers.advance(2000); // EREFUSED
    expect(timers.due).toEqual([4000]);
    await timers.advance(4000); // ECONNREFUSED
    expect(timers.due).toEqual([5000]); // capped at refreshMs
    expect(sets).toHaveLength(1);
    expect(w.current?.map((b) => b.address)).toEqual(['127.0.0.11:50051', '127.0.0.12:50051']);
    expect(w.status().lastError).toMatch(/ECONNREFUSED|connection refused/i);
    await timers.advance(5000);
    expect(results).toEqual(['success', 'timeout', 'servfail', 'refused', 'error', 'success']);
    expect(timers.due).toEqual([5000]);
  });

  it('NXDOMAIN is held for holdMs before the set empties; an answer in between cancels it', async () => {
    const { w, timers, sets } = watch([rec(11), { code: 'ENOTFOUND' }, rec(11), { code: 'ENOTFOUND' }], { ...A, holdMs: 10_000 });
    await timers.advance(0);
    await timers.advance(5000); // NXDOMAIN #1
    await timers.advance(1000); // answers again
    expect(w.current).toHaveLength(1);
    await timers.advance(5000); // NXDOMAIN from here on
    expect(w.current).toHaveLength(1);
    await timers.advance(9000);
    expect(w.current).toHaveLength(1); // held
    await timers.advance(2000);
    expect(w.current).toEqual([]);
    expect(sets.at(-1)).toEqual([]);
    expect(w.emptyReason).toMatch(/grpc\.svc\.test.*NXDOMAIN/);
  });

  it('no records (NODATA) counts as empty too; holdMs 0 empties at once', async () => {
    const { w, timers } = watch([rec(11), { code: 'ENODATA' }], { ...A, holdMs: 0 });
    await timers.advance(0);
    await timers.advance(5000);
    expect(w.current).toEqual([]);
  });

  it('at most MAX_ADDRESSES addresses per name; the rest are dropped and counted', async () => {
    const many = Array.from({ length: MAX_ADDRESSES + 500 }, (_, i) => ({ address: `127.1.${i >> 8}.${i & 255}`, ttl: 30 }));
    const { w, timers } = watch([many]);
    await timers.advance(0);
    expect(w.current).toHaveLength(MAX_ADDRESSES);
  });

  it('duplicate records become one backend', async () => {
    const { w, timers } = watch([[...rec(11, 11, 12)]]);
    await timers.advance(0);
    expect(w.current).toHaveLength(2);
  });

  it('stop() ends the timers and ignores an answer still on its way', async () => {
    const { w, timers, sets } = watch([rec(11)]);
    w.stop();
    await timers.advance(60_000);
    expect(sets).toEqual([]);
    expect(timers.due).toEqual([]);
  });

  it('SRV: ports, weights and priorities from the records, targets resolved to addresses', async () => {
    const client: DnsClient = {
      resolveSrv: async () => [
        { name: 'a.svc.test', port: 7001, priority: 0, weight: 3 },
        { name: 'b.svc.test', port: 7002, priority: 0, weight: 0 },
        { name: 'c.svc.test', port: 7003, priority: 1, weight: 70_000 },
        { name: 'gone.svc.test', port: 7004, priority: 0, weight: 1 },
      ],
      resolve4: async (name: string) => {
        const map: Record<string, string> = { 'a.svc.test': '127.0.0.21', 'b.svc.test': '127.0.0.22', 'c.svc.test': '127.0.0.23' };
        if (map[name] === undefined) throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
        return [{ address: map[name]!, ttl: 3 }];
      },
      resolve6: async () => {
        throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
      },
    };
    const timers = clock();
    const w = new DnsWatch({ name: '_grpc._tcp.svc.test', type: 'SRV', refreshMs: 5000, holdMs: 0 }, client, { changed: () => {}, resolved: () => {}, transition: () => {} }, timers);
    w.start();
    await timers.advance(0);
    expect(w.current).toEqual([
      { address: '127.0.0.21:7001', weight: 3, priority: 0 },
      { address: '127.0.0.22:7002', weight: 1, priority: 0 },
      { address: '127.0.0.23:7003', weight: 1000, priority: 1 },
    ]);
    expect(timers.due).toEqual([3000]); // the targets' TTL
  });

  it('fast-check: whatever A/AAAA/SRV answers a server gives, every discovered address is one the balancer can dial, and at most MAX_ADDRESSES', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.ipV4(), fc.ipV6()), { maxLength: 40 }),
        fc.array(fc.record({ port: fc.integer({ min: 1, max: 65535 }), priority: fc.integer({ min: 0, max: 65535 }), weight: fc.integer({ min: 0, max: 65535 }), target: fc.oneof(fc.ipV4(), fc.constant('t.svc.test')) }), { maxLength: 20 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        async (ips, srv, ttl) => {
          const v4 = ips.filter((ip) => !ip.includes(':'));
          const v6 = ips.filter((ip) => ip.includes(':'));
          const client: DnsClient = {
            resolve4: async () => v4.map((address) => ({ address, ttl })),
            resolve6: async () => v6.map((address) => ({ address, ttl })),
            resolveSrv: async () => srv.map((r) => ({ name: r.target, port: r.port, priority: r.priority, weight: r.weight })),
          };
          for (const config of [A, { ...A, type: 'AAAA' as const }, { name: '_grpc._tcp.svc.test', type: 'SRV' as const, refreshMs: 5000, holdMs: 0 }]) {
            try {
              const r = await lookup(client, config);
              expect(r.backends.length).toBeLessThanOrEqual(MAX_ADDRESSES);
              for (const b of r.backends) {
                expect(addressProblem(b.address)).toBeNull();
                expect(b.weight).toBeGreaterThanOrEqual(1);
                expect(b.weight).toBeLessThanOrEqual(1000);
              }
            } catch (err) {
              expect((err as { kind?: string }).kind).toBe('empty'); // nothing usable: an empty answer, never a crash
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the schema refuses names that are not DNS names, a missing port for A/AAAA, a port with SRV, and resolvers that are not IP addresses', () => {
    const problems = (dns: Record<string, unknown>): string[] => {
      const r = dnsDiscoverySchema.safeParse({ name: 'grpc.svc.test', type: 'A', port: 50051, ...dns });
      return r.success ? [] : [...new Set(r.error.issues.map((i) => i.path.join('.')))];
    };
    expect(problems({})).toEqual([]);
    expect(problems({ name: '_grpc._tcp.svc.test', type: 'SRV', port: undefined })).toEqual([]);
    for (const name of ['', 'bad name', 'a..b', '-a.b', 'a.b-', `${'a'.repeat(64)}.b`, `${'a.'.repeat(127)}bb`, 'a/b', 'a\u0000b', '..']) expect(problems({ name })).toEqual(['name']);
    expect(problems({ port: undefined })).toEqual(['port']);
    expect(problems({ type: 'SRV', name: '_grpc._tcp.svc.test' })).toEqual(['port']);
    expect(problems({ resolvers: ['127.0.0.1:5353', '[::1]:53', '127.0.0.1', '[::1]'] })).toEqual([]);
    for (const r of ['dns.example', '127.0.0.1:0', '127.0.0.1:65536', '::1', '1.2.3.999', '']) expect(problems({ resolvers: [r] })).toEqual(['resolvers.0']);
    expect(problems({ refreshMs: 10 })).toEqual(['refreshMs']);
  });
});
