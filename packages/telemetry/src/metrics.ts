import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import type { StepCompute } from './accounting-observer.ts';
import {
  ATTR_ERROR_TYPE,
  ATTR_EXPERT,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_TOKEN_TYPE,
  ATTR_KV_TRANSFER_DIRECTION,
  ATTR_LAYER,
  ATTR_WORKER,
  METRIC_DENSE_EQUIVALENT_FLOPS,
  METRIC_PREFIX_CACHE_FLOPS_SAVED,
  METRIC_STEP_EXPERT_BYTES_FP32,
  WORKER_LOCAL,
  BUCKETS_DISPATCH_S,
  BUCKETS_REQUEST_DURATION_S,
  BUCKETS_TIME_PER_OUTPUT_TOKEN_S,
  BUCKETS_TIME_TO_FIRST_TOKEN_S,
  BUCKETS_TOKEN_USAGE,
  GEN_AI_TOKEN_TYPE_INPUT,
  GEN_AI_TOKEN_TYPE_OUTPUT,
  METRIC_EXPERT_BALANCEDNESS,
  METRIC_EXPERT_WINDOW_TOKENS,
  METRIC_EXPERT_DISPATCH_DURATION,
  METRIC_EXPERT_TOKENS,
  METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
  METRIC_GEN_AI_SERVER_REQUEST_DURATION,
  METRIC_GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN,
  METRIC_GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
  METRIC_KV_PAGE_TRANSFER_BYTES,
  METRIC_KV_PAGE_TRANSFERS,
  METRIC_STEP_EXPERT_BYTES,
  METRIC_TOKEN_ACTIVE_PARAMS,
  METRIC_TOKEN_FLOPS,
  METRIC_ROUTER_DECISIONS,
  METRIC_ROUTER_REROUTES,
  METRIC_ROUTER_PROMPT_BLOCKS,
  METRIC_ROUTER_OVERLAP_BLOCKS,
  METRIC_KV_INDEX_ENTRIES,
  METRIC_KV_EVENT_GAPS,
  METRIC_KV_EVENT_LAG,
  METRIC_KV_PROMPT_TOKENS,
  METRIC_KV_FETCHES,
  METRIC_KV_FETCH_DURATION,
  BUCKETS_KV_FETCH_S,
  ATTR_KV_SOURCE,
  ATTR_KV_FETCH_OUTCOME,
  ATTR_KV_FETCH_SOURCE,
  ATTR_KV_FETCH_REASON,
  ATTR_ROUTER_TARGET,
  SWITCHYARD_PROVIDER_NAME,
  type GenAiOperation,
} from './names.ts';
import { VllmMetrics, type EngineGauges } from './vllm-metrics.ts';

export type { EngineGauges } from './vllm-metrics.ts';

/** Log-spaced boundaries (×√10) from 1e3 to 1e13: parameter and FLOP counts of any model size. */
const BUCKETS_COUNT = Array.from({ length: 21 }, (_, i) => Number((10 ** (3 + i / 2)).toPrecision(2)));

/** Read at collection time: a frontend's routing and cluster KV index (NATS mode). */
export interface RouterGauges {
  readonly decisions: () => {
    readonly routed: number;
    readonly shared: number;
    readonly rerouted: number;
    readonly overlapBlocks: number;
    readonly promptBlocks: number;
  };
  readonly indexEntries: () => number;
  readonly eventGaps: () => number;
  /** Undefined before the first batch. */
  readonly eventLagS: () => number | undefined;
}

/** One finished request, as the metrics see it. */
export interface RequestMeasurement {
  readonly operation: GenAiOperation;
  readonly model: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly cachedInputTokens: number;
  readonly durationS: number;
  /** Absent when no token was produced. */
  readonly timeToFirstTokenS?: number;
  /** Absent unless at least two tokens were produced. */
  readonly timePerOutputTokenS?: number;
  /** Low-cardinality error identifier (an error's `code` or name). */
  readonly errorType?: string;
  /** The engine's finish reason (`stop`, `length`, `abort`, `error`). */
  readonly finishReason?: string;
  /** From the engine taking the request to its first computed row; absent when none was computed. */
  readonly queueTimeS?: number;
  /** Prefill FLOPs the prefix cache saved. */
  readonly prefixFlopsSaved?: number;
}

