/** Pool state without the network: panic mode, the per-backend stream cap and the wait queue. */
import { describe, expect, it } from '@jest/globals';
import { poolSchema } from '#config';
import { DEFAULT_UPSTREAM_OPTIONS } from '../upstream/upstream-sessions';
import { Backend } from './backend';
import { Pool, type PoolPick } from './pool';

function pool(n: number, extra: Record<string, unknown> = {}): { pool: Pool; backends: Backend[]; panics: boolean[] } {
  const config = poolSchema.parse({ name: 'p', match: { services: ['*'] }, backends: Array.from({ length: n }, (_, i) => ({ address: `127.0.0.1:${i + 1}` })), ...extra });
  // Backends connect lazily; nothing here touches the network.
  const backends = config.backends.map((b) => new Backend('p', b.address, b, DEFAULT_UPSTREAM_OPTIONS));
  const panics: boolean[] = [];
  return { pool: new Pool(config, backends, (p) => panics.push(p.panic)), backends, panics };
}

const first = (): number => 0;
const addressOf = (pick: PoolPick): string | undefined => (pick.kind === 'pick' ? pick.backend.address : undefined);

describe('Pool', () => {
  it('enters panic below panicThreshold, spreading over unhealthy backends, and leaves it', () => {
    const { pool: p, backends, panics } = pool(4);
    backends[0]!.setHealthy(false);
    backends[1]!.setHealthy(false);
    p.rebuild();
    expect(p.panic).toBe(false); // 2 of 4 = 50%, not below
    expect(p.ready).toBe(2);
    backends[2]!.setHealthy(false);
    p.rebuild();
    expect(p.panic).toBe(true);
    expect(p.ready).toBe(4);
    const picked = new Set(Array.from({ length: 40 }, (_, i) => addressOf(p.pick(() => (i % 4) / 4, 0))));
    expect(picked.size).toBeGreaterThan(1);
    backends.forEach((b) => b.setHealthy(true, false));
    p.rebuild();
    expect(panics).toEqual([true, false]);
  });

  it('a pool that replaces one in panic (a new revision) tells only a change of it', () => {
    const { pool: p, backends } = pool(4);
    backends.slice(0, 3).forEach((b) => b.setHealthy(false));
    p.rebuild();
    expect(p.panic).toBe(true);
    const config = poolSchema.parse({ name: 'p', match: { services: ['*'] }, backends: backends.map((b) => ({ address: b.address })) });
    const told: boolean[] = [];
    const still = new Pool(config, backends, (q) => told.push(q.panic), p.panic);
    expect(still.panic).toBe(true);
    expect(told).toEqual([]); // still in panic: nothing new to say
    backends.forEach((b) => b.setHealthy(true, false));
    const healed = new Pool(config, backends, (q) => told.push(q.panic), still.panic);
    expect(healed.panic).toBe(false);
    expect(told).toEqual([false]); // it left panic with this revision
  });

  it('never enters panic when panicThreshold is 0, and draining backends do not count', () => {
    const { pool: p, backends } = pool(2, { panicThreshold: 0 });
    backends[0]!.setHealthy(false);
    backends[1]!.setHealthy(false);
    p.rebuild();
    expect(p.panic).toBe(false);
    expect(p.pick(first, 0)).toEqual({ kind: 'unavailable' });
    // Draining backends are out of service: 1 available of 2 in service is 50%, no panic.
    const three = pool(3);
    three.backends[0]!.reconfigure({ address: '127.0.0.1:1', weight: 1, drain: true });
    three.backends[1]!.setHealthy(false);
    three.pool.rebuild();
    expect(three.pool.panic).toBe(false);
    expect(addressOf(three.pool.pick(first, 0))).toBe('127.0.0.1:3');
  });

  it('skips backends at maxStreamsPerBackend and answers busy when all are at it', () => {
    const { pool: p, backends } = pool(2, { maxStreamsPerBackend: 1, algorithm: 'round_robin' });
    backends[0]!.callStarted(0);
    expect(addressOf(p.pick(first, 0))).toBe('127.0.0.1:2');
    expect(addressOf(p.pick(first, 0))).toBe('127.0.0.1:2');
    backends[1]!.callStarted(0);
    expect(p.pick(first, 0)).toEqual({ kind: 'busy' });
    expect(p.ready).toBe(2);
    expect(p.pickExcept([backends[1]!], first)).toBeUndefined();
  });

  it('queues waiting calls in order, bounded by maxQueuedCalls, and not at all with queueTimeoutMs 0', () => {
    const { pool: p } = pool(1, { maxQueuedCalls: 2 });
    const woken: string[] = [];
    const waiter = (name: string, stillWaiting = true) => (): boolean => {
      if (stillWaiting) woken.push(name);
      return stillWaiting;
    };
    expect(p.enqueue(waiter('a'))).toBe(true);
    expect(p.enqueue(waiter('gone', false))).toBe(true);
    expect(p.enqueue(waiter('c'))).toBe(false); // full
    p.wakeOne();
    p.wakeOne(); // 'gone' no longer waits: skipped, nothing else queued
    expect(woken).toEqual(['a']);
    expect(p.queued).toBe(0);
    expect(pool(1, { queueTimeoutMs: 0 }).pool.enqueue(waiter('x'))).toBe(false);
  });

  it('least_response_time: a backend that stops answering looks slower every millisecond, and takes calls again within a second once it answers', () => {
    const { pool: p, backends } = pool(2, { algorithm: 'least_response_time' });
    const [a, b] = backends as [Backend, Backend];
    /** A call answered after 10 ms, every 10 ms, from `from` to `to`. */
    const serve = (x: Backend, from: number, to: number): void => {
      for (let t = from; t < to; t += 10) {
        x.callStarted(t);
        x.answered(10, t + 10);
        x.callReleased(true);
      }
    };
    serve(a, 0, 200);
    serve(b, 0, 200);
    // b carries two long streams (answered: they wait for nothing).
    for (let i = 0; i < 2; i++) {
      b.callStarted(200);
      b.answered(10, 210);
    }
    // a pauses with 2 calls waiting on it; b keeps answering.
    a.callStarted(200);
    a.callStarted(200);
    expect(a.latencyMs(205)).toBeLessThan(20);
    serve(b, 210, 400);
    expect(a.latencyMs(400)).toBeGreaterThanOrEqual(200); // silent for 200 ms: at least that slow
    expect(addressOf(p.pick(first, 400))).toBe('127.0.0.1:2');
    // The pause ends after 1.5 s: both held calls answer at once.
    serve(b, 400, 1700);
    a.answered(1500, 1700);
    a.answered(1500, 1700);
    a.callReleased(true);
    a.callReleased(true);
    expect(a.awaitingResponse).toBe(0);
    expect(addressOf(p.pick(first, 1700))).toBe('127.0.0.1:2');
    serve(b, 1700, 2700);
    expect(addressOf(p.pick(first, 2700))).toBe('127.0.0.1:1'); // back in rotation within a second
  });

  it('a hedge loser its backend never answered counts as that backend\'s load until it answers (or a second passes), so least_conn stops feeding a stalled backend', () => {
    const { pool: p, backends } = pool(3);
    const now = performance.now();
    // b0 is stalled: a call waits on it, loses to a hedge, and is cancelled on our side.
    backends[0]!.callStarted(now);
    backends[0]!.lostUnanswered(now);
    backends[0]!.callReleased(false);
    expect(backends[0]!.openStreams).toBe(0); // what /state and the stats show
    expect(backends[0]!.activeStreams).toBe(1); // what the pickers compare
    const picks = Array.from({ length: 20 }, () => addressOf(p.pick(first, now)));
    expect(picks).not.toContain('127.0.0.1:1');
    // It answers a call: the losers were seen after all, and its load is its open streams again.
    backends[0]!.callStarted(now);
    backends[0]!.answered(1, now);
    backends[0]!.callReleased(true);
    expect(backends[0]!.activeStreams).toBe(0);
    // Or a second passes without an answer: it is tried again.
    backends[1]!.lostUnanswered(now - 1001);
    expect(backends[1]!.activeStreams).toBe(0);
  });

  it('SRV priorities: only the lowest priority with an available backend takes calls', () => {
    const config = poolSchema.parse({ name: 'p', match: { services: ['*'] }, backends: [] });
    const served = [0, 0, 1].map((priority, i) => ({ address: `127.0.0.1:${i + 1}`, weight: 1, drain: false, source: 'dns' as const, priority }));
    const backends = served.map((b) => new Backend('p', b.address, b, DEFAULT_UPSTREAM_OPTIONS));
    const p = new Pool(config, backends);
    const picks = new Set(Array.from({ length: 20 }, (_, i) => addressOf(p.pick(() => (i % 3) / 3, 0))));
    expect(picks).toEqual(new Set(['127.0.0.1:1', '127.0.0.1:2']));
    backends[0]!.setHealthy(false);
    backends[1]!.setHealthy(false);
    expect(addressOf(p.pick(first, 0))).toBe('127.0.0.1:3');
    backends[1]!.setHealthy(true, false);
    expect(addressOf(p.pick(first, 0))).toBe('127.0.0.1:2');
  });
});
