import {
  LocalExpertExecutor,
  type AttentionKernel,
  type AttentionOutput,
  type AttentionSlot,
  type BatchedAttentionKernel,
  type DenseKernels,
  type ExpertKernel,
  type RowKernel,
} from '@switchyard/engine';
import { tensorNames, type ModelConfig, type WeightMap } from '@switchyard/model';
import { buildAttentionGraph } from './attention-graph.ts';
import { buildBatchedAttentionGraph } from './attention-batch-graph.ts';
import { buildExpertGraph } from './expert-graph.ts';
import type { WeightFormat } from './layers.ts';
import { buildLmHeadGraph } from './lm-head-graph.ts';
import { createSession, type OnnxSession, type SessionOptions } from './session.ts';

export type ExpertDtype = 'fp32' | 'int8';

/**
 * The weight format the engine runs a dtype in, for experts and (`--dtype int8`) attention and LM head.
 * NOTE: `int8` runs as MatMulNBits (8 bits, int8 activations per row and K block), not as `int8-rows`
 * (MatMulInteger): the same weight codes, and faster at the few rows decode runs with weights read from
 * memory (`npm run bench:kernels`); the engine figures and the quality trade are in docs/architecture.md
 * §"int8", the kernel figures in layers.ts.
 */
export function weightFormatOf(dtype: ExpertDtype): WeightFormat {
  return dtype === 'int8' ? 'int8' : 'fp32';
}

export interface KernelOptions {
  readonly session?: SessionOptions;
  /** Format of attention projections and the LM head (`int8` quantises them too; default fp32). */
  readonly denseFormat?: WeightFormat;
}

/**
 * Adapts a session with input `x` [N, H] and one float output to a RowKernel. With `into`, onnxruntime
 * writes the output there (it must be [N, H], which holds for expert graphs only).
 */
export function rowKernel(session: OnnxSession, hiddenSize: number, output: string): RowKernel & ExpertKernel {
  return {
    async run(x, numRows, into?: Float32Array) {
      const dims = [numRows, hiddenSize];
      const res = await session.run(
        { x: { data: x, dims } },
        into ? { outputs: { [output]: { data: into, dims } } } : {},
      );
      const y = res[output];
      if (!y) throw new Error(`internal: graph has no output ${output}`);
      return y.data;
    },
    release: () => session.release(),
  };
}

function attentionOutputs(res: Record<string, { data: Float32Array }>): AttentionOutput {
  const need = (name: string): Float32Array => {
    const t = res[name];
    if (!t) throw new Error(`internal: attention graph has no output ${name}`);
    return t.data;
  };
  const shared = res['shared_gate'];
  return {
    h: need('h'),
    moeIn: need('moe_in'),
    routerLogits: need('router_logits'),
    newK: need('new_k'),
    newV: need('new_v'),
    ...(shared ? { sharedGate: shared.data } : {}),
  };
}

/**
 * Batched attention over sessions built lazily per batch-size bucket (powers of two), padding with
 * empty slots. NOTE: each bucket's session holds its own copy of the layer's attention weights; a
 * handful of buckets is the price of reading those weights once per step instead of once per sequence.
 */
function batchedAttentionKernel(
  open: (numSequences: number) => Promise<OnnxSession>,
  config: ModelConfig,
): BatchedAttentionKernel & { release(): Promise<void> } {
  const { hiddenSize, numKvHeads, headDim } = config;
  const kvWidth = numKvHeads * headDim;
  const buckets = new Map<number, Promise<OnnxSession>>();
  const empty = new Float32Array(0);
  return {
    async run(x, slots) {
      const bucket = 2 ** Math.ceil(Math.log2(Math.max(1, slots.length)));
      let session = buckets.get(bucket);
      if (!session) {
        session = open(bucket);
        buckets.set(bucket, session);
      }
      const numRows = slots.reduce((n, s) => n + s.numTokens, 0);
      const positions = new BigInt64Array(numRows);
      const rowSplits = new BigInt64Array(bucket + 1);
      const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = {
        x: { data: x, dims: [numRows, hiddenSize] },
        positions: { data: positions, dims: [numRows] },
        row_splits: { data: rowSplits, dims: [bucket + 1] },
      };
      let row = 0;
      for (let b = 0; b < bucket; b++) {
        const slot: AttentionSlot | undefined = slots[b];
        const numPast = slot?.start ?? 0;
        for (let t = 0; t < (slot?.numTokens ?? 0); t++) positions[row + t] = BigInt(numPast + t);
        row += slot?.numTokens ?? 0;
        rowSplits[b + 1] = BigInt(row);
        const dims = [numPast, numKvHeads, headDim];
        feeds[`past_k_${b}`] = { data: slot ? slot.pastK.subarray(0, numPast * kvWidth) : empty, dims };
        feeds[`past_v_${b}`] = { data: slot ? slot.pastV.subarray(0, numPast * kvWidth) : empty, dims };
      }
      return attentionOutputs(await (await session).run(feeds));
    },
    async release() {
      await Promise.all([...buckets.values()].map(async (s) => (await s).release()));
    },
  };
}

