/**
 * The metric catalog (packages/telemetry/src/metric-catalog.ts) is what the services export: a real
 * engine runs requests with telemetry on (Prometheus on demand and OTLP over HTTP/JSON to a local
 * stand-in collector), and
 *  - the direct scrape has exactly the catalog's names, each with its type and label set;
 *  - the OTLP path, named by the Collector's rules, gives the same names (one metric, one name).
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSamplingParams } from '@switchyard/engine';
import { parseExposition } from '@switchyard/loadgen';
import { getPreset, randomWeights } from '@switchyard/model';
import { createEngine } from '@switchyard/onnx';
import {
  EngineTelemetry,
  METRIC_CATALOG,
  prometheusMetricName,
  startTelemetry,
  type PrometheusKind,
} from '@switchyard/telemetry';

const config = getPreset('tiny');
const model = { config, weights: randomWeights(config, 5), weightsDigest: 'ab'.repeat(32) };

interface OtlpMetric {
  readonly name: string;
  readonly unit?: string;
  readonly sum?: { readonly isMonotonic?: boolean };
  readonly gauge?: unknown;
  readonly histogram?: unknown;
}

/** OTLP/JSON export requests received by the stand-in collector. */
const received: { resourceMetrics: { scopeMetrics: { metrics: OtlpMetric[] }[] }[] }[] = [];
let collector: Server;
let scrape: ReturnType<typeof parseExposition>;

async function runEngineWithTelemetry(otlpUrl: string): Promise<string> {
  const saved = { ...process.env };
  process.env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'] = otlpUrl;
  process.env['OTEL_EXPORTER_OTLP_METRICS_PROTOCOL'] = 'http/json';
  const telemetry = await startTelemetry({
    serviceName: 'catalog-test',
    detail: 'off',
    prometheus: 'handler',
    otlpMetrics: true,
  });
  process.env = saved;
  // Experts 0–3 on one worker, 4–7 on another, as a gateway with two expert workers attributes them.
  const et = new EngineTelemetry(telemetry, {
    config,
    expertDtype: 'fp32',
    workerOf: (_layer, expert) => (expert < 4 ? 0 : 1),
    workerName: (index) => `worker-${index}:50051`,
  });
  // Both prompts (5 blocks of 4 tokens each) fill the 10 blocks: the first decode preempts the newer request.
  const bundle = await createEngine(model, {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: 4,
    numKvBlocks: 10,
    scheduler: { maxBatchedTokens: 64, maxRunningSequences: 4 },
    onRouted: et.onRouted,
  });
  et.observeEngine({
    model: config.name,
    numRunning: () => bundle.engine.numRunning,
    numWaiting: () => bundle.engine.numWaiting,
    kvUsage: () => bundle.kv.usage,
    queueDepth: () => 3,
  });
  try {
    const prompts: Record<string, string> = {
      a: 'Mixture of experts',
      b: 'Routing the tokens',
      c: 'Routing the tokens',
    };
    const run = (ids: string[], maxTokens: number) => {
      for (const id of ids) {
        const prompt = bundle.tokenizer.encode(prompts[id] ?? '');
        const handle = et.startRequest({ operation: 'text_completion', model: config.name, requestId: id });
        const params = resolveSamplingParams({ maxTokens, temperature: 0, stopAtEos: false });
        bundle.engine.add(
          { id, promptIds: prompt, params },
          handle.wrapSink(() => undefined),
        );
      }
    };
    run(['a', 'b'], 6);
    while (bundle.engine.hasWork) await et.traceStep(() => bundle.engine.step());
    run(['c'], 2); // b's prompt again: a prefix-cache hit
    while (bundle.engine.hasWork) await et.traceStep(() => bundle.engine.step());
    // What needs expert workers, a NATS frontend or KV transfer, recorded as those parts record it.
    telemetry.metrics.recordDispatch(0, 'worker-0:50051', 0.002, true);
    telemetry.metrics.observeExpertLoad(() => [
      [3, 0, 1],
      [0, 2, 2],
    ]);
    telemetry.metrics.recordDispatch(1, 'worker-1:50051', 0.004, false);
    telemetry.metrics.observeRouter({
      decisions: () => ({ routed: 2, shared: 1, rerouted: 1, overlapBlocks: 3, promptBlocks: 5 }),
      indexEntries: () => 12,
      eventGaps: () => 0,
      eventLagS: () => 0.01,
    });
    telemetry.metrics.recordKvFetch({
      outcome: 'fetched',
      source: 'engine',
      localTokens: 16,
      fetchedTokens: 32,
      fetchedPages: 2,
      recomputedTokens: 3,
      bytes: 4096,
      durationMs: 4,
    });
    const text = await telemetry.renderPrometheus();
    await telemetry.shutdown(); // flushes the OTLP reader
    return text;
  } finally {
    await telemetry.shutdown();
    await bundle.close();
  }
}

