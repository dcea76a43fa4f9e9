/**
 * Writes an `eplb` run into one folder: `results.json` (settings, checks, every phase's windows,
 * timeline, stalls and errors), `summary.md`, and the SVG plots — per-worker load and per-layer
 * balancedness over time with the re-placement marked, and heatmaps (layer × expert, layer × worker)
 * before and after it.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { heatmapCells, heatmapSpec, renderSvg, timeSeriesSpec, type TimeMark, type TimePoint } from './charts.ts';
import type { EplbReport, PhaseReport, WindowReport } from './eplb-analysis.ts';
import { describeEplb } from './eplb-scenario.ts';
import type { WrittenOutputs } from './report-writer.ts';

export interface EplbMeta {
  readonly startedAt: Date;
  readonly durationS: number;
  readonly interrupted: boolean;
  readonly notes: readonly string[];
}

const f = (n: number | undefined, digits = 1): string =>
  n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
const pct = (w: WindowReport, of: 'ttftMs' | 'itlMs', p: number) =>
  w.figures[of].percentiles.find(([q]) => q === p)?.[1];
const checkValue = (n: number) => (Number.isInteger(n) ? String(n) : f(n, 2));
const phaseName = (p: PhaseReport) => (p.kind === 'static' ? 'static' : 'rebalancing (eplb)');

function windowRow(phase: PhaseReport, w: WindowReport): string {
  const bal = w.workers?.balancednessPerLayer ?? [];
  const min = bal.length > 0 ? Math.min(...bal) : NaN;
  return (
    `| ${phaseName(phase)} | ${w.name} | ${f(w.figures.window.fromMs / 1000)}–${f(w.figures.window.toMs / 1000)} | ` +
    `${f(w.figures.outputTokensPerS)} | ${f(pct(w, 'ttftMs', 50))} / ${f(pct(w, 'ttftMs', 99))} | ` +
    `${f(pct(w, 'itlMs', 50))} / ${f(pct(w, 'itlMs', 99))} | ${w.figures.numItls} | ` +
    `${w.numStalledRequests} | ${bal.length > 0 ? bal.map((b) => f(b, 2)).join(' / ') : '–'} | ${f(min, 2)} |`
  );
}

function workerShares(w: WindowReport): string {
  const pairs = (w.workers?.pairsPerWorkerLayer ?? []).map((layers) => layers.reduce((a, b) => a + b, 0));
  const sum = pairs.reduce((a, b) => a + b, 0);
  return pairs.map((n, i) => `worker ${i} ${f(sum > 0 ? (100 * n) / sum : NaN, 0)}%`).join(', ');
}

export function renderEplbMarkdown(report: EplbReport, meta: EplbMeta, plots: readonly string[][]): string {
  const out = [
    '# Switchyard bench: eplb',
    '',
    `${describeEplb(report.settings)}.`,
    '',
    `Started ${meta.startedAt.toISOString()}, took ${f(meta.durationS)} s${meta.interrupted ? ' — **interrupted (Ctrl-C): what was measured until then**' : ''}.`,
    '',
    '## Acceptance figures (issue 14)',
    '',
    '| figure | value | target | met |',
    '|---|--:|--:|---|',
    ...report.checks.map((c) => `| ${c.name} | ${checkValue(c.value)} | ${c.target} | ${c.ok ? 'yes' : '**no**'} |`),
    '',
    '## Windows',
    '',
    `Output tok/s counts the token chunks that arrived in the window; ITL gaps count in the window they end in, TTFT in the window of the first token. ` +
      `Balancedness = mean ÷ max of the pairs each worker computed per layer in the window, from the workers' own \`tokens_served\` (layers 0, 1, …). ` +
      `The first ${report.settings.settleS} s of each phase are left out; "around switch" is the ${report.settings.aroundSwitchS} s centred on the re-placement.`,
    '',
    '| phase | window | s | output tok/s | TTFT p50 / p99 (ms) | ITL p50 / p99 (ms) | ITL gaps | stalled | balancedness per layer | min |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...report.phases.flatMap((p) => p.windows.map((w) => windowRow(p, w))),
    '',
    '## Requests',
    '',
    '| phase | completed | failed | cancelled at the end | not sent | stalled (a wait ≥ ' +
      `${report.settings.stallMs} ms, whole phase) | whole-phase output tok/s | re-placements |`,
    '|---|--:|--:|--:|--:|--:|--:|---|',
    ...report.phases.map(
      (p) =>
        `| ${phaseName(p)} | ${p.metrics.completed} | ${p.metrics.failed} | ${p.metrics.cancelled} | ${p.numNotSent} | ` +
        `${new Set(p.stalls.map((s) => s.request)).size} | ${f(p.metrics.outputThroughput)} | ` +
        `${p.loadsStartedAtS === undefined ? '' : `loads from ${f(p.loadsStartedAtS)} s, `}${p.switches.map((s) => `revision ${s.fromRevision} → ${s.toRevision} at ${f(s.atMs / 1000)} s`).join('; ') || '–'} |`,
    ),
  ];
  const errors = report.phases.flatMap((p) => p.errors.map((e) => `- ${p.kind}: ${e.count} × ${e.error}`));
  if (errors.length > 0) out.push('', 'Errors:', '', ...errors);
  const shares = report.phases.flatMap((p) =>
    p.windows.filter((w) => w.workers).map((w) => `- ${phaseName(p)}, ${w.name}: ${workerShares(w)}`),
  );
  if (shares.length > 0) out.push('', '## Pairs per worker (all layers)', '', ...shares);
  if (plots.length > 0) {
    out.push('', '## Plots', '');
    for (const [caption, path] of plots) out.push(`![${caption}](${path})`, '');
  }
  if (meta.notes.length > 0) out.push('', '## Notes', '', ...meta.notes.map((n) => `- ${n}`));
  return `${out.join('\n').trimEnd()}\n`;
}

/** The JSON document: plain figures (NaN and Infinity as null), no per-request lists. */
export function eplbJson(report: EplbReport, meta: EplbMeta): unknown {
  return {
    name: 'eplb',
    description: describeEplb(report.settings),
    started_at: meta.startedAt.toISOString(),
    duration_s: meta.durationS,
    interrupted: meta.interrupted,
    settings: report.settings,
    checks: report.checks,
    phases: report.phases.map((p) => {
      const { outputLens: _lens, ...metrics } = p.metrics;
      return { ...p, metrics };
    }),
    notes: meta.notes,
  };
}

