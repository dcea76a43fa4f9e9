import { afterEach, describe, expect, it } from 'vitest';
import {
  ATTR_EXPERT,
  ATTR_LAYER,
  METRIC_EXPERT_BALANCEDNESS,
  METRIC_EXPERT_TOKENS,
  METRIC_VLLM_KV_CACHE_USAGE_PERC,
  METRIC_VLLM_PREFIX_CACHE_HITS,
  METRIC_VLLM_PREFIX_CACHE_QUERIES,
  METRIC_TOKEN_ACTIVE_PARAMS,
} from '@switchyard/telemetry/names';
import { parseExposition, PrometheusParseError } from '../src/prometheus-text.ts';
import { histogramQuantile, scrapeMetrics, serverMetricsOf, type Scrape } from '../src/server-metrics.ts';
import { clusterLabel, type ClusterSpec } from '../src/scenario.ts';
import { workerLoadOf } from '../src/worker-load.ts';
import { startFakeServer, type FakeServer } from './helpers/fake-openai-server.ts';
import { otelExposition } from '@switchyard/telemetry/testing';

const ok = (text: string): Scrape => ({ ok: true, exposition: parseExposition(text) });

describe('Prometheus text parser', () => {
  it('reads names, labels with escapes, special values and declared types', () => {
    const e = parseExposition(
      [
        '# HELP a_total A counter.',
        '# TYPE a_total counter',
        'a_total{path="/x\\"y\\\\z",line="1\\n2",} 3.5e2 1700000000000',
        'b NaN',
        'c{le="+Inf"} +Inf',
        'd -Inf',
        '# EOF',
      ].join('\n'),
    );
    expect(e.samples).toEqual([
      { name: 'a_total', labels: { path: '/x"y\\z', line: '1\n2' }, value: 350 },
      { name: 'b', labels: {}, value: NaN },
      { name: 'c', labels: { le: '+Inf' }, value: Infinity },
      { name: 'd', labels: {}, value: -Infinity },
    ]);
    expect(e.types.get('a_total')).toBe('counter');
  });

  it('names the line of a malformed sample', () => {
    expect(() => parseExposition('ok 1\nbad{x="1" 2')).toThrow(PrometheusParseError);
    expect(() => parseExposition('ok 1\nbad{x="1"} two')).toThrow('/metrics line 2: bad value "two"');
  });
});

