import { describe, expect, it } from '@jest/globals';
import { nacksOf } from './wait-converged';

describe('nacksOf', () => {
  it('names the connected balancers that rejected this revision, with their reasons', () => {
    const nodes = [
      { nodeId: 'a', connected: true, lastNack: 'revision 8: pool "x" tls: cannot read CA file /ca.pem' },
      { nodeId: 'b', connected: true, lastNack: 'revision 7: an older refusal' },
      { nodeId: 'c', connected: false, lastNack: 'revision 8: gone since' },
      { nodeId: 'd', connected: true, lastNack: 'revision 80: another revision' },
      { nodeId: 'e', connected: true, lastNack: null },
    ];
    expect(nacksOf(nodes, 8)).toEqual(['a: pool "x" tls: cannot read CA file /ca.pem']);
    expect(nacksOf(nodes, 9)).toEqual([]);
  });
});
