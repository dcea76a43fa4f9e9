/** A run's figures for the terminal, in the layout of vLLM's "Serving Benchmark Result" block. */

import type { RunRecord } from './run-record.ts';
import { percentileWord } from './stats.ts';

const row = (name: string, value: string | number) =>
  `${name.padEnd(40)} ${typeof value === 'number' ? value.toFixed(2) : value}`;
const title = (text: string, fill: string) => {
  const pad = Math.max(0, 50 - text.length);
  return `${fill.repeat(Math.floor(pad / 2))}${text}${fill.repeat(Math.ceil(pad / 2))}`;
};

export function consoleSummary(run: RunRecord): string {
  const m = run.metrics;
  const lines = [
    title(` ${run.settings.label} `, '='),
    row('Successful requests:', String(m.completed)),
    row('Failed requests:', String(m.failed)),
    ...(m.cancelled > 0 ? [row('Cancelled requests:', String(m.cancelled))] : []),
    ...(Number.isFinite(run.settings.maxConcurrency)
      ? [row('Maximum request concurrency:', String(run.settings.maxConcurrency))]
      : []),
    row('Benchmark duration (s):', m.durationS),
    row('Total input tokens:', String(m.totalInput)),
    row('Total generated tokens:', String(m.totalOutput)),
    row('Request throughput (req/s):', m.requestThroughput),
    ...(m.requestGoodput !== undefined ? [row('Request goodput (req/s):', m.requestGoodput)] : []),
    row('Output token throughput (tok/s):', m.outputThroughput),
    row('Peak output token throughput (tok/s):', m.maxOutputTokensPerS),
    row('Peak concurrent requests:', String(m.maxConcurrentRequests)),
    row('Total token throughput (tok/s):', m.totalTokenThroughput),
  ];
  const blocks = [
    ['Time to First Token', 'TTFT', m.ttftMs],
    ['Time per Output Token (excl. 1st token)', 'TPOT', m.tpotMs],
    ['Inter-token Latency', 'ITL', m.itlMs],
    ['End-to-end Latency', 'E2EL', m.e2elMs],
  ] as const;
  for (const [header, name, s] of blocks) {
    lines.push(title(header, '-'), row(`Mean ${name} (ms):`, s.mean), row(`Median ${name} (ms):`, s.median));
    for (const [p, v] of s.percentiles) lines.push(row(`P${percentileWord(p)} ${name} (ms):`, v));
  }
  lines.push('='.repeat(50));
  return `${lines.join('\n')}\n`;
}

/** One line per run, for sweeps. */
export function consoleLine(run: RunRecord): string {
  const m = run.metrics;
  const p99 = (s: { percentiles: readonly (readonly [number, number])[] }) =>
    s.percentiles[s.percentiles.length - 1]?.[1] ?? NaN;
  return (
    `${run.settings.label}: ${m.completed} ok, ${m.failed} failed, ${m.outputThroughput.toFixed(1)} out tok/s, ` +
    `TTFT ${m.ttftMs.mean.toFixed(1)} ms (p${percentileWord(m.ttftMs.percentiles[m.ttftMs.percentiles.length - 1]?.[0] ?? 99)} ${p99(m.ttftMs).toFixed(1)}), ` +
    `TPOT ${m.tpotMs.mean.toFixed(1)} ms, ITL ${m.itlMs.mean.toFixed(1)} ms`
  );
}
