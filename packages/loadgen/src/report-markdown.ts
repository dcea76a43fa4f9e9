/** The Markdown summary of a bench run: what ran, the client metrics, the server metrics, the plots. */

import type { ClientMetrics } from './client-metrics.ts';
import { describeDataset } from './datasets/dataset.ts';
import type { RunRecord } from './run-record.ts';
import type { ExpertLoad, ServerMetrics } from './server-metrics.ts';
import type { ClusterSpec } from './scenario.ts';
import { percentileWord, type Summary } from './stats.ts';
import { workerLoadOf } from './worker-load.ts';

export interface BenchReport {
  readonly title: string;
  readonly description: string;
  readonly startedAt: string;
  readonly durationS: number;
  readonly interrupted: boolean;
  readonly runs: readonly RunRecord[];
  /** Expert load summed over each series' runs, for the hot-expert lines. */
  readonly loadBySeries: ReadonlyMap<string, ExpertLoad>;
  /** The cluster of each series started locally (for the per-worker load). */
  readonly clusterBySeries: ReadonlyMap<string, ClusterSpec>;
  /** Relative paths of the plots, with a caption each. */
  readonly plots: readonly { readonly caption: string; readonly path: string }[];
  /** Problems worth a line (a series without server metrics, a plot not drawn). */
  readonly notes: readonly string[];
}

const f = (n: number | undefined, digits = 1): string => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits));
const count = (n: number): string =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} G`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(2)} M`
      : n >= 1e3
        ? `${(n / 1e3).toFixed(1)} k`
        : String(n);

function throughputTable(runs: readonly RunRecord[]): string[] {
  const goodput = runs.some((r) => r.metrics.requestGoodput !== undefined);
  const lines = [
    `| run | completed | failed | duration (s) | req/s | output tok/s | total tok/s | peak concurrency |${goodput ? ' goodput req/s |' : ''}`,
    `|---|--:|--:|--:|--:|--:|--:|--:|${goodput ? '--:|' : ''}`,
  ];
  for (const { settings, metrics: m } of runs) {
    lines.push(
      `| ${settings.label} | ${m.completed} | ${m.failed}${m.cancelled > 0 ? ` (+${m.cancelled} cancelled)` : ''} | ${f(m.durationS, 2)} | ${f(m.requestThroughput, 2)} | ` +
        `${f(m.outputThroughput)} | ${f(m.totalTokenThroughput)} | ${m.maxConcurrentRequests} |${goodput ? ` ${f(m.requestGoodput, 2)} |` : ''}`,
    );
  }
  return lines;
}

function latencyTable(runs: readonly RunRecord[]): string[] {
  const percentiles = runs[0]?.settings.percentiles ?? [];
  const lines = [
    `| run | metric | mean | median | std | ${percentiles.map((p) => `p${percentileWord(p)}`).join(' | ')} |`,
    `|---|---|--:|--:|--:|${percentiles.map(() => '--:|').join('')}`,
  ];
  const rows: [string, (m: ClientMetrics) => Summary][] = [
    ['TTFT', (m) => m.ttftMs],
    ['TPOT', (m) => m.tpotMs],
    ['ITL', (m) => m.itlMs],
    ['E2EL', (m) => m.e2elMs],
  ];
  for (const { settings, metrics } of runs) {
    for (const [name, of] of rows) {
      const s = of(metrics);
      lines.push(
        `| ${settings.label} | ${name} | ${f(s.mean, 2)} | ${f(s.median, 2)} | ${f(s.std, 2)} | ${s.percentiles.map(([, v]) => f(v, 2)).join(' | ')} |`,
      );
    }
  }
  return lines;
}

function serverRow(label: string, server: ServerMetrics): string {
  const bal = server.balancedness?.filter((b) => !Number.isNaN(b)) ?? [];
  const prefix = server.prefixCache
    ? `${f(100 * server.prefixCache.hitRate)}% of ${count(server.prefixCache.queriedTokens)}`
    : '–';
  const dispatch = server.dispatchLatencyMs
    ? `${f(server.dispatchLatencyMs.p50, 2)} / ${f(server.dispatchLatencyMs.p99, 2)}`
    : 'not available';
  return (
    `| ${label} | ${bal.length > 0 ? `${f(Math.min(...bal), 2)} / ${f(bal.reduce((a, b) => a + b, 0) / bal.length, 2)}` : '–'} | ${prefix} | ` +
    `${server.kvUsagePeak === undefined ? '–' : `${f(100 * server.kvUsagePeak)}%`} | ${server.activeParamsPerToken === undefined ? '–' : count(server.activeParamsPerToken)} | ` +
    `${server.flopsPerToken === undefined ? '–' : count(server.flopsPerToken)} | ${dispatch} |`
  );
}

