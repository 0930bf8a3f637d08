/**
 * The token bucket of the rebalance rate: `left` (what the last round did not use) plus a round's
 * share of `perSecond`, held to one round's share plus one. A round ends the whole part of it, so
 * while streams are being ended the fraction carries over exactly (2.5 a round ends 2, 3, 2, 3;
 * 0.25 a round ends one every fourth), and an idle pool saves up no more than one round's worth.
 * Over any span of T ms at most perSecond x T / 1000 + perRound + 1 end.
 */
export function rebalanceAllowance(left: number, perSecond: number, roundMs: number): number {
  const perRound = (perSecond * roundMs) / 1000;
  return Math.min(left + perRound, perRound + 1);
}
