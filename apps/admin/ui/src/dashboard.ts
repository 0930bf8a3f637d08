/**
 * The signed-in dashboard: pools with live figures and charts per backend, balancers, and
 * revisions with their diff; drain/undrain and rollback for a token with the write scope.
 * Everything comes from the admin's REST API through the typed client; rows are updated in
 * place on each refresh, so keyboard focus and open diffs survive it.
 */
import { describeProblem, type Schemas, type SwitchboardApi } from '#api-client';
import { confirmAction } from './confirm';
import { el, fmt, setText } from './dom';
import { History } from './history';
import { Sparkline } from './sparkline';

type Pool = Schemas['Pool'];
type Figures = Schemas['BackendFigures'];

interface Row {
  tr: HTMLTableRowElement;
  state: HTMLElement;
  active: HTMLElement;
  cps: HTMLElement;
  errorRate: HTMLElement;
  p99: HTMLElement;
  chart: Sparkline;
  action: HTMLButtonElement | null;
  draining: boolean;
}

export class Dashboard {
  private readonly history = new History();
  /** Each pool's total of streams ended, sampled at each refresh, for a per-minute rate. */
  private readonly ended = new Map<string, { t: number; total: number }[]>();
  private readonly rows = new Map<string, Row>();
  private readonly poolCards = new Map<string, { card: HTMLElement; meta: HTMLElement; body: HTMLTableSectionElement }>();
  private lastRevisionTop = -1;

  constructor(
    private readonly api: SwitchboardApi,
    private readonly canWrite: boolean,
    private readonly say: (message: string) => void,
  ) {}

  /** One refresh of pools, figures and balancers; revisions when the newest one changed. */
  /** Signed out: what is still on its way is dropped, nothing more is drawn. */
  stop(): void {
    this.stopped = true;
  }

  private stopped = false;

  async refresh(): Promise<void> {
    const [pools, stats, nodes, routes] = await Promise.all([
      this.get(this.api.GET('/v1/pools', { params: { query: { limit: 500 } } })),
      this.get(this.api.GET('/v1/stats')),
      this.get(this.api.GET('/v1/nodes')),
      this.get(this.api.GET('/v1/routes', { params: { query: { limit: 500 } } })),
    ]);
    if (this.stopped) return;
    this.renderPools(pools.items, stats);
    this.renderRoutes(routes.items, stats);
    this.renderNodes(nodes.items);
    const top = (await this.get(this.api.GET('/v1/revisions', { params: { query: { limit: 1 } } }))).items[0]?.number ?? 0;
    if (this.stopped) return;
    if (top !== this.lastRevisionTop || stats.nodes.length > 0) await this.renderRevisions();
    this.lastRevisionTop = top;
  }

  private async get<D>(request: Promise<{ data?: D; error?: unknown; response: Response }>): Promise<D> {
    const r = await request;
    if (!r.response.ok) throw new Error(describeProblem(r.response.status, r.error));
    return r.data as D;
  }

