import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import {
  ATTR_VLLM_FINISHED_REASON,
  ATTR_VLLM_MODEL_NAME,
  BUCKETS_VLLM_ITL_S,
  BUCKETS_VLLM_REQUEST_S,
  BUCKETS_VLLM_TTFT_S,
  METRIC_VLLM_E2E_REQUEST_LATENCY,
  METRIC_VLLM_GENERATION_TOKENS,
  METRIC_VLLM_INTER_TOKEN_LATENCY,
  METRIC_VLLM_KV_CACHE_USAGE_PERC,
  METRIC_VLLM_NUM_PREEMPTIONS,
  METRIC_VLLM_NUM_REQUESTS_RUNNING,
  METRIC_VLLM_NUM_REQUESTS_WAITING,
  METRIC_VLLM_PREFIX_CACHE_HITS,
  METRIC_VLLM_PREFIX_CACHE_QUERIES,
  METRIC_VLLM_PROMPT_TOKENS,
  METRIC_VLLM_REQUEST_QUEUE_TIME,
  METRIC_VLLM_REQUEST_SUCCESS,
  METRIC_VLLM_TIME_TO_FIRST_TOKEN,
} from './names.ts';

/** The finish reasons vLLM counts (a request that fails is not a success). */
const FINISHED_REASONS = ['stop', 'length', 'abort'] as const;

/** Read at collection time: an engine's state (each optional; a missing one is not reported). */
export interface EngineGauges {
  /** The model the engine serves (the `model_name` label). */
  readonly model?: string;
  readonly numRunning?: () => number;
  readonly numWaiting?: () => number;
  /** Fraction of KV blocks in use, 0–1. */
  readonly kvUsage?: () => number;
  /** Requests queued before any engine took them (the JetStream backlog of the model); added to waiting. */
  readonly queueDepth?: () => number;
}

/** One ended request, as vLLM counts it. */
export interface VllmRequest {
  readonly model: string;
  readonly promptTokens: number;
  readonly generationTokens: number;
  readonly cachedPromptTokens: number;
  readonly e2eS: number;
  /** Absent when no token was produced or the request failed. */
  readonly timeToFirstTokenS?: number;
  /** Absent when the engine never computed a row of it. */
  readonly queueTimeS?: number;
  /** `stop`, `length` or `abort` for a request that finished; absent for one that failed. */
  readonly finishedReason?: string;
}

/**
 * vLLM's metric names over Switchyard's measurements, labelled `model_name` (docs/architecture.md §7).
 * Latencies use vLLM's bucket boundaries.
 */
export class VllmMetrics {
  readonly #ttft: Histogram;
  readonly #itl: Histogram;
  readonly #e2e: Histogram;
  readonly #queueTime: Histogram;
  readonly #promptTokens: Counter;
  readonly #generationTokens: Counter;
  readonly #success: Counter;
  readonly #preemptions: Counter;
  readonly #prefixQueries: Counter;
  readonly #prefixHits: Counter;
  readonly #byModel = new Map<string, Attributes>();
  #gauges: EngineGauges = {};