/** A prefetch as telemetry records it (the kv-transfer package's PrefetchResult, in tokens). */
export interface KvTransferRecord {
  readonly outcome: string;
  readonly source?: 'engine' | 'store';
  readonly reason?: string;
  readonly localTokens: number;
  readonly fetchedTokens: number;
  readonly fetchedPages: number;
  readonly recomputedTokens: number;
  readonly bytes: number;
  readonly durationMs: number;
}

/**
 * Every metric Switchyard exports (the catalog: metric-catalog.ts), recorded through the OpenTelemetry
 * meter: the GenAI conventions', vLLM's (vllm-metrics.ts) and our own. Per-step and per-expert values
 * accumulate in typed arrays and are reported by observable instruments at collection time, so a step
 * costs array additions, not one instrument call per (layer, expert).
 *
 * Invariant: `#balancedness` and every array of `#expertTokens` (one per worker label) are sized by the
 * first step recorded (a process serves one model); a step of another shape is a bug and throws.
 */
export class SwitchyardMetrics {
  readonly #provider: string;
  readonly #ttft: Histogram;
  readonly #tpot: Histogram;
  readonly #duration: Histogram;
  readonly #tokenUsage: Histogram;
  readonly #activeParams: Histogram;
  readonly #flops: Histogram;
  readonly #expertBytes: Counter;
  readonly #expertBytesFp32: Counter;
  readonly #denseEquivalentFlops: Counter;
  readonly #prefixFlopsSaved: Counter;
  readonly #pageTransfers: Counter;
  readonly #pageTransferBytes: Counter;
  readonly #dispatch: Histogram;
  readonly #kvPromptTokens: Counter;
  readonly #kvFetches: Counter;
  readonly #kvFetchDuration: Histogram;
  readonly #requestAttributes = new Map<string, Attributes>();
  readonly #modelAttributes = new Map<string, Attributes>();
  readonly vllm: VllmMetrics;
  /** Totals since start, as plain numbers any caller can read (the live page): computed token rows and their compute. */
  readonly #totals = { computedTokens: 0, activeParams: 0, flops: 0 };
  /** Worker label → [layer × numExperts + expert] → (token, expert) pairs routed there. */
  readonly #expertTokens = new Map<string, Float64Array>();
  #expertShape: { readonly numLayers: number; readonly numExperts: number } | undefined;
  #balancedness: Float64Array | undefined;
  #router: RouterGauges | undefined;
  #expertLoad: (() => readonly (readonly number[])[]) | undefined;