  private renderPools(pools: Pool[], stats: Schemas['Stats']): void {
    const host = document.getElementById('pools')!;
    const now = Date.now() / 1000;
    const seenPools = new Set<string>();
    const seenRows = new Set<string>();
    if (pools.length === 0) setText(host, 'No pools yet: create one with the API or switchboard apply.');
    else if (host.firstChild?.nodeType === Node.TEXT_NODE) host.textContent = '';
    for (const pool of pools) {
      seenPools.add(pool.name);
      const card = this.poolCard(host, pool);
      const poolStats = stats.pools.find((p) => p.name === pool.name);
      const failure = poolStats?.failure ?? null;
      if (failure) setText(card.meta, `${card.meta.textContent ?? ''} · cannot be served on ${failure.nodeId}: ${failure.reason}`);
      if (pool.streams && poolStats) {
        const e = poolStats.streamsEnded;
        const perMinute = this.endedPerMinute(pool.name, now, e.rebalance + e.max_age + e.drain_timeout);
        setText(card.meta, `${card.meta.textContent ?? ''} · streams ended ${perMinute === null ? '–' : perMinute}/min (rebalance ${e.rebalance}, max age ${e.max_age}, drain timeout ${e.drain_timeout} in all)`);
      }
      card.meta.classList.toggle('failing', failure !== null);
      const figures = new Map<string, Figures>((stats.pools.find((p) => p.name === pool.name)?.backends ?? []).map((b) => [b.address, b]));
      // Static backends, then those the balancers found by DNS (drained through the pool's drainAddresses).
      const drained = new Set(pool.drainAddresses ?? []);
      const statics = new Set(pool.backends.map((b) => b.address));
      const listed = [
        ...pool.backends.map((b) => ({ address: b.address, drain: b.drain || drained.has(b.address), dns: false })),
        ...[...figures.values()].filter((f) => f.source === 'dns' && !statics.has(f.address)).map((f) => ({ address: f.address, drain: drained.has(f.address), dns: true })),
      ];
      for (const b of listed) {
        const key = `${pool.name}|${b.address}`;
        seenRows.add(key);
        const row = this.row(card.body, pool.name, b.address, key, b.dns);
        const f = figures.get(b.address);
        const draining = b.drain;
        const state = draining ? 'draining' : !f ? 'no report' : f.ejected ? 'ejected' : !f.reachable ? 'unreachable' : f.healthy ? 'healthy' : 'unhealthy';
        setText(row.state, state);
        row.state.title = f?.lastError ?? '';
        row.state.className = `state ${state.replace(' ', '-')}`;
        setText(row.active, f ? String(f.activeStreams) : '–');
        setText(row.cps, fmt(f?.callsPerSecond));
        setText(row.p99, fmt(f?.latencyMs.p99));
        if (f) {
          const s = this.history.add(key, now, { active: f.activeStreams, callsPerSecond: f.callsPerSecond, totalCalls: f.totalCalls, errors: f.errors });
          const rate = History.errorRate(s);
          setText(row.errorRate, rate === null ? '–' : `${rate.toFixed(1)}%`);
          row.chart.update(s);
        }
        row.draining = draining;
        if (row.action) {
          setText(row.action, draining ? 'Undrain' : 'Drain');
          row.action.setAttribute('aria-label', `${draining ? 'Undrain' : 'Drain'} ${b.address} in pool ${pool.name}`);
        }
      }
    }
    for (const [name, c] of this.poolCards) if (!seenPools.has(name)) (c.card.remove(), this.poolCards.delete(name));
    for (const [key, r] of this.rows) if (!seenRows.has(key)) (r.chart.destroy(), r.tr.remove(), this.rows.delete(key));
    this.history.keep(seenRows);
  }