describe('server metrics from /metrics before and after a run', () => {
  let exposition: { expose: () => Promise<string>; close: () => Promise<void> } | undefined;
  let server: FakeServer | undefined;
  afterEach(async () => {
    await exposition?.close();
    await server?.close();
    exposition = undefined;
    server = undefined;
  });

  it('reads the series exactly as the gateway names them, as run deltas', async () => {
    // 2 layers × 3 experts; counts before and after the run.
    let counts = [
      [5, 0, 1],
      [2, 2, 2],
    ];
    let queries = 100;
    let hits = 40;
    exposition = otelExposition((meter) => {
      meter
        .createObservableCounter(METRIC_EXPERT_TOKENS)
        .addCallback((r) =>
          counts.forEach((row, layer) =>
            row.forEach((n, expert) => n > 0 && r.observe(n, { [ATTR_LAYER]: layer, [ATTR_EXPERT]: expert })),
          ),
        );
      meter
        .createObservableGauge(METRIC_EXPERT_BALANCEDNESS, { unit: '1' })
        .addCallback((r) => [0.5, 0.25].forEach((b, layer) => r.observe(b, { [ATTR_LAYER]: layer })));
      meter.createObservableGauge(METRIC_VLLM_KV_CACHE_USAGE_PERC).addCallback((r) => r.observe(0.125));
      meter
        .createObservableCounter(METRIC_VLLM_PREFIX_CACHE_QUERIES)
        .addCallback((r) => r.observe(queries, { model_name: 'tiny' }));
      meter
        .createObservableCounter(METRIC_VLLM_PREFIX_CACHE_HITS)
        .addCallback((r) => r.observe(hits, { model_name: 'tiny' }));
      const params = meter.createHistogram(METRIC_TOKEN_ACTIVE_PARAMS, {
        advice: { explicitBucketBoundaries: [1000, 10000] },
      });
      params.record(5000);
    });
    const before = ok(await exposition.expose());
    counts = [
      [45, 10, 1],
      [12, 12, 2],
    ];
    queries = 300;
    hits = 90;
    const after = await exposition.expose();
    expect(after).toContain('switchyard_expert_tokens_total{switchyard_layer="0",switchyard_expert="1"');
    const during = [ok('vllm:kv_cache_usage_perc{model_name="tiny"} 0.5'), { ok: false, reason: 'timeout' } as const];
    const report = serverMetricsOf(before, ok(after), { numLayers: 2, numExperts: 4 }, during);
    if (!report.available) throw new Error(report.reason);
    // Deltas, widened to the model's 4 experts (expert 3 never routed: no series at all).
    expect(report.expertLoad?.counts).toEqual([
      [40, 10, 0, 0],
      [10, 10, 0, 0],
    ]);
    expect(report.balancedness).toEqual([50 / 4 / 40, 20 / 4 / 10]);
    expect(report.lastStepBalancedness).toEqual([0.5, 0.25]);
    expect(report.kvUsage).toBe(0.125);
    // The gauge's peak comes from the scrapes taken during the run (a failed one is ignored).
    expect(report.kvUsagePeak).toBe(0.5);
    expect(report.prefixCache).toEqual({ queriedTokens: 200, hitTokens: 50, hitRate: 0.25 });
    // Nothing recorded into the histogram during the run: no mean.
    expect(report.activeParamsPerToken).toBeUndefined();
    expect(report.dispatchLatencyMs).toBeUndefined();
    expect(report.missing).toContain('switchyard_expert_dispatch_duration_seconds_count');
  });

  it('takes histogram means and quantiles from the run’s bucket deltas (PromQL histogram_quantile)', () => {
    const h = (c1: number, c2: number, inf: number, sum: number) =>
      parseExposition(
        [
          `h_bucket{le="0.01"} ${c1}`,
          `h_bucket{le="0.1"} ${c2}`,
          `h_bucket{le="+Inf"} ${inf}`,
          `h_sum ${sum}`,
          `h_count ${inf}`,
        ].join('\n'),
      );
    const before = h(10, 10, 10, 0.05);
    const after = h(20, 30, 30, 0.65);
    // Run: 10 in (0, 0.01], 10 in (0.01, 0.1]. Median at rank 10: the top of the first bucket.
    expect(histogramQuantile(0.5, before, after, 'h')).toBeCloseTo(0.01, 12);
    // p75 at rank 15: halfway through (0.01, 0.1].
    expect(histogramQuantile(0.75, before, after, 'h')).toBeCloseTo(0.055, 12);
    expect(histogramQuantile(0.5, after, after, 'h')).toBeUndefined();
  });

  it('reports "not available" when the server has no /metrics or cannot be reached', async () => {
    server = await startFakeServer({ firstTokenMs: 1, tokenIntervalMs: 1 });
    const scrape = await scrapeMetrics(server.url);
    expect(scrape).toEqual({ ok: false, reason: 'GET /metrics answered HTTP 404' });
    expect(serverMetricsOf(scrape, scrape)).toEqual({ available: false, reason: 'GET /metrics answered HTTP 404' });
    const url = server.url;
    await server.close();
    server = undefined;
    const down = await scrapeMetrics(url, 1000);
    expect(down.ok).toBe(false);
  });
});

describe('per-worker load under the gateway placement', () => {
  const load = {
    numLayers: 2,
    numExperts: 4,
    counts: [
      [8, 4, 2, 2],
      [8, 4, 2, 2],
    ],
  };
  const cluster = (c: Omit<ClusterSpec, 'label'>): ClusterSpec => ({ ...c, label: clusterLabel(c) });
  const base = {
    preset: 'skewed',
    workers: 2,
    placement: 'contiguous',
    replication: 1,
    expertDtype: 'fp32',
    microBatches: 1,
  } as const;

  it('contiguous puts the hot experts 0 and 1 on worker 0; round-robin spreads them', () => {
    expect(workerLoadOf(load, cluster(base))).toEqual({ pairsPerWorker: [24, 8], balancedness: 16 / 24 });
    expect(workerLoadOf(load, cluster({ ...base, placement: 'round-robin' }))).toEqual({
      pairsPerWorker: [20, 12],
      balancedness: 16 / 20,
    });
  });

  it("shares an expert's pairs evenly among its replicas, as the remote executor does", () => {
    expect(workerLoadOf(load, cluster({ ...base, replication: 2 }))?.pairsPerWorker).toEqual([16, 16]);
    expect(workerLoadOf(load, cluster({ ...base, workers: 0 }))).toBeUndefined();
  });
});
