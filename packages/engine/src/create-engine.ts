import { BlockPool, KvCacheManager, type BlockPoolEvent } from '@switchyard/kv-cache';
import type { LoadedModel, ModelConfig } from '@switchyard/model';
import { createByteTokenizer, type Tokenizer } from './tokenizer.ts';
import { loadHfTokenizer } from './hf-tokenizer.ts';
import { Engine } from './engine.ts';
import type { DenseKernels } from './dense-kernels.ts';
import type { ExpertExecutor } from './expert-executor.ts';
import { MoeModelRunner, type RoutingObserver } from './moe-model-runner.ts';
import { PrefixHasher } from './prefix-hasher.ts';
import { KvPageAccess } from './page-access.ts';
import type { SchedulerConfig } from './scheduler.ts';
import type { ScheduledChunk } from './step-plan.ts';

/** What the engine itself needs to know, whatever runs its kernels. */
export interface EngineCoreOptions {
  readonly blockSize: number;
  /** KV cache size in blocks; by default enough for maxRunningSequences full contexts, capped at 1 GiB. */
  readonly numKvBlocks?: number;
  readonly scheduler: SchedulerConfig;
  readonly onRouted?: RoutingObserver;
  /** Micro-batches per step (2 overlaps attention with expert dispatch); default 1. */
  readonly microBatches?: number;
  readonly onFinalHidden?: (chunks: readonly ScheduledChunk[], hidden: Float32Array) => void;
  /** Told, synchronously, each block hash the cache stores or removes (feeds the cluster's KV events). */
  readonly onKvEvent?: (event: BlockPoolEvent) => void;
}

/** What the engine needs of a model (a loaded model directory, or weights made in memory). */
export type EngineModel = Pick<LoadedModel, 'config' | 'weights' | 'weightsDigest'> & {
  readonly tokenizerPath?: string | undefined;
};

export interface EngineBundle {
  readonly engine: Engine;
  readonly runner: MoeModelRunner;
  readonly kv: KvCacheManager;
  readonly pool: BlockPool;
  readonly hasher: PrefixHasher;
  /** The KV pages as other nodes see them (peer fetch, page store offload). */
  readonly pages: KvPageAccess;
  readonly tokenizer: Tokenizer;
  readonly config: ModelConfig;
  close(): Promise<void>;
}

/** The kernels an engine runs on: the dense part here, the experts in process or on workers. */
export interface EngineKernels {
  readonly dense: DenseKernels;
  readonly experts: ExpertExecutor;
}

/** KV bytes per token: 2 × layers × kvHeads × headDim × 4 (fp32). */
export function kvBytesPerToken(config: ModelConfig): number {
  return 2 * config.numLayers * config.numKvHeads * config.headDim * 4;
}

function defaultNumBlocks(config: ModelConfig, options: EngineCoreOptions): number {
  const wanted = Math.ceil(config.maxContext / options.blockSize) * options.scheduler.maxRunningSequences;
  const cap = Math.floor(2 ** 30 / (kvBytesPerToken(config) * options.blockSize));
  return Math.max(Math.ceil(config.maxContext / options.blockSize), Math.min(wanted, cap));
}

/**
 * Composes an engine over kernels that are already open: KV pool and cache, model runner, prefix
 * hasher, tokenizer. `close()` releases the kernels. The onnx package's `createEngine` opens the
 * onnxruntime kernels and calls this.
 */
export async function assembleEngine(
  model: EngineModel,
  options: EngineCoreOptions,
  kernels: EngineKernels,
): Promise<EngineBundle> {
  const { config } = model;
  // NOTE: late-bound: the page access needs the runner's page store, which needs the pool's block tables.
  const late: { pages?: KvPageAccess } = {};
  const onKvEvent = options.onKvEvent;
  const pool = new BlockPool({
    numBlocks: options.numKvBlocks ?? defaultNumBlocks(config, options),
    blockSize: options.blockSize,
    onEvent: (event) => {
      onKvEvent?.(event);
      late.pages?.handlePoolEvent(event);
    },
  });
  const kv = new KvCacheManager(pool);
  const runner = new MoeModelRunner({
    config,
    dense: kernels.dense,
    experts: kernels.experts,
    blockSize: options.blockSize,
    blockTableOf: (id) => kv.blockTable(id),
    ...(options.onRouted ? { onRouted: options.onRouted } : {}),
    microBatches: options.microBatches ?? 1,
    ...(options.onFinalHidden ? { onFinalHidden: options.onFinalHidden } : {}),
  });
  const pages = new KvPageAccess(pool, runner.pages);
  late.pages = pages;
  const hasher = new PrefixHasher({
    modelId: config.name,
    weightsDigestHex: model.weightsDigest,
    kvDtype: 'f32',
    blockSize: options.blockSize,
  });
  // An imported model brings its own tokenizer.json; models with random weights use the byte tokenizer.
  const tokenizer = model.tokenizerPath ? await loadHfTokenizer(model.tokenizerPath, config) : createByteTokenizer();
  const engine = new Engine({
    runner,
    kv,
    hasher,
    tokenizer,
    scheduler: options.scheduler,
    maxContext: config.maxContext,
    vocabSize: config.vocabSize,
    blockSize: options.blockSize,
    numKvBlocks: pool.numBlocks,
    eosTokenId: config.eosTokenId,
  });
  return { engine, runner, kv, pool, hasher, pages, tokenizer, config, close: () => runner.close() };
}
