import {
  InvalidArgumentError,
  NotFoundError,
  validateRoutes,
  type ExpertRef,
  type ExpertTokens,
  type ExpertServiceHandler,
  type PlacementChange,
  type PlacementState,
  type RunRequest,
  type RunResult,
  type WorkerDescription,
} from '@switchyard/rpc';
import { LocalExpertExecutor, type ExpertKernel } from '@switchyard/engine';
import { openExpertKernel, openExpertKernelFromGraph, type ExpertDtype, type SessionOptions } from '@switchyard/onnx';
import type { SwitchyardTracer } from '@switchyard/telemetry';
import type { ExpertSource } from './expert-source.ts';
import type { GraphBuilder } from './graph-thread.ts';

export interface ExpertWorkerOptions {
  readonly workerId: string;
  readonly source: ExpertSource;
  readonly dtype: ExpertDtype;
  readonly session?: SessionOptions;
  /** Largest number of tokens one Run message may carry. */
  readonly maxTokensPerRun: number;
  /** Worker spans, joined to the gateway's dispatch span through the message's traceparent. */
  readonly tracer?: SwitchyardTracer;
  /**
   * Builds expert graphs off this thread (`OffThreadGraphBuilder`, over the same model as `source`);
   * without it, loads read and build on this thread. Closed with the worker.
   */
  readonly graphs?: GraphBuilder;
}

/**
 * The expert worker's state: the experts it hosts (one onnxruntime session each), how many tokens
 * each has served, and the placement revision it last applied. Runs go through a LocalExpertExecutor
 * over the hosted kernels, so a worker computes exactly what the monolithic engine does for the same
 * experts.
 *
 * Invariant: a kernel is released only when no Run is in flight (unloaded kernels wait in `retired`),
 * so an unload never pulls a session from under a running request.
 */
export class ExpertWorker implements ExpertServiceHandler {
  readonly #opts: ExpertWorkerOptions;
  readonly #kernels = new Map<string, ExpertKernel>();
  readonly #executor: LocalExpertExecutor;
  readonly #tokensPerExpert = new Map<string, number>();
  /** Loads under way, by expert key: concurrent loads of one expert share one kernel. */
  readonly #loading = new Map<string, Promise<void>>();
  #retired: ExpertKernel[] = [];
  #closed = false;
  #inFlight = 0;
  #revision = 0;
  #numRuns = 0;

  constructor(opts: ExpertWorkerOptions) {
    this.#opts = opts;
    const { config } = opts.source;
    this.#executor = new LocalExpertExecutor(this.#kernels, config.numExperts, config.hiddenSize);
  }

  get numRuns(): number {
    return this.#numRuns;
  }

  /** Tokens served per hosted expert, keyed `layer:expert`. */
  get tokensPerExpert(): ReadonlyMap<string, number> {
    return this.#tokensPerExpert;
  }

