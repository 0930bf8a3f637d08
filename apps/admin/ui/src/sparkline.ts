/** A small uPlot chart of one backend's active streams and calls/s over the history window. */
import uPlot from 'uplot';
import type { Series } from './history';

export class Sparkline {
  private readonly plot: uPlot;
  /** The chart's scale in words: the top of each line (each has its own scale, from 0). */
  private readonly scale: HTMLElement;

  constructor(host: HTMLElement, label: string) {
    host.setAttribute('role', 'img');
    host.setAttribute('aria-label', `${label}: active streams and calls per second over the last minutes`);
    this.plot = new uPlot(
      {
        width: 260,
        height: 70,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true }, active: { range: (_u, _min, max) => [0, Math.max(1, max)] }, rate: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{ show: false }, { show: false, scale: 'active' }],
        series: [
          {},
          { label: 'active streams', scale: 'active', stroke: '#2454c5', width: 1.5, points: { show: false } },
          { label: 'calls/s', scale: 'rate', stroke: '#1f7a3a', width: 1.5, points: { show: false } },
        ],
      },
      [[], [], []],
      host,
    );
    this.scale = document.createElement('span');
    this.scale.className = 'chart-scale';
    host.append(this.scale);
  }

  update(s: Series): void {
    this.plot.setData([s.t, s.active, s.callsPerSecond]);
    const top = (xs: readonly (number | null)[]): number => Math.max(1, ...xs.map((x) => x ?? 0));
    this.scale.textContent = `top: ${Math.round(top(s.active))} active, ${Math.round(top(s.callsPerSecond))} calls/s`;
  }

  destroy(): void {
    this.plot.destroy();
  }
}