function loadPoints(phase: PhaseReport): TimePoint[] {
  return phase.timeline.flatMap((t) =>
    t.pairsPerSPerWorker.map((value, w) => ({ atS: t.atS, series: `worker ${w}`, value })),
  );
}

function balancePoints(phase: PhaseReport): TimePoint[] {
  return phase.timeline.flatMap((t) =>
    t.balancednessPerLayer.flatMap((value, l) =>
      Number.isFinite(value) ? [{ atS: t.atS, series: `layer ${l}`, value }] : [],
    ),
  );
}

function itlPoints(phase: PhaseReport): TimePoint[] {
  return phase.timeline.flatMap((t) =>
    Number.isFinite(t.itlP99Ms) ? [{ atS: t.atS, series: phase.kind, value: t.itlP99Ms }] : [],
  );
}

const marksOf = (phase: PhaseReport): TimeMark[] =>
  phase.switches.map((s) => ({ atS: s.atMs / 1000, label: `re-placement (revision ${s.toRevision})` }));

/** Layer × expert (or × worker) cells from pairs[layer][column]. */
const cellsOf = (rows: readonly (readonly number[])[]) =>
  heatmapCells({ numLayers: rows.length, numExperts: rows[0]?.length ?? 0, counts: rows });
const transpose = (m: readonly (readonly number[])[]) => (m[0] ?? []).map((_, j) => m.map((row) => row[j] ?? 0));

/**
 * The windows the heatmaps show: after the switch, and before it — the rebalancing phase's own window
 * when it was long enough to hold two counter samples, else the static phase's steady state.
 */
