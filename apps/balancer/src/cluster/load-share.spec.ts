/** Load sharing without processes: two workers' Backends, their reports summed, each seeing the other's share. */
import { afterEach, describe, expect, it } from '@jest/globals';
import { configSchema } from '#config';
import { buildRuntime, Runtime } from '../config/runtime';
import { DEFAULT_UPSTREAM_OPTIONS } from '../upstream/upstream-sessions';
import { LoadTotals, WorkerLoadShare } from './load-share';

const CONFIG = configSchema.parse({ pools: [{ name: 'p', match: { services: ['*'] }, maxStreamsPerBackend: 2, backends: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:2' }] }] });
const worker = (): Runtime => buildRuntime(CONFIG, 4, Runtime.empty(), DEFAULT_UPSTREAM_OPTIONS).runtime;

describe('load sharing between workers', () => {
  const shares: WorkerLoadShare[] = [];
  afterEach(() => shares.splice(0).forEach((s) => s.stop()));

  it('gives each worker the others\' streams, and only when counts change', () => {
    const [a, b] = [worker(), worker()];
    const totals = new LoadTotals();
    const sent: number[] = [];
    const share = (rt: Runtime, id: number): WorkerLoadShare => {
      const s = new WorkerLoadShare(() => rt, (revision, counts) => {
        sent.push(id);
        totals.report(id, revision, counts);
      }, 60_000);
      shares.push(s);
      return s;
    };
    const [sa, sb] = [share(a, 1), share(b, 2)];
    const [a1, a2] = a.pools.get('p')!.backends;
    const [b1, b2] = b.pools.get('p')!.backends;
    a1!.callStarted(0);
    a1!.callStarted(0);
    b2!.callStarted(0);
    sa.report();
    sb.report();
    sb.report(); // unchanged: not sent again
    expect(sent).toEqual([1, 2]);
    const t = totals.take(4)!;
    expect([...t]).toEqual([2, 1]);
    expect(totals.take(4)).toBeNull(); // nothing new
    sa.totals(4, t);
    sb.totals(4, t);
    // Each counts its own plus the other's; the ops figures stay its own.
    expect([a1!.activeStreams, a2!.activeStreams, b1!.activeStreams, b2!.activeStreams]).toEqual([2, 1, 2, 1]);
    expect([b1!.ownStreams, b2!.ownStreams]).toEqual([0, 1]);
    // Worker b's picks see backend 1 at its cap of 2 (a's streams): only backend 2 is below it.
    const pick = b.pools.get('p')!.pick(() => 0, 0);
    expect(pick.kind === 'pick' && pick.backend.address).toBe('127.0.0.1:2');
    // Totals of another revision are ignored.
    sb.totals(5, new Int32Array([9, 9]));
    expect(b1!.activeStreams).toBe(2);
  });

  it('wakes calls waiting for a slot when another worker\'s streams end', () => {
    const rt = worker();
    const s = new WorkerLoadShare(() => rt, () => {}, 60_000);
    shares.push(s);
    s.report();
    const pool = rt.pools.get('p')!;
    s.totals(4, new Int32Array([2, 2]));
    expect(pool.pick(() => 0, 0).kind).toBe('busy');
    const woken: string[] = [];
    pool.enqueue(() => {
      const p = pool.pick(() => 0, 0);
      woken.push(p.kind);
      if (p.kind === 'busy') pool.enqueue(() => true, true);
      return true;
    });
    s.totals(4, new Int32Array([1, 2]));
    expect(woken).toEqual(['pick']);
    expect(pool.queued).toBe(0);
  });
});