  constructor(meter: Meter, options: { readonly provider?: string } = {}) {
    this.#provider = options.provider ?? SWITCHYARD_PROVIDER_NAME;
    const seconds = (name: string, description: string, buckets: number[]) =>
      meter.createHistogram(name, { description, unit: 's', advice: { explicitBucketBoundaries: buckets } });
    this.#ttft = seconds(
      METRIC_GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
      'Time to generate the first token for successful responses',
      BUCKETS_TIME_TO_FIRST_TOKEN_S,
    );
    this.#tpot = seconds(
      METRIC_GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN,
      'Time per output token generated after the first token for successful responses',
      BUCKETS_TIME_PER_OUTPUT_TOKEN_S,
    );
    this.#duration = seconds(
      METRIC_GEN_AI_SERVER_REQUEST_DURATION,
      'Generative AI server request duration',
      BUCKETS_REQUEST_DURATION_S,
    );
    this.#tokenUsage = meter.createHistogram(METRIC_GEN_AI_CLIENT_TOKEN_USAGE, {
      description: 'Number of input and output tokens used',
      unit: '{token}',
      advice: { explicitBucketBoundaries: BUCKETS_TOKEN_USAGE },
    });
    this.#activeParams = meter.createHistogram(METRIC_TOKEN_ACTIVE_PARAMS, {
      description: 'Active parameters of each computed token, from the routing decisions made',
      unit: '{parameter}',
      advice: { explicitBucketBoundaries: BUCKETS_COUNT },
    });
    this.#flops = meter.createHistogram(METRIC_TOKEN_FLOPS, {
      description: 'FLOPs of each computed token (2 × matmul parameters + attention over its context)',
      unit: '{flop}',
      advice: { explicitBucketBoundaries: BUCKETS_COUNT },
    });
    this.#expertBytes = meter.createCounter(METRIC_STEP_EXPERT_BYTES, {
      description: 'Expert weight bytes read',
      unit: 'By',
    });
    this.#expertBytesFp32 = meter.createCounter(METRIC_STEP_EXPERT_BYTES_FP32, {
      description: 'Expert weight bytes the same steps would read with fp32 experts',
      unit: 'By',
    });
    this.#denseEquivalentFlops = meter.createCounter(METRIC_DENSE_EQUIVALENT_FLOPS, {
      description: 'FLOPs of the computed tokens had every routed expert been active',
      unit: '{flop}',
    });
    this.#prefixFlopsSaved = meter.createCounter(METRIC_PREFIX_CACHE_FLOPS_SAVED, {
      description: 'Prefill FLOPs not computed thanks to the prefix cache',
      unit: '{flop}',
    });
    this.#pageTransfers = meter.createCounter(METRIC_KV_PAGE_TRANSFERS, {
      description: 'KV cache pages moved between nodes',
      unit: '{page}',
    });
    this.#pageTransferBytes = meter.createCounter(METRIC_KV_PAGE_TRANSFER_BYTES, {
      description: 'KV cache bytes moved between nodes',
      unit: 'By',
    });
    this.#dispatch = seconds(
      METRIC_EXPERT_DISPATCH_DURATION,
      'Round trip of one Run message to an expert worker',
      BUCKETS_DISPATCH_S,
    );
    this.#kvPromptTokens = meter.createCounter(METRIC_KV_PROMPT_TOKENS, {
      description: 'Prompt tokens by where their KV came from: local cache, a peer engine, the page store, or computed',
      unit: '{token}',
    });
    this.#kvFetches = meter.createCounter(METRIC_KV_FETCHES, {
      description: 'Page fetch decisions before admission, by outcome',
      unit: '{request}',
    });
    this.#kvFetchDuration = seconds(
      METRIC_KV_FETCH_DURATION,
      'Time spent fetching KV pages from a peer or the page store before admission',
      BUCKETS_KV_FETCH_S,
    );
    this.vllm = new VllmMetrics(meter);
    this.#observeInstruments(meter);
  }

  /** One request's prefetch: where its prompt's KV came from, and the fetch that moved it. */
  recordKvFetch(kv: KvTransferRecord): void {
    const fetchedFrom = kv.source ?? 'none';
    this.#kvFetches.add(1, {
      [ATTR_KV_FETCH_OUTCOME]: kv.outcome,
      [ATTR_KV_FETCH_SOURCE]: fetchedFrom,
      ...(kv.reason !== undefined ? { [ATTR_KV_FETCH_REASON]: kv.reason } : {}),
    });
    if (kv.localTokens > 0) this.#kvPromptTokens.add(kv.localTokens, { [ATTR_KV_SOURCE]: 'local' });
    if (kv.fetchedTokens > 0 && kv.source !== undefined)
      this.#kvPromptTokens.add(kv.fetchedTokens, { [ATTR_KV_SOURCE]: kv.source });
    if (kv.recomputedTokens > 0) this.#kvPromptTokens.add(kv.recomputedTokens, { [ATTR_KV_SOURCE]: 'computed' });
    if (kv.bytes > 0) {
      this.recordPageTransfer('fetch', kv.fetchedPages, kv.bytes);
      this.#kvFetchDuration.record(kv.durationMs / 1000, { [ATTR_KV_FETCH_SOURCE]: fetchedFrom });
    }
  }

  /** One Run round trip to `worker` (its address) for `layer`; `ok` false when it failed. */
  recordDispatch(layer: number, worker: string, seconds: number, ok: boolean): void {
    this.#dispatch.record(seconds, {
      [ATTR_LAYER]: layer,
      [ATTR_WORKER]: worker,
      ...(ok ? {} : { [ATTR_ERROR_TYPE]: 'dispatch_failed' }),
    });
  }

  /** Sets where the gauges read from (the engine, the KV cache, the queue); replaces the previous sources. */
  observeEngine(gauges: EngineGauges): void {
    this.vllm.observe(gauges);
    if (gauges.model === undefined) return;
    const attributes = this.#modelOnly(gauges.model);
    for (const counter of [
      this.#expertBytes,
      this.#expertBytesFp32,
      this.#denseEquivalentFlops,
      this.#prefixFlopsSaved,
    ])
      counter.add(0, attributes);
  }

  /** Sets where the sliding-window expert load gauge reads from: pairs per [layer][expert] right now. */
  observeExpertLoad(totals: () => readonly (readonly number[])[]): void {
    this.#expertLoad = totals;
  }

  /** Sets where the routing and KV-index instruments read from (a NATS frontend). */
  observeRouter(router: RouterGauges): void {
    this.#router = router;
  }

  recordRequest(r: RequestMeasurement): void {
    const base = this.#attributesOf(r.operation, r.model);
    const failed = r.errorType !== undefined ? { ...base, [ATTR_ERROR_TYPE]: r.errorType } : base;
    this.#duration.record(r.durationS, failed);
    this.#tokenUsage.record(r.inputTokens, { ...base, [ATTR_GEN_AI_TOKEN_TYPE]: GEN_AI_TOKEN_TYPE_INPUT });
    this.#tokenUsage.record(r.outputTokens, { ...base, [ATTR_GEN_AI_TOKEN_TYPE]: GEN_AI_TOKEN_TYPE_OUTPUT });
    if ((r.prefixFlopsSaved ?? 0) > 0) this.#prefixFlopsSaved.add(r.prefixFlopsSaved ?? 0, this.#modelOnly(r.model));
    const ok = r.errorType === undefined && r.finishReason !== 'error';
    this.vllm.recordRequest({
      model: r.model,
      promptTokens: r.inputTokens,
      generationTokens: r.outputTokens,
      cachedPromptTokens: r.cachedInputTokens,
      e2eS: r.durationS,
      ...(ok && r.timeToFirstTokenS !== undefined ? { timeToFirstTokenS: r.timeToFirstTokenS } : {}),
      ...(r.queueTimeS !== undefined ? { queueTimeS: r.queueTimeS } : {}),
      ...(ok && r.finishReason !== undefined ? { finishedReason: r.finishReason } : {}),
    });
    if (r.errorType !== undefined) return;
    if (r.timeToFirstTokenS !== undefined) this.#ttft.record(r.timeToFirstTokenS, base);
    if (r.timePerOutputTokenS !== undefined) this.#tpot.record(r.timePerOutputTokenS, base);
  }

  /** One computed token row. */
  recordToken(model: string, activeParams: number, flops: number, denseEquivalentFlops: number): void {
    const attributes = this.#modelOnly(model);
    this.#activeParams.record(activeParams, attributes);
    this.#flops.record(flops, attributes);
    this.#denseEquivalentFlops.add(denseEquivalentFlops, attributes);
    this.#totals.computedTokens += 1;
    this.#totals.activeParams += activeParams;
    this.#totals.flops += flops;
  }

  /**
   * Totals since start: computed token rows, their active parameters and FLOPs, and (token, expert)
   * pairs per `[layer × numExperts + expert]` over all workers (undefined before the first step).
   */
  totals(): {
    readonly computedTokens: number;
    readonly activeParams: number;
    readonly flops: number;
    readonly expertTokens: Float64Array | undefined;
    readonly numExperts: number;
  } {
    const shape = this.#expertShape;
    let expertTokens: Float64Array | undefined;
    if (shape) {
      expertTokens = new Float64Array(shape.numLayers * shape.numExperts);
      const sum = expertTokens;
      for (const tokens of this.#expertTokens.values()) tokens.forEach((n, i) => (sum[i] = (sum[i] ?? 0) + n));
    }
    return { ...this.#totals, expertTokens, numExperts: shape?.numExperts ?? 0 };
  }

  /**
   * One step's accounting. `workerOf(layer, expert)` names the worker that computed the expert's pairs
   * (its address); absent, they count as `local`.
   */
  recordStep(model: string, step: StepCompute, workerOf?: (layer: number, expert: number) => string): void {
    const numExperts = this.#checkShape(step);
    step.tokensPerExpert.forEach((n, i) => {
      if (n === 0) return;
      const worker = workerOf?.(Math.floor(i / numExperts), i % numExperts) ?? WORKER_LOCAL;
      const tokens = this.#expertTokensOf(worker);
      tokens[i] = (tokens[i] ?? 0) + n;
    });
    const balancedness = this.#balancedness ?? new Float64Array(step.balancedness.length);
    this.#balancedness = balancedness;
    step.balancedness.forEach((b, layer) => {
      if (!Number.isNaN(b)) balancedness[layer] = b;
    });
    if (step.expertBytes > 0) this.#expertBytes.add(step.expertBytes, this.#modelOnly(model));
    if (step.expertBytesFp32 > 0) this.#expertBytesFp32.add(step.expertBytesFp32, this.#modelOnly(model));
  }

  recordPageTransfer(direction: 'fetch' | 'push', numPages: number, sizeBytes: number): void {
    const attributes = { [ATTR_KV_TRANSFER_DIRECTION]: direction };
    this.#pageTransfers.add(numPages, attributes);
    this.#pageTransferBytes.add(sizeBytes, attributes);
  }

  /** Returns numExperts; throws on a step of another shape than the first (a bug). */
  #checkShape(step: StepCompute): number {
    const numLayers = step.balancedness.length;
    const numExperts = step.tokensPerExpert.length / Math.max(1, numLayers);
    this.#expertShape ??= { numLayers, numExperts };
    if (this.#expertShape.numLayers !== numLayers || this.#expertShape.numExperts !== numExperts)
      throw new Error(
        `internal: a step of ${numLayers}×${numExperts} (layer, expert) counts after steps of ` +
          `${this.#expertShape.numLayers}×${this.#expertShape.numExperts}`,
      );
    return numExperts;
  }

  #expertTokensOf(worker: string): Float64Array {
    let tokens = this.#expertTokens.get(worker);
    if (!tokens) {
      const shape = this.#expertShape ?? { numLayers: 0, numExperts: 0 };
      tokens = new Float64Array(shape.numLayers * shape.numExperts);
      this.#expertTokens.set(worker, tokens);
    }
    return tokens;
  }

  #observeInstruments(meter: Meter): void {
    meter
      .createObservableCounter(METRIC_EXPERT_TOKENS, {
        description: '(token, expert) pairs routed, by layer, expert and the worker hosting it',
        unit: '{token}',
      })
      .addCallback((result) => {
        const numExperts = this.#expertShape?.numExperts ?? 1;
        for (const [worker, tokens] of this.#expertTokens) {
          tokens.forEach((n, i) => {
            if (n > 0)
              result.observe(n, {
                [ATTR_LAYER]: Math.floor(i / numExperts),
                [ATTR_EXPERT]: i % numExperts,
                [ATTR_WORKER]: worker,
              });
          });
        }
      });
    meter
      .createObservableGauge(METRIC_EXPERT_BALANCEDNESS, {
        description: 'Mean ÷ max tokens per expert in the last step, per layer',
        unit: '1',
      })
      .addCallback((result) => {
        this.#balancedness?.forEach((b, layer) => result.observe(b, { [ATTR_LAYER]: layer }));
      });
    meter
      .createObservableGauge(METRIC_EXPERT_WINDOW_TOKENS, {
        description: '(token, expert) pairs routed over the sliding window, by layer and expert',
        unit: '{token}',
      })
      .addCallback((result) => {
        this.#expertLoad?.().forEach((row, layer) =>
          row.forEach((n, expert) => result.observe(n, { [ATTR_LAYER]: layer, [ATTR_EXPERT]: expert })),
        );
      });
    const routerCounter = (name: string, description: string, unit: string, read: (r: RouterGauges) => number) =>
      meter.createObservableCounter(name, { description, unit }).addCallback((result) => {
        if (this.#router) result.observe(read(this.#router));
      });
    meter
      .createObservableCounter(METRIC_ROUTER_DECISIONS, {
        description: 'Routing decisions by target',
        unit: '{request}',
      })
      .addCallback((result) => {
        if (!this.#router) return;
        const d = this.#router.decisions();
        result.observe(d.routed, { [ATTR_ROUTER_TARGET]: 'engine' });
        result.observe(d.shared, { [ATTR_ROUTER_TARGET]: 'shared' });
      });
    routerCounter(
      METRIC_ROUTER_REROUTES,
      'Routed requests published again for any engine',
      '{request}',
      (r) => r.decisions().rerouted,
    );
    routerCounter(
      METRIC_ROUTER_PROMPT_BLOCKS,
      'Full prompt blocks of routed requests',
      '{block}',
      (r) => r.decisions().promptBlocks,
    );
    routerCounter(
      METRIC_ROUTER_OVERLAP_BLOCKS,
      'Prompt blocks the chosen engine already held',
      '{block}',
      (r) => r.decisions().overlapBlocks,
    );
    routerCounter(METRIC_KV_EVENT_GAPS, 'Gaps in engines’ KV event numbers', '{gap}', (r) => r.eventGaps());
    const routerGauge = (
      name: string,
      description: string,
      unit: string,
      read: (r: RouterGauges) => number | undefined,
    ) =>
      meter.createObservableGauge(name, { description, unit }).addCallback((result) => {
        const value = this.#router ? read(this.#router) : undefined;
        if (value !== undefined) result.observe(value);
      });
    routerGauge(METRIC_KV_INDEX_ENTRIES, '(block hash, engine) pairs in the cluster prefix index', '{entry}', (r) =>
      r.indexEntries(),
    );
    routerGauge(
      METRIC_KV_EVENT_LAG,
      'Seconds from an engine taking its latest KV event batch to applying it here',
      's',
      (r) => r.eventLagS(),
    );
  }

  #attributesOf(operation: GenAiOperation, model: string): Attributes {
    const key = `${operation}\u0000${model}`;
    let attributes = this.#requestAttributes.get(key);
    if (!attributes) {
      attributes = {
        [ATTR_GEN_AI_OPERATION_NAME]: operation,
        [ATTR_GEN_AI_PROVIDER_NAME]: this.#provider,
        [ATTR_GEN_AI_REQUEST_MODEL]: model,
      };
      this.#requestAttributes.set(key, attributes);
    }
    return attributes;
  }

  #modelOnly(model: string): Attributes {
    let attributes = this.#modelAttributes.get(model);
    if (!attributes) {
      attributes = { [ATTR_GEN_AI_REQUEST_MODEL]: model };
      this.#modelAttributes.set(model, attributes);
    }
    return attributes;
  }
}
