/**
 * The soak's timeline as an SVG (no dependency): calls per second by outcome (OK, DEADLINE_EXCEEDED,
 * UNAVAILABLE), RSS and active streams, one panel each over the same time axis, with the churn
 * events as ticks along the bottom.
 */
import type { SoakResult } from './soak';

const W = 1000;
const PANEL_H = 150;
const LEFT = 60;
const GAP = 30;

interface Series {
  name: string;
  colour: string;
  values: number[];
}

function panel(top: number, title: string, series: Series[], seconds: number): string {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (t: number): number => LEFT + ((W - LEFT - 10) * t) / Math.max(1, seconds - 1);
  const y = (v: number): number => top + PANEL_H - (PANEL_H * v) / max;
  const lines = series.map((s) => {
    const pts = s.values.map((v, t) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    return `<polyline fill="none" stroke="${s.colour}" stroke-width="1" points="${pts}"/>`;
  });
  const legend = series.map((s, i) => `<text x="${LEFT + 300 + i * 210}" y="${top - 6}" fill="${s.colour}" font-size="12">${s.name} (max ${Math.round(Math.max(0, ...s.values))})</text>`);
  return [
    `<text x="${LEFT}" y="${top - 6}" font-size="13" font-weight="bold">${title}</text>`,
    ...legend,
    `<rect x="${LEFT}" y="${top}" width="${W - LEFT - 10}" height="${PANEL_H}" fill="none" stroke="#ccc"/>`,
    `<text x="${LEFT - 6}" y="${top + 10}" font-size="10" text-anchor="end">${Math.round(max)}</text>`,
    `<text x="${LEFT - 6}" y="${top + PANEL_H}" font-size="10" text-anchor="end">0</text>`,
    ...lines,
  ].join('\n');
}

/** A second whose sample failed (0: the state query did not answer in time) shows the one before. */
function carried(values: number[]): number[] {
  let last = 0;
  return values.map((v) => (v > 0 ? (last = v) : last));
}

export function soakSvg(r: SoakResult): string {
  const seconds = r.timeline.length;
  const tl = r.timeline;
  const panels = [
    panel(30, 'calls/s by outcome', [
      { name: 'OK', colour: '#2a9d3a', values: tl.map((s) => s.ok) },
      { name: 'DEADLINE_EXCEEDED', colour: '#d62728', values: tl.map((s) => s.deadline) },
      { name: 'UNAVAILABLE', colour: '#ff7f0e', values: tl.map((s) => s.unavailable) },
    ], seconds),
    panel(30 + PANEL_H + GAP, 'balancer RSS, MiB (primary + workers)', [{ name: 'RSS', colour: '#1f77b4', values: carried(tl.map((s) => s.rssMiB)) }], seconds),
    panel(30 + 2 * (PANEL_H + GAP), 'active streams', [{ name: 'active', colour: '#9467bd', values: tl.map((s) => s.activeStreams) }], seconds),
  ];
  const bottom = 30 + 3 * (PANEL_H + GAP);
  const x = (t: number): number => LEFT + ((W - LEFT - 10) * t) / Math.max(1, seconds - 1);
  const colourOf = (what: string): string => (what.startsWith('SIGKILL worker') ? '#8c564b' : what.startsWith('SIGKILL backend') ? '#d62728' : '#999');
  const ticks = r.events.map((e) => `<line x1="${x(e.t).toFixed(1)}" x2="${x(e.t).toFixed(1)}" y1="${bottom - 20}" y2="${bottom - 8}" stroke="${colourOf(e.what)}"><title>${e.t} s: ${e.what}</title></line>`);
  const axis = Array.from({ length: 11 }, (_, i) => {
    const t = Math.round(((seconds - 1) * i) / 10);
    return `<text x="${x(t).toFixed(1)}" y="${bottom + 6}" font-size="10" text-anchor="middle">${t} s</text>`;
  });
  const summary = `${r.minutes} min, ${r.calls} calls: DEADLINE_EXCEEDED ${r.totals.deadline}, UNAVAILABLE ${r.totals.unavailable}; RSS ${r.rss.firstMiB} → ${r.rss.lastMiB} MiB; events: reloads (grey), backend kills (red), worker kills (brown)`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${bottom + 40}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${panels.join('\n')}
${ticks.join('\n')}
${axis.join('\n')}
<text x="${LEFT}" y="${bottom + 26}" font-size="11">${summary}</text>
</svg>
`;
}
