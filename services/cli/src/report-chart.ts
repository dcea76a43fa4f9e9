/**
 * The report's SVG chart, drawn by Vega-Lite (compiled to Vega, rendered headless to SVG in Node with
 * no canvas, no browser and no network). Three panels: FLOPs per computed token (executed vs a dense
 * model of the same size), cost per million input and output tokens, and dollars saved by source.
 */
import { renderSvg, type ChartSpec } from '@switchyard/loadgen';
import type { TokenReport } from '@switchyard/telemetry';

export function reportChartSpec(report: TokenReport): ChartSpec {
  const bar = (
    title: string,
    field: string,
    unit: string,
    format: string,
    values: readonly Record<string, string | number>[],
  ) => ({
    title,
    width: 220,
    height: 160,
    data: { values: [...values] },
    mark: { type: 'bar' as const, tooltip: true },
    encoding: {
      x: { field, type: 'nominal' as const, sort: null, axis: { labelAngle: -20, labelLimit: 200, title: null } },
      y: { field: 'value', type: 'quantitative' as const, title: unit, axis: { format } },
      color: { field, type: 'nominal' as const, legend: null },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Token economics: ${report.models.join(', ') || 'run'} — ${report.tokens.input} input, ${report.tokens.output} output tokens`,
    hconcat: [
      bar('FLOPs per computed token', 'kind', 'FLOPs', '~s', [
        { kind: 'dense equivalent', value: report.perToken.denseEquivalentFlops },
        { kind: 'executed (MoE)', value: report.perToken.flops },
      ]),
      bar('Cost per million tokens', 'tokens', 'USD', '$~r', [
        { tokens: 'input', value: report.cost.perMillionInputUsd },
        { tokens: 'output', value: report.cost.perMillionOutputUsd },
      ]),
      bar('Saved by', 'source', 'USD', '$~r', [
        { source: 'MoE sparsity', value: report.savings.moeSparsity.usd },
        {
          source: report.savings.int8Experts.applied ? 'int8 experts' : 'int8 (would save)',
          value: report.savings.int8Experts.usd,
        },
        { source: 'prefix cache', value: report.savings.prefixCache.usd },
      ]),
    ],
  };
}

/** The chart as an SVG document. */
export function renderReportChart(report: TokenReport): Promise<string> {
  return renderSvg(reportChartSpec(report));
}