function heatmapWindows(report: EplbReport): [string, string, WindowReport][] {
  const win = (kind: PhaseReport['kind'], name: WindowReport['name']) =>
    report.phases.find((p) => p.kind === kind)?.windows.find((w) => w.name === name && w.workers !== undefined);
  const before = win('eplb', 'before switch') ?? win('static', 'steady');
  const after = win('eplb', 'after switch');
  return [
    ...(before ? [['before', before.name === 'steady' ? 'static placement' : 'before switch', before] as const] : []),
    ...(after ? [['after', 'after switch', after] as const] : []),
  ].map(([slug, name, w]) => [slug, name, w]);
}

export async function writeEplbOutputs(dir: string, report: EplbReport, meta: EplbMeta): Promise<WrittenOutputs> {
  await mkdir(dir, { recursive: true });
  const plots: string[][] = [];
  const svgs: string[] = [];
  const plot = async (file: string, caption: string, svg: Promise<string>) => {
    await writeFile(join(dir, file), await svg);
    plots.push([caption, file]);
    svgs.push(join(dir, file));
  };
  for (const phase of report.phases) {
    const name = phaseName(phase);
    await plot(
      `worker-load-${phase.kind}.svg`,
      `pairs per second per worker, ${name}`,
      renderSvg(
        timeSeriesSpec(loadPoints(phase), marksOf(phase), {
          title: `pairs computed per second per worker (workers' counters) — ${name}`,
          y: 'pairs/s',
          series: 'worker',
        }),
      ),
    );
    await plot(
      `itl-p99-${phase.kind}.svg`,
      `p99 inter-token latency per sampling interval, ${name}`,
      renderSvg(
        timeSeriesSpec(itlPoints(phase), marksOf(phase), {
          title: `p99 inter-token latency per interval — ${name}`,
          y: 'ITL p99 (ms)',
          series: 'phase',
        }),
      ),
    );
    await plot(
      `balancedness-${phase.kind}.svg`,
      `balancedness per layer, ${name}`,
      renderSvg(
        timeSeriesSpec(balancePoints(phase), marksOf(phase), {
          title: `balancedness (mean ÷ max worker load) per layer — ${name}`,
          y: 'balancedness',
          series: 'layer',
        }),
      ),
    );
  }
  for (const [slug, name, w] of heatmapWindows(report)) {
    const workers = w.workers;
    if (workers === undefined) continue;
    await plot(
      `expert-heatmap-${slug}.svg`,
      `pairs per layer and expert, ${name}`,
      renderSvg(
        heatmapSpec(cellsOf(workers.pairsPerLayerExpert), `pairs per layer and expert (workers' counters) — ${name}`),
      ),
    );
    await plot(
      `worker-heatmap-${slug}.svg`,
      `pairs per layer and worker, ${name}`,
      renderSvg(
        heatmapSpec(
          cellsOf(transpose(workers.pairsPerWorkerLayer)),
          `pairs per layer and worker (workers' counters) — ${name}`,
          'worker',
        ),
      ),
    );
  }
  const json = join(dir, 'results.json');
  await writeFile(
    json,
    `${JSON.stringify(eplbJson(report, meta), (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`,
  );
  const markdown = join(dir, 'summary.md');
  await writeFile(markdown, renderEplbMarkdown(report, meta, plots));
  return { dir, json, markdown, svgs, runFiles: [] };
}

/** A few lines for the terminal: each window's figures, then the checks. */
export function consoleEplb(report: EplbReport): string {
  const lines = report.phases.flatMap((p) =>
    p.windows.map(
      (w) =>
        `${phaseName(p)}, ${w.name}: ${f(w.figures.outputTokensPerS)} output tok/s, ITL p99 ${f(pct(w, 'itlMs', 99))} ms, ` +
        `balancedness per layer ${(w.workers?.balancednessPerLayer ?? []).map((b) => f(b, 2)).join(' / ') || '–'}`,
    ),
  );
  for (const c of report.checks)
    lines.push(`${c.ok ? 'met    ' : 'NOT met'} ${c.name}: ${checkValue(c.value)} (${c.target})`);
  return `${lines.join('\n')}\n`;
}
