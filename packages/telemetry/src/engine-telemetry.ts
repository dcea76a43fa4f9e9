import { diag, type Attributes } from '@opentelemetry/api';
import type { ExpertWeightFormat, ModelConfig } from '@switchyard/model';
import type { TokenRoutes } from '@switchyard/routing';
import { AccountingObserver, type ChunkLike, type StepCompute, type TokenCompute } from './accounting-observer.ts';
import { computeModelOf, prefillFlops, type ComputeModel } from './compute-accounting.ts';
import type { EngineGauges, SwitchyardMetrics } from './metrics.ts';
import {
  ATTR_EXPERT_DTYPE,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_PREFIX_CACHE_FLOPS_SAVED,
  ATTR_KV_REMOTE_FLOPS_SAVED,
  ATTR_REQUEST_ACTIVE_PARAMS,
  ATTR_REQUEST_ACTIVE_PARAMS_PER_TOKEN,
  ATTR_REQUEST_COMPUTED_TOKENS,
  ATTR_REQUEST_DECODE_FLOPS,
  ATTR_REQUEST_DECODE_TOKENS,
  ATTR_REQUEST_DENSE_EQUIVALENT_FLOPS,
  ATTR_REQUEST_EXPERT_ACTIVATIONS,
  ATTR_REQUEST_EXPERTS_HIT,
  ATTR_REQUEST_FLOPS,
  ATTR_REQUEST_PREFILL_FLOPS,
  ATTR_REQUEST_PREFILL_TOKENS,
  ATTR_STEP_DECODE_FLOPS,
  ATTR_STEP_DECODE_TOKENS,
  ATTR_STEP_DENSE_BYTES,
  ATTR_STEP_DENSE_EQUIVALENT_FLOPS,
  ATTR_STEP_EXPERT_BYTES,
  ATTR_STEP_EXPERT_BYTES_FP32,
  ATTR_STEP_EXPERT_BYTES_INT8,
  ATTR_STEP_EXPERTS_HIT,
  ATTR_STEP_FLOPS,
  ATTR_STEP_PREEMPTED,
  ATTR_STEP_PREFILL_FLOPS,
  ATTR_STEP_PREFILL_TOKENS,
  ATTR_STEP_SAMPLED,
  ATTR_STEP_SEQUENCES,
  ATTR_STEP_TOKENS,
  WORKER_LOCAL,
} from './names.ts';
import { RequestHandle, type RequestOutcome } from './request-handle.ts';
import { errorTypeOf, type RequestSpanStart, type SwitchyardTracer } from './request-tracer.ts';

/** Structurally the engine's `StepStats`. */
export interface StepStatsLike {
  readonly numSequences: number;
  readonly numBatchedTokens: number;
  readonly numSampled: number;
  readonly numPreempted: number;
}

export interface EngineTelemetryOptions {
  readonly config: ModelConfig;
  /** The engine's expert dtype (`fp32` | `int8`). */
  readonly expertDtype: 'fp32' | 'int8';
  /** Worker hosting (layer, expert) for per-worker attribution (primary replica); absent = in process. */
  readonly workerOf?: (layer: number, expert: number) => number;
  /** A worker index's label on metrics (its address); absent = the index. */
  readonly workerName?: (workerIndex: number) => string;
  readonly now?: () => number;
}

/** What EngineTelemetry needs of a started Telemetry (tests may pass their own). */
export interface TelemetryParts {
  readonly tracer: SwitchyardTracer;
  readonly metrics: SwitchyardMetrics;
}

export function expertFormatOf(dtype: 'fp32' | 'int8'): ExpertWeightFormat {
  return dtype === 'fp32' ? 'f32' : 'int8';
}

/**
 * Telemetry of one engine: the accounting observer (plug `onRouted` into `createEngine`), step spans
 * (`traceStep` around `engine.step()`), request spans and metrics (`startRequest` per request).
 *
 * Invariant: `#live` holds exactly the requests started and not yet ended; the observer's per-token
 * reports reach the span of a live request with the same id (the engine's sequence id is the request id).
 */
export class EngineTelemetry {
  readonly accounting: AccountingObserver;
  readonly model: ComputeModel;
  readonly #parts: TelemetryParts;
  readonly #modelName: string;
  readonly #expertDtype: 'fp32' | 'int8';
  readonly #live = new Map<string, RequestHandle>();
  readonly #now: () => number;
  readonly #workerName: (workerIndex: number) => string;
  #workerOf: ((layer: number, expert: number) => number) | undefined;