  /** Each route's rules with their configured split and each pool's live calls/s (summed over its backends and the balancers). */
  private renderRoutes(routes: Schemas['Route'][], stats: Schemas['Stats']): void {
    const host = document.getElementById('routes')!;
    const rate = new Map(stats.pools.map((p) => [p.name, p.backends.reduce((a, b) => a + b.callsPerSecond, 0)]));
    const rows = routes.flatMap((r) =>
      r.rules.map((rule, i) => {
        const total = rule.backends.reduce((a, b) => a + b.weight, 0);
        const split = rule.backends.map((b) => `${b.pool} ${total > 0 ? Math.round((100 * b.weight) / total) : 0}% (${(rate.get(b.pool) ?? 0).toFixed(1)} calls/s)`).join(' · ');
        const matches = rule.matches.map((m) => [m.method ? `${m.method.service}${m.method.method ? `/${m.method.method}` : ''}` : '', ...(m.headers ?? []).map((h) => `${h.name}: ${h.value}`)].filter(Boolean).join(' + ')).join(' | ') || 'every call';
        return el('tr', {}, el('th', { scope: 'row' }, i === 0 ? r.name : ''), el('td', {}, matches), el('td', {}, split + (rule.mirror ? ` · mirror ${rule.mirror.percent}% to ${rule.mirror.pool}` : '')));
      }),
    );
    host.replaceChildren(
      rows.length === 0
        ? document.createTextNode('No routes: pools serve calls by their own match.')
        : el('table', { 'aria-label': 'Routes' }, el('thead', {}, el('tr', {}, ...['Route', 'Matches', 'Split (configured, live calls/s per pool)'].map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, ...rows)),
    );
  }

  /** Streams ended over the last minute (or the time sampled so far), from the balancers' summed totals; null until two samples. */
  private endedPerMinute(pool: string, now: number, total: number): number | null {
    const samples = this.ended.get(pool) ?? [];
    samples.push({ t: now, total });
    while (samples.length > 2 && now - samples[0]!.t > 60) samples.shift();
    this.ended.set(pool, samples);
    const first = samples[0]!;
    if (samples.length < 2 || now <= first.t) return null;
    return Math.max(0, Math.round(((total - first.total) * 60) / (now - first.t)));
  }

  private poolCard(host: HTMLElement, pool: Pool): { card: HTMLElement; meta: HTMLElement; body: HTMLTableSectionElement } {
    let c = this.poolCards.get(pool.name);
    if (c === undefined) {
      const body = el('tbody');
      const meta = el('p', { class: 'pool-meta' });
      const headers = ['Backend', 'State', 'Active streams', 'Calls/s', 'Error rate', 'p99 ms', 'Last 5 minutes: active (blue), calls/s (green)', ...(this.canWrite ? ['Actions'] : [])];
      const table = el('table', { 'aria-label': `Backends of pool ${pool.name}` }, el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col' }, h)))), body);
      const card = el('article', { class: 'pool', 'data-pool': pool.name, 'aria-label': `Pool ${pool.name}` }, el('h3', {}, pool.name), meta, table);
      host.append(card);
      c = { card, meta, body };
      this.poolCards.set(pool.name, c);
    }
    // Both parts of a match: two pools for the same service on different authorities must read differently.
    const match = [pool.match?.services?.join(', '), pool.match?.authority !== undefined ? `authority ${pool.match.authority}` : undefined].filter(Boolean).join(' on ') || 'nothing';
    const policy = pool.healthPolicy ? `health policy ${pool.healthPolicy}` : 'no health policy';
    const tail = [pool.retry ? 'retry' : '', pool.hedging ? 'hedging' : ''].filter(Boolean).join(' + ');
    const dns = pool.discovery ? ` · DNS ${pool.discovery.dns.type} ${pool.discovery.dns.name}` : '';
    setText(c.meta, `algorithm ${pool.algorithm} · ${policy} · serves ${match}${dns}${tail ? ` · ${tail}` : ''}`);
    return c;
  }

  private row(body: HTMLTableSectionElement, pool: string, address: string, key: string, dns = false): Row {
    const existing = this.rows.get(key);
    if (existing) return existing;
    const cell = (cls = ''): HTMLTableCellElement => el('td', cls ? { class: cls } : {});
    const state = el('span', { class: 'state' });
    const [active, cps, errorRate, p99] = [cell('num'), cell('num'), cell('num'), cell('num')];
    const chartCell = el('td', { class: 'chart' });
    const tr = el('tr', { 'data-backend': address }, el('th', { scope: 'row' }, address, ...(dns ? [el('span', { class: 'source', title: 'found by the pool\'s DNS discovery' }, ' dns')] : [])), el('td', {}, state), active, cps, errorRate, p99, chartCell);
    let action: HTMLButtonElement | null = null;
    if (this.canWrite) {
      action = el('button', { type: 'button', class: 'drain' }, 'Drain');
      const button = action;
      button.addEventListener('click', () => void this.toggleDrain(pool, address, !this.rows.get(key)!.draining));
      tr.append(el('td', {}, button));
    }
    body.append(tr);
    const row: Row = { tr, state, active, cps, errorRate, p99, chart: new Sparkline(chartCell, `${address} in pool ${pool}`), action, draining: false };
    this.rows.set(key, row);
    return row;
  }

  private async toggleDrain(pool: string, address: string, drain: boolean): Promise<void> {
    const ok = await confirmAction(drain ? `Drain ${address} in pool ${pool}? It takes no new calls; calls in flight finish.` : `Send calls to ${address} in pool ${pool} again?`);
    if (!ok) return;
    try {
      const res = await this.get(this.api.PATCH('/v1/pools/{pool}/backends/{address}', { params: { path: { pool, address } }, body: { drain } }));
      this.say(`${drain ? 'Draining' : 'Undrained'} ${address} in pool ${pool}: revision ${res.revision}.`);
      await this.refresh();
    } catch (err) {
      this.say(`Could not ${drain ? 'drain' : 'undrain'} ${address}: ${(err as Error).message}`);
    }
  }

  private renderNodes(nodes: Schemas['Node'][]): void {
    const body = document.querySelector('#nodes tbody')!;
    body.replaceChildren(
      ...(nodes.length === 0
        ? [el('tr', {}, el('td', { colspan: '5' }, 'No balancer has connected yet.'))]
        : nodes.map((n) =>
            el(
              'tr',
              { 'data-node': n.nodeId },
              el('th', { scope: 'row' }, n.kind === 'xds' ? `${n.nodeId} (xDS client)` : n.nodeId),
              el('td', {}, n.connected ? 'connected' : 'disconnected'),
              el('td', { class: 'num' }, n.appliedRevision !== null ? String(n.appliedRevision) : n.xds?.revision != null ? `${n.xds.revision} (pushed)` : '–'),
              el('td', {}, new Date(n.lastSeen).toLocaleTimeString()),
              el('td', {}, n.lastNack ?? '–'),
            ),
          )),
    );
  }

  private async renderRevisions(): Promise<void> {
    const page = await this.get(this.api.GET('/v1/revisions', { params: { query: { limit: 20 } } }));
    const body = document.querySelector('#revisions tbody')!;
    const focused = document.activeElement instanceof HTMLElement ? document.activeElement.getAttribute('data-focus-key') : null;
    body.replaceChildren(
      ...page.items.map((r) => {
        const show = el('button', { type: 'button', 'data-focus-key': `diff-${r.number}`, 'aria-label': `Show the changes of revision ${r.number}` }, 'Changes');
        show.addEventListener('click', () => void this.showDiff(r.number));
        const actions = el('td', {}, show);
        if (this.canWrite && r.number !== page.items[0]?.number) {
          const back = el('button', { type: 'button', class: 'danger rollback', 'data-focus-key': `rollback-${r.number}`, 'aria-label': `Roll back to revision ${r.number}` }, 'Roll back');
          back.addEventListener('click', () => void this.rollback(r.number));
          actions.append(' ', back);
        }
        return el(
          'tr',
          { 'data-revision': String(r.number) },
          el('th', { scope: 'row' }, String(r.number)),
          el('td', {}, new Date(r.createdAt).toLocaleString()),
          el('td', {}, r.author),
          el('td', { class: 'num' }, String(r.changes.length)),
          el('td', {}, r.converged ? 'yes' : 'no'),
          actions,
        );
      }),
    );
    if (focused) (body.querySelector(`[data-focus-key="${focused}"]`) as HTMLElement | null)?.focus();
  }

  private async showDiff(n: number): Promise<void> {
    const rev = await this.get(this.api.GET('/v1/revisions/{n}', { params: { path: { n } } }));
    const host = document.getElementById('revision-diff')!;
    const items = rev.changes.map((c) =>
      el(
        'li',
        {},
        `${c.action} ${c.kind} ${c.name}`,
        ...(c.fields.length > 0
          ? [el('ul', {}, ...c.fields.map((f) => el('li', {}, el('code', {}, f.path), `: ${JSON.stringify(f.before) ?? '–'} → ${JSON.stringify(f.after) ?? '–'}`)))]
          : []),
      ),
    );
    host.replaceChildren(
      el(
        'div',
        { class: 'diff', 'data-diff': String(n) },
        el('h3', {}, `Revision ${n} by ${rev.author}, ${new Date(rev.createdAt).toLocaleString()}${rev.message ? `: ${rev.message}` : ''}`),
        items.length > 0 ? el('ul', {}, ...items) : el('p', {}, 'No changes.'),
      ),
    );
  }

  private async rollback(n: number): Promise<void> {
    if (!(await confirmAction(`Roll back to revision ${n}? This makes a new revision with the configuration of revision ${n}.`))) return;
    try {
      const res = await this.get(this.api.POST('/v1/revisions/{n}/rollback', { params: { path: { n } } }));
      this.say(res.changed ? `Rolled back to revision ${n}: now revision ${res.revision}.` : `The configuration already equals revision ${n}.`);
      await this.refresh();
    } catch (err) {
      this.say(`Could not roll back: ${(err as Error).message}`);
    }
  }
}
