/**
 * After a write (apply, drain, rollback): waits until every connected balancer of the fleet runs
 * the new revision (`converged` on GET /v1/revisions/{n}, fleet-wide across admins). A balancer
 * that NACKs the revision is reported at once, with its reason, and the command fails: waiting
 * out the timeout for a refusal that has already arrived helps nobody.
 */
import { Option, type Command } from 'commander';
import type { ApiClient } from './api-client';

export interface WaitFlags {
  wait: boolean;
  waitTimeout: string;
}

/** --no-wait and --wait-timeout, as apply has them. */
export function waitOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--no-wait', 'do not wait for the balancers to apply the new revision'))
    .addOption(new Option('--wait-timeout <seconds>', 'how long to wait for the balancers').env('SWITCHBOARD_WAIT_TIMEOUT').default('60'));
}

/** The NACKs of `revision` among `nodes`: "nodeId: reason". */
export function nacksOf(nodes: readonly { nodeId: string; connected: boolean; lastNack: string | null }[], revision: number): string[] {
  const prefix = `revision ${revision}: `;
  return nodes.filter((n) => n.connected && n.lastNack?.startsWith(prefix)).map((n) => `${n.nodeId}: ${n.lastNack!.slice(prefix.length)}`);
}

export async function waitConverged(api: ApiClient, revision: number, timeoutMs: number): Promise<void> {
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  const tty = process.stdout.isTTY;
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const rev = (await api.call(api.api.GET('/v1/revisions/{n}', { params: { path: { n: revision } } }))).data;
    // xDS clients are listed too; convergence is the balancers' (an xDS client ACKs per type, not per revision).
    const nodes = (await api.call(api.api.GET('/v1/nodes'))).data.items.filter((n) => n.kind !== 'xds');
    if (rev.converged) {
      if (tty) process.stdout.write('\r\x1b[2K');
      const connected = nodes.filter((n) => n.connected).length;
      process.stdout.write(`Converged: ${connected} connected balancer${connected === 1 ? ' runs' : 's run'} revision ${revision}.\n`);
      return;
    }
    const nacks = nacksOf(nodes, revision);
    if (nacks.length > 0) {
      if (tty) process.stdout.write('\r\x1b[2K');
      throw new Error(`revision ${revision} was stored, but ${nacks.length === 1 ? 'a balancer rejected it' : `${nacks.length} balancers rejected it`} and keep${nacks.length === 1 ? 's' : ''} serving what ${nacks.length === 1 ? 'it' : 'they'} had:\n  ${nacks.join('\n  ')}`);
    }
    if (Date.now() > deadline) {
      if (tty) process.stdout.write('\n');
      const behind = nodes.filter((n) => n.connected && (n.appliedRevision ?? 0) < revision).map((n) => `${n.nodeId} (revision ${n.appliedRevision ?? 'none'})`);
      throw new Error(`revision ${revision} was stored but not every balancer applied it within ${timeoutMs / 1000} s; behind: ${behind.join(', ') || 'none now'} (see switchboard get nodes)`);
    }
    if (tty) process.stdout.write(`\r${frames[i % frames.length]} waiting for the balancers to apply revision ${revision}...`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