function attentionKernel(session: OnnxSession, config: ModelConfig): AttentionKernel {
  const { hiddenSize, numKvHeads, headDim } = config;
  const kvWidth = numKvHeads * headDim;
  return {
    async run(x, numTokens, start, pastK, pastV, numPast): Promise<AttentionOutput> {
      const positions = new BigInt64Array(numTokens);
      for (let i = 0; i < numTokens; i++) positions[i] = BigInt(start + i);
      const pastDims = [numPast, numKvHeads, headDim];
      const res = await session.run({
        x: { data: x, dims: [numTokens, hiddenSize] },
        positions: { data: positions, dims: [numTokens] },
        past_k: { data: pastK.subarray(0, numPast * kvWidth), dims: pastDims },
        past_v: { data: pastV.subarray(0, numPast * kvWidth), dims: pastDims },
      });
      return attentionOutputs(res);
    },
  };
}

/** Builds and opens the dense graphs: attention (+ router) per layer, shared experts, LM head. */
export async function createDenseKernels(
  config: ModelConfig,
  weights: WeightMap,
  options: KernelOptions = {},
): Promise<DenseKernels> {
  const format = options.denseFormat ?? 'fp32';
  const open = (bytes: Uint8Array) => createSession(bytes, options.session ?? {});
  const sessions: OnnxSession[] = [];
  const track = async (bytes: Uint8Array) => {
    const s = await open(bytes);
    sessions.push(s);
    return s;
  };
  const attention: AttentionKernel[] = [];
  const batchedAttention: (BatchedAttentionKernel & { release(): Promise<void> })[] = [];
  const sharedExperts: RowKernel[] = [];
  const selectionBias: (Float32Array | undefined)[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    attention.push(
      attentionKernel(await track(buildAttentionGraph(config, weights, layer, { projectionFormat: format })), config),
    );
    batchedAttention.push(
      batchedAttentionKernel(
        (n) => open(buildBatchedAttentionGraph(config, weights, layer, n, { projectionFormat: format })),
        config,
      ),
    );
    if (config.sharedExpertFfnSize > 0) {
      sharedExperts.push(
        rowKernel(await track(buildExpertGraph(config, weights, layer, 'shared')), config.hiddenSize, 'y'),
      );
    }
    selectionBias.push(config.selectionBias ? weights.get(tensorNames.selectionBias(layer))?.data : undefined);
  }
  const lmHead = rowKernel(await track(buildLmHeadGraph(config, weights, { format })), config.hiddenSize, 'logits');
  const embedding = weights.get(tensorNames.embedTokens)?.data;
  if (!embedding) throw new Error(`weights have no ${tensorNames.embedTokens}`);
  return {
    attention,
    batchedAttention,
    sharedExperts,
    lmHead,
    embedding,
    selectionBias,
    release: async () => {
      await Promise.all([...sessions.map((s) => s.release()), ...batchedAttention.map((k) => k.release())]);
    },
  };
}

/** Opens one session per hosted expert; `hosted` lists (layer, expert) pairs, all experts by default. */
export async function createLocalExpertExecutor(
  config: ModelConfig,
  weights: WeightMap,
  dtype: ExpertDtype,
  options: KernelOptions = {},
  hosted: readonly (readonly [number, number])[] = allExperts(config),
  onProgress?: (done: number, total: number) => void,
): Promise<LocalExpertExecutor> {
  const kernels = new Map<string, ExpertKernel>();
  let done = 0;
  for (const [layer, expert] of hosted) {
    kernels.set(
      LocalExpertExecutor.key(layer, expert),
      await openExpertKernel(config, weights, layer, expert, dtype, options.session),
    );
    onProgress?.(++done, hosted.length);
  }
  return new LocalExpertExecutor(kernels, config.numExperts, config.hiddenSize);
}

/** An expert kernel over a graph built elsewhere (`buildExpertGraph`'s bytes, e.g. from another thread). */
export async function openExpertKernelFromGraph(
  graph: Uint8Array,
  hiddenSize: number,
  session: SessionOptions = {},
): Promise<ExpertKernel> {
  return rowKernel(await createSession(graph, session), hiddenSize, 'y');
}

/** One routed expert's SwiGLU graph in its own session (`weights` needs only that expert's tensors). */
export async function openExpertKernel(
  config: ModelConfig,
  weights: WeightMap,
  layer: number,
  expert: number,
  dtype: ExpertDtype,
  session: SessionOptions = {},
): Promise<ExpertKernel> {
  const bytes = buildExpertGraph(config, weights, layer, expert, { format: weightFormatOf(dtype) });
  return rowKernel(await createSession(bytes, session), config.hiddenSize, 'y');
}

export function allExperts(config: ModelConfig): [number, number][] {
  const list: [number, number][] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (let e = 0; e < config.numExperts; e++) list.push([layer, e]);
  }
  return list;
}