function serverTable(runs: readonly RunRecord[]): string[] {
  const rows = runs.flatMap((r) => (r.server.available ? [serverRow(r.settings.label, r.server)] : []));
  const unavailable = runs.flatMap((r) =>
    r.server.available ? [] : [`- ${r.settings.label}: not available (${r.server.reason})`],
  );
  const missing = [...new Set(runs.flatMap((r) => (r.server.available ? r.server.missing : [])))];
  return [
    ...(rows.length > 0
      ? [
          '| run | balancedness min / mean | prefix-cache hits | KV usage (peak) | active params/token | FLOPs/token | dispatch p50 / p99 (ms) |',
          '|---|--:|--:|--:|--:|--:|--:|',
          ...rows,
        ]
      : []),
    ...(unavailable.length > 0 ? ['', ...unavailable] : []),
    ...(missing.length > 0
      ? ['', `Series the server does not expose: ${missing.map((m) => `\`${m}\``).join(', ')}.`]
      : []),
  ];
}

/** "layer 0: e0 41%, e1 9%, e2 7%" — the three busiest experts of each layer. */
export function hotExpertLines(load: ExpertLoad, top = 3): string[] {
  return load.counts.map((row, layer) => {
    const sum = row.reduce((a, b) => a + b, 0);
    const ranked = row
      .map((n, e) => [e, n] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, top);
    const mean = sum / row.length;
    const max = ranked[0]?.[1] ?? 0;
    return `layer ${layer}: ${ranked.map(([e, n]) => `e${e} ${f(sum > 0 ? (100 * n) / sum : 0, 0)}%`).join(', ')} (balancedness ${f(max > 0 ? mean / max : NaN, 2)})`;
  });
}

export function renderMarkdown(report: BenchReport): string {
  const first = report.runs[0]?.settings;
  const out = [
    `# ${report.title}`,
    '',
    report.description,
    '',
    `Started ${report.startedAt}, took ${f(report.durationS, 1)} s${report.interrupted ? ' — **interrupted (Ctrl-C): what was measured until then**' : ''}.`,
  ];
  if (first) {
    out.push(`Dataset: ${describeDataset(first.dataset)}; seed ${first.seed}; model \`${first.modelId}\`.`);
    const slos = Object.entries(first.goodput);
    if (slos.length > 0) out.push(`Goodput objectives: ${slos.map(([k, v]) => `${k} ≤ ${v} ms`).join(', ')}.`);
  }
  out.push('', '## Throughput (client side, vLLM definitions)', '', ...throughputTable(report.runs));
  out.push(
    '',
    '## Latency in ms (client side, vLLM definitions)',
    '',
    'TPOT = (E2EL − TTFT) ÷ (output tokens − 1) per request; ITL = every gap between streamed tokens, pooled.',
    '',
    ...latencyTable(report.runs),
  );
  out.push('', '## Server metrics (`/metrics`, change over each run)', '', ...serverTable(report.runs));
  for (const [series, load] of report.loadBySeries) {
    out.push('', `Busiest experts, ${series}:`, '', ...hotExpertLines(load).map((l) => `- ${l}`));
    const cluster = report.clusterBySeries.get(series);
    const workers = cluster === undefined ? undefined : workerLoadOf(load, cluster);
    if (workers !== undefined) {
      const sum = workers.pairsPerWorker.reduce((a, b) => a + b, 0);
      const shares = workers.pairsPerWorker
        .map((n, w) => `worker ${w} ${f(sum > 0 ? (100 * n) / sum : 0, 0)}%`)
        .join(', ');
      out.push(
        `- per worker (${cluster?.placement}${(cluster?.replication ?? 1) > 1 ? `, replication ${cluster?.replication}: replicas share` : ''}): ${shares} (balancedness ${f(workers.balancedness, 2)})`,
      );
    }
  }
  if (report.plots.length > 0) {
    out.push('', '## Plots', '');
    for (const plot of report.plots) out.push(`![${plot.caption}](${plot.path})`, '');
  }
  if (report.notes.length > 0) out.push('', '## Notes', '', ...report.notes.map((n) => `- ${n}`));
  return `${out.join('\n').trimEnd()}\n`;
}