  constructor(meter: Meter) {
    const seconds = (name: string, description: string, buckets: number[]) =>
      meter.createHistogram(name, { description, unit: 's', advice: { explicitBucketBoundaries: buckets } });
    this.#ttft = seconds(METRIC_VLLM_TIME_TO_FIRST_TOKEN, 'Time to first token', BUCKETS_VLLM_TTFT_S);
    this.#itl = seconds(METRIC_VLLM_INTER_TOKEN_LATENCY, 'Time between consecutive output tokens', BUCKETS_VLLM_ITL_S);
    this.#e2e = seconds(METRIC_VLLM_E2E_REQUEST_LATENCY, 'End-to-end request latency', BUCKETS_VLLM_REQUEST_S);
    this.#queueTime = seconds(
      METRIC_VLLM_REQUEST_QUEUE_TIME,
      'Time a request waited in the engine before its first computed row',
      BUCKETS_VLLM_REQUEST_S,
    );
    const tokens = (name: string, description: string) => meter.createCounter(name, { description, unit: '{token}' });
    this.#promptTokens = tokens(METRIC_VLLM_PROMPT_TOKENS, 'Prompt tokens of ended requests');
    this.#generationTokens = tokens(METRIC_VLLM_GENERATION_TOKENS, 'Generated tokens of ended requests');
    this.#prefixQueries = tokens(METRIC_VLLM_PREFIX_CACHE_QUERIES, 'Prompt tokens looked up in the prefix cache');
    this.#prefixHits = tokens(METRIC_VLLM_PREFIX_CACHE_HITS, 'Prompt tokens found in the prefix cache');
    this.#success = meter.createCounter(METRIC_VLLM_REQUEST_SUCCESS, {
      description: 'Finished requests by finish reason',
      unit: '{request}',
    });
    this.#preemptions = meter.createCounter(METRIC_VLLM_NUM_PREEMPTIONS, {
      description: 'Sequences preempted (their KV blocks freed, recomputed later)',
      unit: '{preemption}',
    });
    const gauge = (name: string, description: string, read: (g: EngineGauges) => number | undefined) =>
      meter.createObservableGauge(name, { description }).addCallback((result) => {
        const value = read(this.#gauges);
        const model = this.#gauges.model;
        if (value !== undefined && model !== undefined) result.observe(value, this.#attributes(model));
      });
    gauge(METRIC_VLLM_NUM_REQUESTS_RUNNING, 'Requests being generated', (g) => g.numRunning?.());
    gauge(METRIC_VLLM_NUM_REQUESTS_WAITING, 'Requests waiting: in the engine, plus the queue backlog', (g) =>
      g.numWaiting === undefined ? undefined : g.numWaiting() + (g.queueDepth?.() ?? 0),
    );
    gauge(METRIC_VLLM_KV_CACHE_USAGE_PERC, 'Fraction (0–1) of KV cache blocks in use', (g) => g.kvUsage?.());
  }

  /**
   * Sets where the gauges read from; with a model, its counters start at 0 (a series that exists from
   * start-up makes `rate()` and `increase()` right from the first request).
   */
  observe(gauges: EngineGauges): void {
    this.#gauges = gauges;
    if (gauges.model === undefined) return;
    const attributes = this.#attributes(gauges.model);
    for (const counter of [
      this.#promptTokens,
      this.#generationTokens,
      this.#preemptions,
      this.#prefixQueries,
      this.#prefixHits,
    ])
      counter.add(0, attributes);
    for (const reason of FINISHED_REASONS) this.#success.add(0, { ...attributes, [ATTR_VLLM_FINISHED_REASON]: reason });
  }

  recordRequest(r: VllmRequest): void {
    const attributes = this.#attributes(r.model);
    this.#e2e.record(r.e2eS, attributes);
    this.#promptTokens.add(r.promptTokens, attributes);
    this.#generationTokens.add(r.generationTokens, attributes);
    this.#prefixQueries.add(r.promptTokens, attributes);
    this.#prefixHits.add(r.cachedPromptTokens, attributes);
    if (r.timeToFirstTokenS !== undefined) this.#ttft.record(r.timeToFirstTokenS, attributes);
    if (r.queueTimeS !== undefined) this.#queueTime.record(r.queueTimeS, attributes);
    if (r.finishedReason !== undefined)
      this.#success.add(1, { ...attributes, [ATTR_VLLM_FINISHED_REASON]: r.finishedReason });
  }

  recordInterToken(model: string, seconds: number): void {
    this.#itl.record(seconds, this.#attributes(model));
  }

  recordPreemptions(model: string, count: number): void {
    if (count > 0) this.#preemptions.add(count, this.#attributes(model));
  }

  #attributes(model: string): Attributes {
    let attributes = this.#byModel.get(model);
    if (!attributes) {
      attributes = { [ATTR_VLLM_MODEL_NAME]: model };
      this.#byModel.set(model, attributes);
    }
    return attributes;
  }
}
