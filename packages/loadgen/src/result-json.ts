/**
 * A run as JSON with the key names of vLLM's `benchmark_serving` result files (`completed`,
 * `request_throughput`, `mean_ttft_ms`, `p99_itl_ms`, …; per-request lists in seconds as vLLM writes
 * them), so its tools and dashboards read ours. Switchyard's additions (`cancelled`, `not_sent`,
 * `interrupted`, `cluster`, `server_metrics`) use names vLLM does not.
 */

import { describeDataset } from './datasets/dataset.ts';
import type { RunRecord } from './run-record.ts';
import type { ClusterSpec } from './scenario.ts';
import type { ServerMetricsReport } from './server-metrics.ts';
import { percentileWord, type Summary } from './stats.ts';
import { workerLoadOf } from './worker-load.ts';

const METRICS = [
  ['ttft', 'ttftMs'],
  ['tpot', 'tpotMs'],
  ['itl', 'itlMs'],
  ['e2el', 'e2elMs'],
] as const;

/** vLLM's `YYYYMMDD-HHMMSS` (local time). */
export function vllmDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Infinity as vLLM's argparse prints it (JSON has no Infinity). */
const finiteOr = (n: number, word: string): number | string => (Number.isFinite(n) ? n : word);

function summaryKeys(name: string, s: Summary): Record<string, number> {
  const out: Record<string, number> = {
    [`mean_${name}_ms`]: s.mean,
    [`median_${name}_ms`]: s.median,
    [`std_${name}_ms`]: s.std,
  };
  for (const [p, value] of s.percentiles) out[`p${percentileWord(p)}_${name}_ms`] = value;
  return out;
}

function serverMetricsJson(server: ServerMetricsReport, cluster: ClusterSpec | undefined): Record<string, unknown> {
  if (!server.available) return { available: false, reason: server.reason };
  const workers = server.expertLoad && cluster ? workerLoadOf(server.expertLoad, cluster) : undefined;
  return {
    available: true,
    expert_tokens: server.expertLoad?.counts ?? null,
    balancedness: server.balancedness ?? null,
    pairs_per_worker: workers?.pairsPerWorker ?? null,
    worker_balancedness: workers?.balancedness ?? null,
    last_step_balancedness: server.lastStepBalancedness ?? null,
    kv_usage_after: server.kvUsage ?? null,
    kv_usage_peak: server.kvUsagePeak ?? null,
    prefix_cache: server.prefixCache
      ? {
          queried_tokens: server.prefixCache.queriedTokens,
          hit_tokens: server.prefixCache.hitTokens,
          hit_rate: server.prefixCache.hitRate,
        }
      : null,
    active_params_per_token: server.activeParamsPerToken ?? null,
    flops_per_token: server.flopsPerToken ?? null,
    expert_bytes_read: server.expertBytesRead ?? null,
    dispatch_latency_ms: server.dispatchLatencyMs ?? null,
    missing_series: server.missing,
  };
}

export function runToJson(run: RunRecord): Record<string, unknown> {
  const { settings: s, metrics: m, load } = run;
  const outputs = load.outputs;
  const c = s.cluster;
  return {
    date: vllmDate(new Date(run.startedAt)),
    backend: 'openai',
    label: s.label,
    model_id: s.modelId,
    tokenizer_id: null,
    base_url: s.baseUrl,
    dataset_name: s.dataset.kind,
    dataset: describeDataset(s.dataset),
    num_prompts: s.numPrompts,
    request_rate: finiteOr(s.requestRate, 'inf'),
    burstiness: finiteOr(s.burstiness, 'inf'),
    max_concurrency: Number.isFinite(s.maxConcurrency) ? s.maxConcurrency : null,
    seed: s.seed,
    goodput: Object.keys(s.goodput).length > 0 ? s.goodput : null,
    duration: m.durationS,
    completed: m.completed,
    failed: m.failed,
    cancelled: m.cancelled,
    not_sent: load.numNotSent,
    interrupted: load.interrupted,
    total_input_tokens: m.totalInput,
    total_output_tokens: m.totalOutput,
    request_throughput: m.requestThroughput,
    request_goodput: m.requestGoodput ?? null,
    output_throughput: m.outputThroughput,
    total_token_throughput: m.totalTokenThroughput,
    max_output_tokens_per_s: m.maxOutputTokensPerS,
    max_concurrent_requests: m.maxConcurrentRequests,
    ...Object.fromEntries(METRICS.flatMap(([name, key]) => Object.entries(summaryKeys(name, m[key])))),
    input_lens: outputs.map((o) => o.promptLen),
    output_lens: m.outputLens,
    ttfts: outputs.map((o) => o.ttftMs / 1000),
    itls: outputs.map((o) => o.itlMs.map((ms) => ms / 1000)),
    latencies: outputs.map((o) => o.latencyMs / 1000),
    start_times: outputs.map((o) => o.startMs / 1000),
    queue_times: outputs.map((o) => o.queueMs / 1000),
    generated_texts: outputs.map((o) => o.generatedText),
    errors: outputs.map((o) => o.error),
    cluster: c
      ? {
          preset: c.preset,
          workers: c.workers,
          placement: c.placement,
          replication: c.replication,
          expert_dtype: c.expertDtype,
          micro_batches: c.microBatches,
        }
      : null,
    server_metrics: serverMetricsJson(run.server, c),
  };
}