  constructor(parts: TelemetryParts, options: EngineTelemetryOptions) {
    this.#parts = parts;
    this.#modelName = options.config.name;
    this.#expertDtype = options.expertDtype;
    this.#now = options.now ?? (() => performance.now());
    this.#workerOf = options.workerOf;
    this.#workerName = options.workerName ?? String;
    this.model = computeModelOf(options.config);
    this.accounting = new AccountingObserver({
      model: this.model,
      expertFormat: expertFormatOf(options.expertDtype),
      recordExperts: parts.tracer.detail === 'tokens',
      onToken: (token) => this.#onToken(token),
      ...(options.workerOf ? { workerOf: options.workerOf } : {}),
    });
  }

  /**
   * The engine's `onRouted` (`createEngine(model, { ..., onRouted })`). NOTE: a failure here is a
   * telemetry bug, reported through OpenTelemetry's diag logger; it must not fail the engine's step.
   */
  readonly onRouted = (layer: number, chunks: readonly ChunkLike[], routes: TokenRoutes): void => {
    try {
      this.accounting.observe(layer, chunks, routes);
    } catch (error) {
      diag.error('switchyard telemetry: compute accounting failed', error);
    }
  };

  /** Runs `engine.step()` in a step span, then records the step's accounting (spans and metrics). */
  async traceStep<T extends StepStatsLike>(run: () => Promise<T>): Promise<T> {
    let step: StepCompute | undefined;
    const take = (): StepCompute => (step ??= this.#endStep());
    try {
      const stats = await this.#parts.tracer.traceStep(run, (stats) =>
        stepAttributes(stats, take(), this.#expertDtype),
      );
      this.#parts.metrics.vllm.recordPreemptions(this.#modelName, stats.numPreempted);
      return stats;
    } catch (error) {
      this.accounting.discardPending();
      throw error;
    } finally {
      take();
    }
  }

  /** Starts a request's span and clock; end it with `onEvent` (final event) or `end`. */
  startRequest(start: RequestSpanStart): RequestHandle {
    this.#live.get(start.requestId)?.end({ error: new Error('superseded by a request with the same id') });
    const handle = new RequestHandle(this.#parts.tracer.startRequestSpan(start), start, this.#now, {
      finish: (h, outcome, endedAt) => this.#finishRequest(h, outcome, endedAt),
      interToken: (h, seconds) => this.#parts.metrics.vllm.recordInterToken(h.model, seconds),
      kv: (kv, h) => {
        this.#parts.metrics.recordKvFetch(kv);
        h.span.setAttributes({ [ATTR_KV_REMOTE_FLOPS_SAVED]: prefillFlops(this.model, kv.fetchedTokens) });
      },
    });
    this.#live.set(start.requestId, handle);
    return handle;
  }

  /** Gauge sources (engine.numRunning, KV usage, queue depth). */
  observeEngine(gauges: EngineGauges): void {
    this.#parts.metrics.observeEngine(gauges);
  }

  setWorkerOf(workerOf: ((layer: number, expert: number) => number) | undefined): void {
    this.#workerOf = workerOf;
    this.accounting.setWorkerOf(workerOf);
  }

