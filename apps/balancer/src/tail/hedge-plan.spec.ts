/** The hedge planner with a scripted clock and loads (issue 26). */
import { describe, expect, it } from '@jest/globals';
import type { HedgeLoad } from './hedge-gate';
import { planHedge, type HedgeFacts } from './hedge-plan';

/** A backend that last answered at `lastAnswer` while calls wait on it (null: none waits). */
const backend = (lastAnswer: number | null): HedgeLoad => ({ silentMs: (now) => (lastAnswer === null ? 0 : now - lastAnswer) });
const rule = { maxAttempts: 3, nonFatal: 0 };
const facts = (over: Partial<HedgeFacts>): HedgeFacts => ({ rule, attempts: 1, candidate: backend(999), waitingOn: backend(600), replacing: false, poolSlow: false, waitedMs: 50, now: 1000, ...over });

describe('planHedge (scripted clock and loads)', () => {
  it('a frozen backend, an answering peer: send', () => {
    expect(planHedge(facts({}))).toMatchObject({ kind: 'send' });
  });

  it('whole pool slow (overload): the backend waited on keeps answering others: no hedge', () => {
    expect(planHedge(facts({ waitingOn: backend(998), candidate: backend(999) }))).toEqual({ kind: 'skip', why: 'backend_answering' });
    // Every backend late by the same amount, 400 ms into the call: still answering, still no hedge.
    expect(planHedge(facts({ waitingOn: backend(995), candidate: backend(996), waitedMs: 400 }))).toEqual({ kind: 'skip', why: 'backend_answering' });
  });

  it('whole pool slow (its median past the hedge delay): no hedge, even against a frozen backend', () => {
    expect(planHedge(facts({ poolSlow: true }))).toEqual({ kind: 'skip', why: 'pool_slow' });
    // A replacement for a failed attempt adds no load: sent even then.
    expect(planHedge(facts({ poolSlow: true, replacing: true }))).toMatchObject({ kind: 'send' });
    // Spent attempts are said first.
    expect(planHedge(facts({ poolSlow: true, attempts: 3 }))).toEqual({ kind: 'skip', why: 'attempts spent' });
  });

  it('a candidate as silent as the one waited on: no hedge', () => {
    expect(planHedge(facts({ candidate: backend(900), waitingOn: backend(900) }))).toEqual({ kind: 'skip', why: 'candidate_silent' });
  });

  it('attempts spent, or no other backend: no hedge', () => {
    expect(planHedge(facts({ attempts: 3 }))).toEqual({ kind: 'skip', why: 'attempts spent' });
    expect(planHedge(facts({ candidate: undefined }))).toEqual({ kind: 'skip', why: 'no other backend' });
  });

  it('in place of an attempt that failed with a non-fatal status: sent whatever the loads (it adds no load)', () => {
    expect(planHedge(facts({ replacing: true, waitingOn: backend(999) }))).toMatchObject({ kind: 'send' });
    expect(planHedge(facts({ waitingOn: undefined }))).toMatchObject({ kind: 'send' });
  });

  it('as the clock runs, the same stuck backend turns a hedge from "not yet" to "send"', () => {
    // The call was sent at 900 to a backend that last answered at 890.
    const stuck = backend(890);
    const peer = backend(null);
    const at = (now: number) => planHedge(facts({ candidate: peer, waitingOn: stuck, waitedMs: now - 900, now })).kind;
    expect(at(910)).toBe('send'); // silent 20 ms >= half of 10 ms waited
    const busy = backend(905); // answered someone 5 ms after the call was sent
    expect(planHedge(facts({ candidate: peer, waitingOn: busy, waitedMs: 50, now: 950 })).kind).toBe('send'); // silent 45 >= 25
    expect(planHedge(facts({ candidate: peer, waitingOn: backend(940), waitedMs: 50, now: 950 })).kind).toBe('skip'); // silent 10 < 25
  });
});