  hosted(): ExpertRef[] {
    return [...this.#kernels.keys()]
      .map((key) => {
        const [layer, expertId] = key.split(':').map(Number);
        return { layer: layer ?? 0, expertId: expertId ?? 0 };
      })
      .sort((a, b) => a.layer - b.layer || a.expertId - b.expertId);
  }

  readonly run = async (request: RunRequest): Promise<RunResult> => {
    const span = this.#opts.tracer?.startWorkerSpan(
      request.traceparent,
      request.layer,
      request.routes.numTokens,
      this.#opts.workerId,
    );
    try {
      this.#validate(request);
    } catch (error) {
      span?.end(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
    this.#inFlight++;
    try {
      const result = await this.#executor.runLayer(request.layer, request.hidden, request.routes);
      this.#numRuns++;
      this.#count(request);
      span?.end();
      return { output: result.output };
    } catch (error) {
      span?.end(error instanceof Error ? error : new Error(String(error)));
      throw error;
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0 && this.#retired.length > 0) await this.#releaseRetired();
    }
  };

  readonly load = async (change: PlacementChange): Promise<PlacementState> => {
    this.#checkRefs(change.experts);
    for (const { layer, expertId } of change.experts) await this.#loadOne(layer, expertId);
    this.#revision = Math.max(this.#revision, change.placementRevision);
    return this.#state();
  };

  /** Opens one expert's kernel, once: a second load of the same expert waits for the first. */
  async #loadOne(layer: number, expertId: number): Promise<void> {
    const key = LocalExpertExecutor.key(layer, expertId);
    if (this.#kernels.has(key)) return;
    let pending = this.#loading.get(key);
    if (!pending) {
      pending = (async () => {
        const { graphs, source, session } = this.#opts;
        // With a builder thread, only opening the session happens on this (serving) thread.
        const kernel = graphs
          ? await openExpertKernelFromGraph(await graphs.build(layer, expertId), source.config.hiddenSize, session)
          : await openExpertKernel(
              source.config,
              await source.readExpert(layer, expertId),
              layer,
              expertId,
              this.#opts.dtype,
              session,
            );
        if (this.#closed) await kernel.release();
        else this.#kernels.set(key, kernel);
      })().finally(() => this.#loading.delete(key));
      this.#loading.set(key, pending);
    }
    await pending;
  }

  readonly unload = async (change: PlacementChange): Promise<PlacementState> => {
    this.#checkRefs(change.experts);
    for (const { layer, expertId } of change.experts) {
      const key = LocalExpertExecutor.key(layer, expertId);
      const kernel = this.#kernels.get(key);
      if (!kernel) continue;
      this.#kernels.delete(key);
      this.#retired.push(kernel);
    }
    this.#revision = Math.max(this.#revision, change.placementRevision);
    if (this.#inFlight === 0) await this.#releaseRetired();
    return this.#state();
  };

  readonly describe = async (): Promise<WorkerDescription> => ({
    workerId: this.#opts.workerId,
    hosted: this.hosted(),
    dtype: this.#opts.dtype === 'int8' ? 'DTYPE_I8' : 'DTYPE_F32',
    executionProvider: this.#opts.session?.executionProvider ?? 'cpu',
    modelName: this.#opts.source.modelName,
    hiddenSize: this.#opts.source.config.hiddenSize,
    placementRevision: this.#revision,
    weightsDigest: this.#opts.source.weightsDigest ?? '',
    tokensServed: this.#tokensServed(),
  });

  /** `tokensPerExpert` as the Describe answer carries it, sorted by (layer, expert). */
  #tokensServed(): ExpertTokens[] {
    return [...this.#tokensPerExpert]
      .map(([key, tokens]) => {
        const [layer, expertId] = key.split(':').map(Number);
        return { layer: layer ?? 0, expertId: expertId ?? 0, tokens };
      })
      .sort((a, b) => a.layer - b.layer || a.expertId - b.expertId);
  }

  /** Unhosts everything; kernels of runs in flight are released when the last run ends. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled(this.#loading.values());
    this.#retired.push(...this.#kernels.values());
    this.#kernels.clear();
    if (this.#inFlight === 0) await this.#releaseRetired();
    await this.#opts.source.close();
    await this.#opts.graphs?.close();
  }

  #state(): PlacementState {
    return { hosted: this.hosted(), placementRevision: this.#revision };
  }

  /** Rejects, as INVALID_ARGUMENT, anything this worker cannot compute exactly. */
  #validate(request: RunRequest): void {
    const { config } = this.#opts.source;
    if (!Number.isInteger(request.layer) || request.layer < 0 || request.layer >= config.numLayers) {
      throw new InvalidArgumentError(`layer ${request.layer} does not exist (the model has ${config.numLayers})`);
    }
    if (request.hiddenSize !== config.hiddenSize) {
      throw new InvalidArgumentError(
        `hidden size ${request.hiddenSize} does not match the model's ${config.hiddenSize}`,
      );
    }
    if (request.routes.numTokens > this.#opts.maxTokensPerRun) {
      throw new InvalidArgumentError(
        `${request.routes.numTokens} tokens exceed the limit of ${this.#opts.maxTokensPerRun} per message`,
      );
    }
    validateRoutes(request.routes);
    if (request.hidden.length !== request.routes.numTokens * config.hiddenSize) {
      throw new InvalidArgumentError(
        `hidden holds ${request.hidden.length} floats, expected ${request.routes.numTokens} × ${config.hiddenSize}`,
      );
    }
    const { offsets, numTokens, weights } = request.routes;
    for (let t = 0; t < numTokens; t++) {
      const numPairs = (offsets[t + 1] ?? 0) - (offsets[t] ?? 0);
      if (numPairs > config.numExpertsPerToken) {
        // A small message must not buy more compute than the model's routing can ask for.
        throw new InvalidArgumentError(
          `token ${t} has ${numPairs} (expert, weight) pairs; the model routes a token to ${config.numExpertsPerToken}`,
        );
      }
    }
    const badWeight = firstNonFinite(weights);
    if (badWeight >= 0) throw new InvalidArgumentError(`routes.weights[${badWeight}] is not finite`);
    const badHidden = firstNonFinite(request.hidden);
    if (badHidden >= 0) {
      throw new InvalidArgumentError(
        `hidden[${Math.floor(badHidden / config.hiddenSize)}, ${badHidden % config.hiddenSize}] is not finite`,
      );
    }
    for (const expertId of request.routes.expertIds) {
      if (!Number.isInteger(expertId) || expertId < 0 || expertId >= config.numExperts) {
        throw new InvalidArgumentError(
          `expert ${expertId} does not exist (the model has ${config.numExperts} per layer)`,
        );
      }
      if (!this.#executor.hosts(request.layer, expertId)) {
        // NOT_FOUND, not INVALID_ARGUMENT: the message is fine, this worker lacks the expert (it may have
        // restarted empty); the gateway reloads it on this code.
        throw new NotFoundError(
          `expert ${expertId} of layer ${request.layer} is not hosted by worker ${this.#opts.workerId}`,
        );
      }
    }
  }

  #checkRefs(refs: readonly ExpertRef[]): void {
    const { numLayers, numExperts } = this.#opts.source.config;
    for (const { layer, expertId } of refs) {
      if (
        !Number.isInteger(layer) ||
        !Number.isInteger(expertId) ||
        layer < 0 ||
        layer >= numLayers ||
        expertId < 0 ||
        expertId >= numExperts
      ) {
        throw new InvalidArgumentError(
          `no expert ${expertId} in layer ${layer} (the model has ${numLayers} layers of ${numExperts} experts)`,
        );
      }
    }
  }

  #count(request: RunRequest): void {
    for (const expertId of request.routes.expertIds) {
      const key = LocalExpertExecutor.key(request.layer, expertId);
      this.#tokensPerExpert.set(key, (this.#tokensPerExpert.get(key) ?? 0) + 1);
    }
  }

  async #releaseRetired(): Promise<void> {
    const retired = this.#retired;
    this.#retired = [];
    await Promise.all(retired.map((k) => k.release()));
  }
}

/**
 * Index of the first NaN or ±Infinity, or -1. A plain loop: on a 32 × 2048 message it takes ≈ 60 µs where
 * `findIndex` with a callback took ≈ 390 µs (this check runs on every Run message).
 */
function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? 0;
    // v − v is 0 for every finite v, NaN for NaN and ±Infinity.
    if (v - v !== 0) return i;
  }
  return -1;
}
