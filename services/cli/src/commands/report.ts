import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { buildTokenReport, readTraceFile, type SpanRecord, type TokenReport } from '@switchyard/telemetry';
import { renderReportChart } from '../report-chart.ts';
import { action, UsageError } from '../user-error.ts';
import { parseInteger, parseNumber } from '../parse.ts';
import { formatCount, formatTable, formatUsd } from './economics.ts';

interface ReportOptions {
  deviceHourUsd: number;
  devices: number;
  outDir?: string;
  json?: boolean;
}

export function reportCommand(): Command {
  return new Command('report')
    .description(
      'token economics of a traced run (SWITCHYARD_TRACE_FILE): prints a table, writes report.json and report.svg',
    )
    .argument('<trace-files...>', "JSON-lines trace files (the gateway's, and its workers' if they wrote their own)")
    .option('--device-hour-usd <usd>', 'price of one device-hour in US dollars', parseNumber('--device-hour-usd'), 2.5)
    .option('--devices <n>', 'devices the run occupied (gateway and workers together)', parseInteger('--devices'), 1)
    .option('--out-dir <dir>', "directory for report.json and report.svg (default: the first trace file's directory)")
    .option('--json', 'print the report as JSON instead of the table')
    .action(action(runReport));
}

async function runReport(files: string[], opts: ReportOptions): Promise<void> {
  if (opts.deviceHourUsd < 0) throw new UsageError(`--device-hour-usd must be ≥ 0, got ${opts.deviceHourUsd}`);
  if (opts.devices < 1) throw new UsageError(`--devices must be ≥ 1, got ${opts.devices}`);
  const spans: SpanRecord[] = [];
  for (const file of files) spans.push(...(await readTraceFile(file)));
  const report = buildTokenReport(spans, { deviceHourUsd: opts.deviceHourUsd, numDevices: opts.devices });
  if (report.numRequests === 0)
    throw new UsageError(
      `no request spans in ${files.join(', ')} (was the gateway traced with SWITCHYARD_TRACE_DETAIL summary or tokens?)`,
    );
  const outDir = opts.outDir ?? dirname(files[0] ?? '.');
  await mkdir(outDir, { recursive: true });
  const jsonPath = join(outDir, 'report.json');
  const svgPath = join(outDir, 'report.svg');
  await writeFile(jsonPath, `${JSON.stringify({ traceFiles: files, ...report }, null, 2)}\n`);
  await writeFile(svgPath, await renderReportChart(report));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  process.stdout.write(`${formatReport(report, files)}\n  wrote ${jsonPath} and ${svgPath}\n`);
}

function formatReport(r: TokenReport, files: readonly string[]): string {
  const t = r.tokens;
  const s = r.savings;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const int8 = s.int8Experts;
  return formatTable(
    `Token economics of ${r.models.join(', ')}: ${r.numRequests} requests (${r.numFailedRequests} failed), ${r.numSteps} steps, from ${files.join(', ')}`,
    [
      [
        'tokens',
        `${t.input} input (${t.cachedInput} from the prefix cache), ${t.output} output; ${t.computed} computed (${t.computedPrefill} prefill, ${t.computedDecode} decode)`,
      ],
      [
        'tokens/s',
        `${r.throughput.tokensPerSecond.toFixed(1)} (input ${r.throughput.inputTokensPerSecond.toFixed(1)}, output ${r.throughput.outputTokensPerSecond.toFixed(1)}) over ${r.time.wallSeconds.toFixed(2)} s; engine busy ${r.time.busySeconds.toFixed(2)} s`,
      ],
      ['active params / token', formatCount(r.perToken.activeParams, ' B')],
      [
        'FLOPs / token',
        `${formatCount(r.perToken.flops)} (dense equivalent ${formatCount(r.perToken.denseEquivalentFlops)})`,
      ],
      [
        'cost',
        `${formatUsd(r.cost.totalUsd)} at ${formatUsd(r.cost.deviceHourUsd)}/device-hour × ${r.cost.numDevices} (${r.cost.basis === 'step-time' ? 'busy time' : 'wall time'})`,
      ],
      ['per million input', formatUsd(r.cost.perMillionInputUsd)],
      ['per million output', formatUsd(r.cost.perMillionOutputUsd)],
      [
        'saved: MoE sparsity',
        `${formatUsd(s.moeSparsity.usd)} (${pct(s.moeSparsity.fraction)} of dense-equivalent FLOPs)`,
      ],
      [
        int8.applied ? 'saved: int8 experts' : 'would save: int8 experts',
        `${formatUsd(int8.usd)} (${int8.memoryBoundSpeedup.toFixed(2)}× fewer weight bytes read; experts ran ${int8.expertDtype})`,
      ],
      [
        'saved: prefix cache',
        `${formatUsd(s.prefixCache.usd)} (${s.prefixCache.cachedTokens} tokens, ${formatCount(s.prefixCache.flopsSaved)} FLOPs)`,
      ],
      [
        '  of which: local hits',
        `${formatCount(s.prefixCache.localFlopsSaved)} prefill FLOPs (${s.prefixCache.cachedTokens - s.prefixCache.remoteTokens} tokens)`,
      ],
      [
        '  of which: fetched pages',
        `${formatCount(s.prefixCache.remoteFlopsSaved)} prefill FLOPs (${s.prefixCache.remoteTokens} tokens from peers or the page store)`,
      ],
    ],
  );
}
