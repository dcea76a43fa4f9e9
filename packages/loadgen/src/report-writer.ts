/**
 * Writes a bench run's outputs into one folder: `results.json` (every run, vLLM key names),
 * `runs/<n>-<label>.json` (one vLLM-style result file per run), `summary.md`, and the SVG plots.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  heatmapCells,
  heatmapSpec,
  latencySpec,
  renderSvg,
  throughputSpec,
  type LatencyPoint,
  type ThroughputPoint,
} from './charts.ts';
import { renderMarkdown, type BenchReport } from './report-markdown.ts';
import { runToJson, vllmDate } from './result-json.ts';
import type { RunRecord } from './run-record.ts';
import type { ExpertLoad } from './server-metrics.ts';
import { percentileWord } from './stats.ts';

export interface BenchMeta {
  readonly name: string;
  readonly description: string;
  readonly startedAt: Date;
  readonly durationS: number;
  readonly interrupted: boolean;
  /** Lines for the summary's notes (a configuration that failed to start, …). */
  readonly notes: readonly string[];
}

export interface WrittenOutputs {
  readonly dir: string;
  readonly json: string;
  readonly markdown: string;
  readonly svgs: readonly string[];
  readonly runFiles: readonly string[];
}

/** `<root>/<YYYYMMDD-HHMMSS>-<name>`. */
export function outputDirFor(root: string, name: string, startedAt: Date): string {
  return join(root, `${vllmDate(startedAt)}-${slug(name)}`);
}

export function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Expert loads summed over each series' runs (runs without server metrics add nothing). */
export function loadBySeries(runs: readonly RunRecord[]): Map<string, ExpertLoad> {
  const out = new Map<string, ExpertLoad>();
  for (const run of runs) {
    const load = run.server.available ? run.server.expertLoad : undefined;
    if (load === undefined) continue;
    const prev = out.get(run.settings.series);
    const numLayers = Math.max(load.numLayers, prev?.numLayers ?? 0);
    const numExperts = Math.max(load.numExperts, prev?.numExperts ?? 0);
    const counts = Array.from({ length: numLayers }, (_, l) =>
      Array.from({ length: numExperts }, (_, e) => (load.counts[l]?.[e] ?? 0) + (prev?.counts[l]?.[e] ?? 0)),
    );
    out.set(run.settings.series, { numLayers, numExperts, counts });
  }
  return out;
}

export function throughputPoints(runs: readonly RunRecord[]): ThroughputPoint[] {
  return runs
    .filter((r) => Number.isFinite(r.settings.maxConcurrency))
    .map((r) => ({
      series: r.settings.series,
      maxConcurrency: r.settings.maxConcurrency,
      outputThroughput: r.metrics.outputThroughput,
      totalTokenThroughput: r.metrics.totalTokenThroughput,
    }));
}

export function latencyPoints(runs: readonly RunRecord[]): LatencyPoint[] {
  const oneSeries = new Set(runs.map((r) => r.settings.series)).size === 1;
  return runs.flatMap((r) => {
    const run = oneSeries
      ? `c=${Number.isFinite(r.settings.maxConcurrency) ? r.settings.maxConcurrency : '∞'}`
      : r.settings.label;
    const m = r.metrics;
    return (
      [
        ['TTFT', m.ttftMs],
        ['TPOT', m.tpotMs],
        ['ITL', m.itlMs],
        ['E2EL', m.e2elMs],
      ] as const
    ).flatMap(([metric, s]) => [
      { run, metric, statistic: 'median', ms: s.median },
      ...s.percentiles.map(([p, v]) => ({ run, metric, statistic: `p${percentileWord(p)}`, ms: v })),
    ]);
  });
}

export async function writeBenchOutputs(
  dir: string,
  meta: BenchMeta,
  runs: readonly RunRecord[],
): Promise<WrittenOutputs> {
  await mkdir(join(dir, 'runs'), { recursive: true });
  const runFiles: string[] = [];
  for (const [i, run] of runs.entries()) {
    const file = join(dir, 'runs', `${String(i + 1).padStart(2, '0')}-${slug(run.settings.label)}.json`);
    await writeFile(file, `${JSON.stringify(runToJson(run), null, 2)}\n`);
    runFiles.push(file);
  }
  const plots: { caption: string; path: string }[] = [];
  const notes: string[] = [...meta.notes];
  const svgs: string[] = [];
  const plot = async (file: string, caption: string, svg: Promise<string>) => {
    await writeFile(join(dir, file), await svg);
    plots.push({ caption, path: file });
    svgs.push(join(dir, file));
  };
  const points = throughputPoints(runs);
  if (points.length > 0)
    await plot(
      'throughput-vs-concurrency.svg',
      'output throughput vs concurrency',
      renderSvg(throughputSpec(points, `${meta.name}: output throughput vs concurrency`)),
    );
  if (runs.length > 0)
    await plot(
      'latency-percentiles.svg',
      'latency percentiles',
      renderSvg(latencySpec(latencyPoints(runs), `${meta.name}: latency (ms)`)),
    );
  const loads = loadBySeries(runs);
  for (const [series, load] of loads) {
    await plot(
      `expert-heatmap-${slug(series)}.svg`,
      `tokens per expert per layer, ${series}`,
      renderSvg(heatmapSpec(heatmapCells(load), `tokens per expert per layer — ${series}`)),
    );
  }
  for (const series of new Set(runs.map((r) => r.settings.series))) {
    if (!loads.has(series)) {
      const reason = runs.find((r) => r.settings.series === series && !r.server.available);
      notes.push(
        `No expert heatmap for ${series}: ${reason && !reason.server.available ? reason.server.reason : 'the server exposes no expert token counts'}.`,
      );
    }
  }
  const report: BenchReport = {
    title: `Switchyard bench: ${meta.name}`,
    description: meta.description,
    startedAt: meta.startedAt.toISOString(),
    durationS: meta.durationS,
    interrupted: meta.interrupted,
    runs,
    loadBySeries: loads,
    clusterBySeries: new Map(
      runs.flatMap((r) => (r.settings.cluster ? [[r.settings.series, r.settings.cluster] as const] : [])),
    ),
    plots,
    notes,
  };
  const json = join(dir, 'results.json');
  await writeFile(
    json,
    `${JSON.stringify({ name: meta.name, description: meta.description, started_at: report.startedAt, duration_s: meta.durationS, interrupted: meta.interrupted, runs: runs.map(runToJson) }, null, 2)}\n`,
  );
  const markdown = join(dir, 'summary.md');
  await writeFile(markdown, renderMarkdown(report));
  return { dir, json, markdown, svgs, runFiles };
}