beforeAll(async () => {
  collector = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      if (request.url === '/v1/metrics') received.push(JSON.parse(body) as (typeof received)[number]);
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const address = collector.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  scrape = parseExposition(await runEngineWithTelemetry(`http://127.0.0.1:${port}/v1/metrics`));
}, 60_000);
afterAll(() => new Promise<void>((resolve) => collector.close(() => resolve())));

/** Family name of a sample (`x_bucket`, `x_sum`, `x_count` belong to histogram `x`). */
function familyOf(sample: string): string {
  const base = sample.replace(/_(bucket|sum|count)$/, '');
  return scrape.types.get(base) === 'histogram' ? base : sample;
}

describe('the metric catalog', () => {
  it('lists each Prometheus name once', () => {
    const names = METRIC_CATALOG.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('is exactly what the direct scrape exports, with each metric’s type', () => {
    expect([...scrape.types.keys()].sort()).toEqual(METRIC_CATALOG.map((m) => m.name).sort());
    for (const metric of METRIC_CATALOG)
      expect([metric.name, scrape.types.get(metric.name)]).toEqual([metric.name, metric.type]);
  });

  it('gives every series of a metric the catalog’s label set', () => {
    for (const metric of METRIC_CATALOG) {
      const series = scrape.samples.filter((s) => familyOf(s.name) === metric.name);
      expect(series.length, metric.name).toBeGreaterThan(0);
      for (const s of series) {
        const labels = Object.keys(s.labels).filter((l) => l !== 'le');
        const required = [...metric.labels].sort();
        const extra = labels.filter((l) => !metric.labels.includes(l));
        expect({ name: metric.name, has: required.every((l) => labels.includes(l)), extra }).toEqual({
          name: metric.name,
          has: true,
          extra: extra.filter((l) => metric.optionalLabels?.includes(l)),
        });
      }
    }
  });

  it('records what the engine did: vLLM counters, preemption, a prefix hit, experts per worker, the backlog', () => {
    const value = (name: string, labels: Record<string, string> = {}) =>
      scrape.samples
        .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((n, s) => n + s.value, 0);
    expect(value('vllm:generation_tokens_total', { model_name: 'tiny' })).toBe(6 + 6 + 2);
    expect(value('vllm:request_success_total', { finished_reason: 'length' })).toBe(3);
    expect(value('vllm:num_preemptions_total')).toBeGreaterThan(0);
    expect(value('vllm:prefix_cache_hits_total')).toBeGreaterThan(0);
    expect(value('vllm:num_requests_waiting')).toBe(3); // the engine's 0 plus the queue's 3
    expect(value('vllm:inter_token_latency_seconds_count')).toBe(5 + 5 + 1);
    expect(value('vllm:request_queue_time_seconds_count')).toBe(3);
    const workers = new Set(
      scrape.samples
        .filter((s) => s.name === 'switchyard_expert_tokens_total')
        .map((s) => s.labels['switchyard_worker']),
    );
    expect([...workers].sort()).toEqual(['worker-0:50051', 'worker-1:50051']);
  });

  it('is spelt the same on the OTLP path, named by the Collector’s rules', () => {
    const otlp = received.flatMap((r) => r.resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((s) => s.metrics)));
    expect(otlp.length).toBeGreaterThan(0);
    const kindOf = (m: OtlpMetric): PrometheusKind =>
      m.histogram ? 'histogram' : m.sum ? (m.sum.isMonotonic ? 'counter' : 'updown') : 'gauge';
    const names = new Set(otlp.map((m) => prometheusMetricName(m.name, m.unit ?? '', kindOf(m))));
    expect([...names].sort()).toEqual(METRIC_CATALOG.map((m) => m.name).sort());
  });
});

describe('OpenTelemetry → Prometheus names (the specification’s examples)', () => {
  it('adds unit words, _total and _ratio as the Collector does', () => {
    expect(prometheusMetricName('http.server.request.duration', 's', 'histogram')).toBe(
      'http_server_request_duration_seconds',
    );
    expect(prometheusMetricName('requests.count', '1', 'counter')).toBe('requests_count_total');
    expect(prometheusMetricName('memory.usage', 'By', 'gauge')).toBe('memory_usage_bytes');
    expect(prometheusMetricName('cpu.utilization', '1', 'gauge')).toBe('cpu_utilization_ratio');
    expect(prometheusMetricName('net.io', 'By/s', 'gauge')).toBe('net_io_bytes_per_second');
    expect(prometheusMetricName('queue..depth__x', '{request}', 'gauge')).toBe('queue_depth_x');
    expect(prometheusMetricName('vllm:prompt_tokens', '{token}', 'counter')).toBe('vllm:prompt_tokens_total');
    expect(prometheusMetricName('vllm:e2e_request_latency_seconds', 's', 'histogram')).toBe(
      'vllm:e2e_request_latency_seconds',
    );
    expect(prometheusMetricName('2xx.responses_total', '', 'counter')).toBe('_2xx_responses_total');
  });
});