  #finishRequest(handle: RequestHandle, outcome: RequestOutcome, endedAt: number): void {
    if (this.#live.get(handle.requestId) === handle) this.#live.delete(handle.requestId);
    const compute = this.accounting.takeRequest(handle.requestId);
    const usage = outcome.usage ?? { promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 };
    const error = outcome.error ?? (outcome.finishReason === 'error' ? new Error('request failed') : undefined);
    const prefixFlopsSaved = prefillFlops(this.model, usage.cachedPromptTokens);
    const attributes: Attributes = {
      [ATTR_GEN_AI_RESPONSE_MODEL]: this.#modelName,
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: usage.promptTokens,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: usage.completionTokens,
      [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: usage.cachedPromptTokens,
      [ATTR_PREFIX_CACHE_FLOPS_SAVED]: prefixFlopsSaved,
      ...(outcome.finishReason ? { [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: [outcome.finishReason] } : {}),
      ...(compute
        ? {
            [ATTR_REQUEST_COMPUTED_TOKENS]: compute.numTokens,
            [ATTR_REQUEST_PREFILL_TOKENS]: compute.numPrefillTokens,
            [ATTR_REQUEST_DECODE_TOKENS]: compute.numDecodeTokens,
            [ATTR_REQUEST_ACTIVE_PARAMS]: compute.activeParams,
            [ATTR_REQUEST_ACTIVE_PARAMS_PER_TOKEN]:
              compute.numTokens > 0 ? compute.activeParams / compute.numTokens : 0,
            [ATTR_REQUEST_FLOPS]: compute.flops,
            [ATTR_REQUEST_PREFILL_FLOPS]: compute.prefillFlops,
            [ATTR_REQUEST_DECODE_FLOPS]: compute.decodeFlops,
            [ATTR_REQUEST_DENSE_EQUIVALENT_FLOPS]: compute.denseEquivalentFlops,
            [ATTR_REQUEST_EXPERT_ACTIVATIONS]: compute.expertActivations,
            [ATTR_REQUEST_EXPERTS_HIT]: compute.expertsHit,
          }
        : {}),
    };
    handle.span.end(attributes, error);
    const durationS = (endedAt - handle.startedAt) / 1000;
    const first = handle.firstTokenAt;
    this.#parts.metrics.recordRequest({
      operation: handle.operation,
      model: handle.model,
      inputTokens: usage.promptTokens,
      outputTokens: usage.completionTokens,
      cachedInputTokens: usage.cachedPromptTokens,
      durationS,
      ...(first !== undefined ? { timeToFirstTokenS: (first - handle.startedAt) / 1000 } : {}),
      ...(first !== undefined && usage.completionTokens > 1
        ? { timePerOutputTokenS: (endedAt - first) / 1000 / (usage.completionTokens - 1) }
        : {}),
      ...(error ? { errorType: errorTypeOf(error) } : {}),
      ...(outcome.finishReason !== undefined ? { finishReason: outcome.finishReason } : {}),
      ...(handle.scheduledAt !== undefined ? { queueTimeS: (handle.scheduledAt - handle.startedAt) / 1000 } : {}),
      prefixFlopsSaved,
    });
  }

  #onToken(token: TokenCompute): void {
    this.#parts.metrics.recordToken(this.#modelName, token.activeParams, token.flops, token.denseEquivalentFlops);
    const handle = this.#live.get(token.seqId);
    handle?.markScheduled();
    handle?.span.addToken(token);
  }

  #endStep(): StepCompute {
    const step = this.accounting.takeStep();
    const workerOf = this.#workerOf;
    this.#parts.metrics.recordStep(
      this.#modelName,
      step,
      workerOf &&
        ((layer, expert) => {
          const index = workerOf(layer, expert);
          return index < 0 ? WORKER_LOCAL : this.#workerName(index);
        }),
    );
    return step;
  }
}

function stepAttributes(stats: StepStatsLike, step: StepCompute, expertDtype: string): Attributes {
  return {
    [ATTR_STEP_SEQUENCES]: stats.numSequences,
    [ATTR_STEP_TOKENS]: step.numTokens,
    [ATTR_STEP_PREFILL_TOKENS]: step.numPrefillTokens,
    [ATTR_STEP_DECODE_TOKENS]: step.numDecodeTokens,
    [ATTR_STEP_SAMPLED]: stats.numSampled,
    [ATTR_STEP_PREEMPTED]: stats.numPreempted,
    [ATTR_STEP_FLOPS]: step.flops,
    [ATTR_STEP_PREFILL_FLOPS]: step.prefillFlops,
    [ATTR_STEP_DECODE_FLOPS]: step.decodeFlops,
    [ATTR_STEP_DENSE_EQUIVALENT_FLOPS]: step.denseEquivalentFlops,
    [ATTR_STEP_EXPERTS_HIT]: step.expertsHit,
    [ATTR_STEP_EXPERT_BYTES]: step.expertBytes,
    [ATTR_STEP_EXPERT_BYTES_FP32]: step.expertBytesFp32,
    [ATTR_STEP_EXPERT_BYTES_INT8]: step.expertBytesInt8,
    [ATTR_STEP_DENSE_BYTES]: step.denseBytes,
    [ATTR_EXPERT_DTYPE]: expertDtype,
  };
}
