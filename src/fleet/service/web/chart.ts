import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './html.js';

export interface Series {
  /** Seconds since the epoch, ascending (uPlot's x axis). */
  readonly times: readonly number[];
  /** One value per time; null leaves a gap. */
  readonly values: readonly (number | null)[];
}

interface Props {
  readonly title: string;
  readonly series: Series;
  /** How a value reads on the axis and in the legend (src/fleet/service/web/format.ts). */
  readonly format: (v: number | null) => string;
  readonly color: string;
}

/**
 * One time series drawn by uPlot (canvas: fast with thousands of points, small on a phone). The chart is
 * made once per mount and fed with setData; its width follows its box through a ResizeObserver.
 */
export function TimeChart({ title, series, format, color }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);

  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      title,
      width: Math.max(200, el.clientWidth),
      height: 180,
      series: [{}, { label: title, stroke: color, width: 2, points: { show: true, size: 4 }, value: (_u, v) => format(v) }],
      axes: [{}, { values: (_u, vals) => vals.map((v) => format(v)), size: 70 }],
      legend: { show: true },
    };
    const p = new uPlot(opts, [[...series.times], [...series.values]] as uPlot.AlignedData, el);
    plot.current = p;
    const ro = new ResizeObserver(() => p.setSize({ width: Math.max(200, el.clientWidth), height: 180 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      p.destroy();
      plot.current = undefined;
    };
  }, [title]);

  useEffect(() => {
    plot.current?.setData([[...series.times], [...series.values]] as uPlot.AlignedData);
  }, [series]);

  return html`<div class="chart" ref=${box} data-points=${series.times.length} data-chart=${title}></div>`;
}
