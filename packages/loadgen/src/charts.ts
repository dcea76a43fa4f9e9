/**
 * The bench's plots as Vega-Lite specs (plain data, so tests can read what a chart shows) and their
 * SVG rendering with Vega's headless renderer (no browser, no canvas: text widths are estimated).
 */

import type { TopLevelSpec } from 'vega-lite';
import type { ExpertLoad } from './server-metrics.ts';

/** A Vega-Lite chart specification (what `renderSvg` draws). */
export type ChartSpec = TopLevelSpec;

/** One point of the throughput-vs-concurrency plot. */
export interface ThroughputPoint {
  /** The configuration (cluster) the point belongs to: one line per series. */
  readonly series: string;
  readonly maxConcurrency: number;
  readonly outputThroughput: number;
  readonly totalTokenThroughput: number;
}

export interface LatencyPoint {
  /** The run (e.g. its concurrency) the bars belong to. */
  readonly run: string;
  readonly metric: 'TTFT' | 'TPOT' | 'ITL' | 'E2EL';
  readonly statistic: string;
  readonly ms: number;
}

export interface HeatmapCell {
  readonly layer: number;
  readonly expert: number;
  readonly tokens: number;
  /** Share of the layer's (token, expert) pairs. */
  readonly share: number;
}

const FONT = { config: { font: 'sans-serif', view: { stroke: null } } } as const;

export function throughputSpec(points: readonly ThroughputPoint[], title: string): TopLevelSpec {
  return {
    ...FONT,
    title,
    width: 420,
    height: 260,
    data: { values: points.map((p) => ({ ...p })) },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'maxConcurrency',
        type: 'quantitative',
        title: 'max concurrency (requests)',
        scale: { type: 'log', base: 2 },
        axis: { values: [...new Set(points.map((p) => p.maxConcurrency))] },
      },
      y: { field: 'outputThroughput', type: 'quantitative', title: 'output tokens/s' },
      color: {
        field: 'series',
        type: 'nominal',
        title: 'configuration',
        legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0 },
      },
      tooltip: [
        { field: 'series' },
        { field: 'maxConcurrency' },
        { field: 'outputThroughput', format: '.1f' },
        { field: 'totalTokenThroughput', format: '.1f' },
      ],
    },
  };
}

/** Horizontal bars, one group per run, a panel per metric (each with its own ms scale). */
export function latencySpec(points: readonly LatencyPoint[], title: string): TopLevelSpec {
  const numStatistics = new Set(points.map((p) => p.statistic)).size;
  return {
    ...FONT,
    title,
    data: { values: points.map((p) => ({ ...p })) },
    facet: { column: { field: 'metric', type: 'nominal', title: null, sort: ['TTFT', 'TPOT', 'ITL', 'E2EL'] } },
    spec: {
      width: 170,
      height: { step: 7 * Math.max(1, numStatistics) + 4 },
      mark: 'bar',
      encoding: {
        y: { field: 'run', type: 'nominal', title: null, sort: null, axis: { labelLimit: 0 } },
        yOffset: { field: 'statistic', type: 'nominal', sort: null },
        x: { field: 'ms', type: 'quantitative', title: 'ms' },
        color: { field: 'statistic', type: 'nominal', title: 'statistic', sort: null },
        tooltip: [{ field: 'run' }, { field: 'metric' }, { field: 'statistic' }, { field: 'ms', format: '.2f' }],
      },
    },
    resolve: { scale: { x: 'independent' } },
  };
}

/** Cells of a heatmap: every (layer, expert), with its share of the layer's routed pairs. */
export function heatmapCells(load: ExpertLoad): HeatmapCell[] {
  return load.counts.flatMap((row, layer) => {
    const sum = row.reduce((s, n) => s + n, 0);
    return row.map((tokens, expert) => ({ layer, expert, tokens, share: sum > 0 ? tokens / sum : 0 }));
  });
}

/** `xTitle` names the columns (experts by default; the eplb bench also draws layer × worker). */
export function heatmapSpec(cells: readonly HeatmapCell[], title: string, xTitle = 'expert'): TopLevelSpec {
  const numExperts = Math.max(1, ...cells.map((c) => c.expert + 1));
  const numLayers = Math.max(1, ...cells.map((c) => c.layer + 1));
  const cell = Math.max(12, Math.min(36, Math.floor(720 / numExperts)));
  const maxTokens = Math.max(0, ...cells.map((c) => c.tokens));
  return {
    ...FONT,
    title,
    width: cell * numExperts,
    height: cell * numLayers,
    data: { values: cells.map((c) => ({ ...c })) },
    encoding: {
      x: { field: 'expert', type: 'ordinal', title: xTitle, axis: { labelAngle: 0 } },
      y: { field: 'layer', type: 'ordinal', title: 'layer' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'tokens', type: 'quantitative', title: 'tokens', scale: { scheme: 'viridis' } },
          tooltip: [{ field: 'layer' }, { field: 'expert' }, { field: 'tokens' }, { field: 'share', format: '.1%' }],
        },
      },
      ...(numExperts <= 32
        ? [
            {
              mark: { type: 'text' as const, fontSize: 9 },
              encoding: {
                text: { field: 'share', type: 'quantitative' as const, format: '.0%' },
                // Dark text on the bright (yellow) end of viridis, white on the dark end.
                color: { condition: { test: `datum.tokens > ${0.6 * maxTokens}`, value: 'black' }, value: 'white' },
              },
            },
          ]
        : []),
    ],
  };
}

/** One value of one line of a time series (a worker's load, a layer's balancedness). */
export interface TimePoint {
  readonly atS: number;
  readonly series: string;
  readonly value: number;
}

/** A moment marked on a time series by a vertical rule (a re-placement). */
export interface TimeMark {
  readonly atS: number;
  readonly label: string;
}

/** Lines over time, one per series, with a dashed vertical rule and its label at each mark. */
export function timeSeriesSpec(
  points: readonly TimePoint[],
  marks: readonly TimeMark[],
  titles: { readonly title: string; readonly y: string; readonly series: string },
): TopLevelSpec {
  return {
    ...FONT,
    title: titles.title,
    width: 520,
    height: 260,
    layer: [
      {
        data: { values: points.map((p) => ({ ...p })) },
        mark: { type: 'line', point: { size: 12 } },
        encoding: {
          x: { field: 'atS', type: 'quantitative', title: 'time since the load started (s)' },
          y: { field: 'value', type: 'quantitative', title: titles.y },
          color: { field: 'series', type: 'nominal', title: titles.series, legend: { orient: 'bottom' } },
          tooltip: [{ field: 'series' }, { field: 'atS', format: '.1f' }, { field: 'value', format: '.3f' }],
        },
      },
      ...(marks.length > 0
        ? [
            {
              data: { values: marks.map((m) => ({ ...m })) },
              mark: { type: 'rule' as const, strokeDash: [4, 3], color: 'black' },
              encoding: { x: { field: 'atS', type: 'quantitative' as const } },
            },
            {
              data: { values: marks.map((m) => ({ ...m })) },
              mark: {
                type: 'text' as const,
                align: 'left' as const,
                baseline: 'top' as const,
                dx: 3,
                y: 2,
                fontSize: 10,
              },
              encoding: { x: { field: 'atS', type: 'quantitative' as const }, text: { field: 'label' } },
            },
          ]
        : []),
    ],
  };
}

/** Renders a Vega-Lite spec to an SVG string, headless. Loads vega on first use (it is large). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
