import { BlockPool, KvCacheManager } from '@switchyard/kv-cache';
import type { LoadedModel, ModelConfig, SessionOptions } from '@switchyard/model';
import { createByteTokenizer, type Tokenizer } from './tokenizer.ts';
import { loadHfTokenizer } from './hf-tokenizer.ts';
import { Engine } from './engine.ts';
import type { ExpertExecutor } from './expert-executor.ts';
import { MoeModelRunner, type RoutingObserver } from './moe-model-runner.ts';
import { createDenseKernels, createLocalExpertExecutor, type ExpertDtype } from './onnx-kernels.ts';
import { PrefixHasher } from './prefix-hasher.ts';
import type { SchedulerConfig } from './scheduler.ts';
import type { ScheduledChunk } from './step-plan.ts';

export interface EngineOptions {
  readonly expertDtype: ExpertDtype;
  /** Attention projections and the LM head in int8 too (default fp32). */
  readonly denseDtype: 'fp32' | 'int8';
  readonly blockSize: number;
  /** KV cache size in blocks; by default enough for maxRunningSequences full contexts, capped at 1 GiB. */
  readonly numKvBlocks?: number;
  readonly scheduler: SchedulerConfig;
  readonly session?: SessionOptions;
  readonly onRouted?: RoutingObserver;
  /** Micro-batches per step (2 overlaps attention with expert dispatch); default 1. */
  readonly microBatches?: number;
  readonly onFinalHidden?: (chunks: readonly ScheduledChunk[], hidden: Float32Array) => void;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = Object.freeze({
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  blockSize: 16,
  scheduler: Object.freeze({ maxBatchedTokens: 2048, maxRunningSequences: 64 }),
});

/** What the engine needs of a model (a loaded model directory, or weights made in memory). */
export type EngineModel = Pick<LoadedModel, 'config' | 'weights' | 'weightsDigest'> & { readonly tokenizerPath?: string | undefined };

export interface EngineBundle {
  readonly engine: Engine;
  readonly runner: MoeModelRunner;
  readonly kv: KvCacheManager;
  readonly tokenizer: Tokenizer;
  readonly config: ModelConfig;
  close(): Promise<void>;
}

/** KV bytes per token: 2 × layers × kvHeads × headDim × 4 (fp32). */
export function kvBytesPerToken(config: ModelConfig): number {
  return 2 * config.numLayers * config.numKvHeads * config.headDim * 4;
}

function defaultNumBlocks(config: ModelConfig, options: EngineOptions): number {
  const wanted = Math.ceil(config.maxContext / options.blockSize) * options.scheduler.maxRunningSequences;
  const cap = Math.floor(2 ** 30 / (kvBytesPerToken(config) * options.blockSize));
  return Math.max(Math.ceil(config.maxContext / options.blockSize), Math.min(wanted, cap));
}

/**
 * Composes an engine over `experts` (in process when omitted: the monolithic engine). The dense graphs
 * always run here.
 */
export async function createEngine(model: EngineModel, options: EngineOptions = DEFAULT_ENGINE_OPTIONS, experts?: ExpertExecutor): Promise<EngineBundle> {
  const { config, weights } = model;
  const kernelOptions = { ...(options.session ? { session: options.session } : {}), denseFormat: options.denseDtype };
  const dense = await createDenseKernels(config, weights, kernelOptions);
  const executor = experts ?? (await createLocalExpertExecutor(config, weights, options.expertDtype, kernelOptions));
  const pool = new BlockPool({ numBlocks: options.numKvBlocks ?? defaultNumBlocks(config, options), blockSize: options.blockSize });
  const kv = new KvCacheManager(pool);
  const runner = new MoeModelRunner({
    config,
    dense,
    experts: executor,
    blockSize: options.blockSize,
    blockTableOf: (id) => kv.blockTable(id),
    ...(options.onRouted ? { onRouted: options.onRouted } : {}),
    microBatches: options.microBatches ?? 1,
    ...(options.onFinalHidden ? { onFinalHidden: options.onFinalHidden } : {}),
  });
  const hasher = new PrefixHasher({ modelId: config.name, weightsDigestHex: model.weightsDigest, kvDtype: 'f32', blockSize: options.blockSize });
  // An imported model brings its own tokenizer.json; models with random weights use the byte tokenizer.
  const tokenizer = model.tokenizerPath ? await loadHfTokenizer(model.tokenizerPath, config) : createByteTokenizer();
  const engine = new Engine({
    runner,
    kv,
    hasher,
    tokenizer,
    scheduler: options.scheduler,
    maxContext: config.maxContext,
    blockSize: options.blockSize,
    numKvBlocks: pool.numBlocks,
    eosTokenId: config.eosTokenId,
  });
  return { engine, runner, kv, tokenizer, config, close: () => runner.close() };
}
