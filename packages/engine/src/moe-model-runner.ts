import type { ModelConfig } from '@switchyard/model';
import { at, route, type RouterConfig, type TokenRoutes } from '@switchyard/routing';
import type { BatchedAttentionKernel, DenseKernels } from './dense-kernels.ts';
import type { ExpertExecutor } from './expert-executor.ts';
import { KvSlots } from './kv-slots.ts';
import type { ModelRunner } from './model-runner.ts';
import { PageStore } from './page-store.ts';
import type { Sequence } from './sequence.ts';
import type { ExecuteResult, ScheduledChunk, StepPlan } from './step-plan.ts';

/** Told of every layer's routing decision (telemetry and load accounting read it). */
export type RoutingObserver = (layer: number, chunks: readonly ScheduledChunk[], routes: TokenRoutes) => void;

export interface MoeModelRunnerOptions {
  readonly config: ModelConfig;
  readonly dense: DenseKernels;
  readonly experts: ExpertExecutor;
  readonly blockSize: number;
  /** The block table of a running sequence (from the KV cache manager). */
  readonly blockTableOf: (seqId: string) => readonly number[];
  readonly onRouted?: RoutingObserver;
  /**
   * Split each step's batch into this many micro-batches that run concurrently, so one runs attention
   * while the other waits on the experts (MegaScale-Infer's ping-pong). 1 = off.
   */
  readonly microBatches?: number;
  /** Told the final residual stream [rows, hidden] of each micro-batch, before the final norm (quality checks). */
  readonly onFinalHidden?: (chunks: readonly ScheduledChunk[], hidden: Float32Array) => void;
}

/** A step's batch: every chunk's rows concatenated, chunk i starting at row rowStart[i]. */
interface Batch {
  readonly chunks: readonly ScheduledChunk[];
  readonly rowStart: readonly number[];
  readonly numRows: number;
}

/**
 * Runs a step through the MoE decoder: per layer, attention for each sequence's chunk (reading its K/V
 * in place), routing of the whole batch, experts through the ExpertExecutor, combine; then the LM head
 * on the rows that sample. Working K/V live in KvSlots; full blocks are kept as pages.
 */
export class MoeModelRunner implements ModelRunner {
  readonly #opts: MoeModelRunnerOptions;
  readonly #router: RouterConfig;
  readonly #slots: KvSlots;
  readonly #pages: PageStore;
  readonly #hidden: number;
  readonly #kvWidth: number;

  constructor(opts: MoeModelRunnerOptions) {
    const { config } = opts;
    this.#opts = opts;
    this.#hidden = config.hiddenSize;
    this.#kvWidth = config.numKvHeads * config.headDim;
    this.#router = {
      numExperts: config.numExperts,
      topK: config.numExpertsPerToken,
      scoring: config.scoring,
      normTopKProb: config.normTopKProb,
      routedScalingFactor: config.routedScalingFactor,
    };
    this.#slots = new KvSlots(config.numLayers, this.#kvWidth, config.maxContext);
    this.#pages = new PageStore(config.numLayers, opts.blockSize, this.#kvWidth);
  }

  get pages(): PageStore {
    return this.#pages;
  }

  async execute(plan: StepPlan): Promise<ExecuteResult> {
    const failed = new Map<string, Error>();
    const logits = new Map<string, Float32Array>();
    const rowLogits = new Map<string, Float32Array>();
    const groups = splitMicroBatches(plan.chunks, this.#opts.microBatches ?? 1);
    const results = await Promise.all(groups.map((chunks) => this.#forward(chunks, failed)));
    for (const part of results) {
      for (const [id, row] of part.last) logits.set(id, row);
      for (const [id, rows] of part.rows) rowLogits.set(id, rows);
    }
    return { logits, rowLogits, failed };
  }

  /** One micro-batch through every layer and the LM head. */
  async #forward(chunks: readonly ScheduledChunk[], failed: Map<string, Error>): Promise<HeadLogits> {
    if (chunks.length === 0) return { last: new Map(), rows: new Map() };
    const batch = this.#prepare(chunks);
    let x = this.#embed(batch);
    for (let layer = 0; layer < this.#opts.config.numLayers; layer++) {
      x = await this.#runLayer(layer, batch, x, failed);
    }
    for (const chunk of batch.chunks) {
      const slot = this.#slots.get(chunk.seq.id);
      if (slot) slot.filled = chunk.start + chunk.count;
    }
    this.#opts.onFinalHidden?.(batch.chunks, x);
    return this.#headLogits(batch, x);
  }

  commitBlocks(seq: Sequence, blockIds: readonly number[], fromBlock: number, toBlock: number): void {
    const slot = this.#slots.get(seq.id);
    if (!slot) return;
    for (let b = fromBlock; b < toBlock; b++) {
      const blockId = blockIds[b];
      if (blockId !== undefined) this.#pages.write(blockId, b, slot.layers);
    }
  }

  release(seqId: string): void {
    this.#slots.release(seqId);
  }

  async close(): Promise<void> {
    await Promise.all([this.#opts.dense.release(), this.#opts.experts.close()]);
  }

  /** Releases the dense sessions but leaves the expert executor open (it may be shared). */
  async closeDense(): Promise<void> {
    await this.#opts.dense.release();
  }

  /** Reserves slots and restores prefix-cache hits from pages so every chunk starts at slot.filled. */
  #prepare(chunks: readonly ScheduledChunk[]): Batch {
    const rowStart: number[] = [];
    let numRows = 0;
    for (const chunk of chunks) {
      const slot = this.#slots.reserve(chunk.seq.id, chunk.start + chunk.count);
      if (slot.filled < chunk.start) this.#restoreFromPages(chunk.seq.id, slot.filled, chunk.start, slot.layers);
      slot.filled = chunk.start;
      rowStart.push(numRows);
      numRows += chunk.count;
    }
    return { chunks, rowStart, numRows };
  }

  #restoreFromPages(
    seqId: string,
    fromToken: number,
    toToken: number,
    layers: readonly { k: Float32Array; v: Float32Array }[],
  ): void {
    const { blockSize } = this.#opts;
    const table = this.#opts.blockTableOf(seqId);
    for (let b = Math.floor(fromToken / blockSize); b < toToken / blockSize; b++) {
      const blockId = table[b];
      if (blockId === undefined || !this.#pages.read(blockId, b, layers)) {
        throw new Error(`internal: no page for block ${b} of ${seqId}, cached prefix out of sync`);
      }
    }
  }

  #embed(batch: Batch): Float32Array {
    const H = this.#hidden;
    const { embedding } = this.#opts.dense;
    const x = new Float32Array(batch.numRows * H);
    batch.chunks.forEach((chunk, i) => {
      const base = at(batch.rowStart, i);
      for (let t = 0; t < chunk.count; t++) {
        const id = at(chunk.seq.tokens, chunk.start + t);
        x.set(embedding.subarray(id * H, (id + 1) * H), (base + t) * H);
      }
    });
    return x;
  }

  async #runLayer(layer: number, batch: Batch, x: Float32Array, failed: Map<string, Error>): Promise<Float32Array> {
    const H = this.#hidden;
    const E = this.#opts.config.numExperts;
    const h = new Float32Array(batch.numRows * H);
    const moeIn = new Float32Array(batch.numRows * H);
    const logits = new Float32Array(batch.numRows * E);
    const sharedGate = new Float32Array(batch.numRows);
    const batched = this.#opts.dense.batchedAttention?.[layer];
    if (batched && batch.chunks.length > 1) {
      await this.#attendBatched(layer, batched, batch, x, { h, moeIn, logits, sharedGate });
    } else {
      for (let i = 0; i < batch.chunks.length; i++) {
        await this.#attend(layer, batch, i, x, { h, moeIn, logits, sharedGate });
      }
    }
    const routes = route(logits, batch.numRows, this.#router, this.#opts.dense.selectionBias[layer]);
    this.#opts.onRouted?.(layer, batch.chunks, routes);
    const routed = await this.#opts.experts.runLayer(layer, moeIn, routes);
    if (routed.failedRows.length > 0) this.#markFailed(batch, routed.failedRows, routed.error, failed);
    for (let j = 0; j < h.length; j++) h[j] = (h[j] ?? 0) + (routed.output[j] ?? 0);
    await this.#addSharedExpert(layer, batch.numRows, moeIn, sharedGate, h);
    return h;
  }

  async #attend(
    layer: number,
    batch: Batch,
    i: number,
    x: Float32Array,
    out: { h: Float32Array; moeIn: Float32Array; logits: Float32Array; sharedGate: Float32Array },
  ): Promise<void> {
    const H = this.#hidden;
    const E = this.#opts.config.numExperts;
    const W = this.#kvWidth;
    const chunk = batch.chunks[i];
    const kernel = this.#opts.dense.attention[layer];
    const slot = chunk && this.#slots.get(chunk.seq.id);
    const kv = slot?.layers[layer];
    if (!chunk || !kernel || !kv) throw new Error(`internal: layer ${layer} chunk ${i} has no kernel or slot`);
    const row = at(batch.rowStart, i);
    const res = await kernel.run(
      x.subarray(row * H, (row + chunk.count) * H),
      chunk.count,
      chunk.start,
      kv.k,
      kv.v,
      chunk.start,
    );
    kv.k.set(res.newK, chunk.start * W);
    kv.v.set(res.newV, chunk.start * W);
    out.h.set(res.h, row * H);
    out.moeIn.set(res.moeIn, row * H);
    out.logits.set(res.routerLogits, row * E);
    if (res.sharedGate) out.sharedGate.set(res.sharedGate, row);
  }

  /** Every chunk's attention in one call; appends each chunk's new K/V to its slot. */
  async #attendBatched(
    layer: number,
    kernel: BatchedAttentionKernel,
    batch: Batch,
    x: Float32Array,
    out: { h: Float32Array; moeIn: Float32Array; logits: Float32Array; sharedGate: Float32Array },
  ): Promise<void> {
    const W = this.#kvWidth;
    const slots = batch.chunks.map((chunk) => {
      const kv = this.#slots.get(chunk.seq.id)?.layers[layer];
      if (!kv) throw new Error(`internal: no slot for ${chunk.seq.id}`);
      return { numTokens: chunk.count, start: chunk.start, pastK: kv.k, pastV: kv.v, kv };
    });
    const res = await kernel.run(x.subarray(0, batch.numRows * this.#hidden), slots);
    slots.forEach((slot, i) => {
      const row = at(batch.rowStart, i);
      slot.kv.k.set(res.newK.subarray(row * W, (row + slot.numTokens) * W), slot.start * W);
      slot.kv.v.set(res.newV.subarray(row * W, (row + slot.numTokens) * W), slot.start * W);
    });
    out.h.set(res.h);
    out.moeIn.set(res.moeIn);
    out.logits.set(res.routerLogits);
    if (res.sharedGate) out.sharedGate.set(res.sharedGate);
  }

  async #addSharedExpert(
    layer: number,
    numRows: number,
    moeIn: Float32Array,
    gate: Float32Array,
    h: Float32Array,
  ): Promise<void> {
    const kernel = this.#opts.dense.sharedExperts[layer];
    if (!kernel) return;
    const H = this.#hidden;
    const y = await kernel.run(moeIn, numRows);
    const gated = this.#opts.config.sharedExpertGate;
    for (let r = 0; r < numRows; r++) {
      const g = gated ? (gate[r] ?? 0) : 1;
      for (let j = 0; j < H; j++) h[r * H + j] = (h[r * H + j] ?? 0) + g * (y[r * H + j] ?? 0);
    }
  }

  #markFailed(batch: Batch, rows: Int32Array, error: Error | undefined, failed: Map<string, Error>): void {
    for (const row of rows) {
      const i = chunkOfRow(batch, row);
      const chunk = batch.chunks[i];
      if (chunk && !failed.has(chunk.seq.id)) failed.set(chunk.seq.id, error ?? new Error('expert execution failed'));
    }
  }

  /**
   * LM head on the last row of every chunk that samples, and on every row of a chunk that scores its
   * prompt (`logitsOfEveryRow`): one LM head call for the step either way. A scored chunk costs
   * count × vocabulary floats, bounded by the step's token budget.
   */
  async #headLogits(batch: Batch, x: Float32Array): Promise<HeadLogits> {
    const H = this.#hidden;
    const picks = batch.chunks.flatMap((c, i) => {
      const all = c.logitsOfEveryRow === true;
      if (!c.sample && !all) return [];
      const end = at(batch.rowStart, i) + c.count;
      return [{ c, all, first: all ? end - c.count : end - 1, numRows: all ? c.count : 1 }];
    });
    const result: HeadLogits = { last: new Map(), rows: new Map() };
    const numRows = picks.reduce((n, p) => n + p.numRows, 0);
    if (numRows === 0) return result;
    const rows = new Float32Array(numRows * H);
    let k = 0;
    for (const p of picks) {
      rows.set(x.subarray(p.first * H, (p.first + p.numRows) * H), k * H);
      k += p.numRows;
    }
    const logits = await this.#opts.dense.lmHead.run(rows, numRows);
    const V = logits.length / numRows;
    // Views, not copies: the LM head hands back a fresh array per call, so nothing else writes it.
    k = 0;
    for (const { c, all, numRows: n } of picks) {
      if (all) result.rows.set(c.seq.id, logits.subarray(k * V, (k + n) * V));
      if (c.sample) result.last.set(c.seq.id, logits.subarray((k + n - 1) * V, (k + n) * V));
      k += n;
    }
    return result;
  }
}

/** The LM head's output for a micro-batch: last rows of sampling chunks, all rows of scoring chunks. */
interface HeadLogits {
  readonly last: Map<string, Float32Array>;
  readonly rows: Map<string, Float32Array>;
}

/**
 * Splits chunks into at most `n` groups of about equal token counts, keeping order within a group.
 * A step with fewer chunks than groups runs as one batch.
 */
export function splitMicroBatches(chunks: readonly ScheduledChunk[], n: number): ScheduledChunk[][] {
  if (n <= 1 || chunks.length < 2) return [[...chunks]];
  const total = chunks.reduce((sum, c) => sum + c.count, 0);
  const groups: ScheduledChunk[][] = [[]];
  let acc = 0;
  for (const chunk of chunks) {
    const group = groups[groups.length - 1];
    if (group && group.length > 0 && groups.length < n && acc >= (total * groups.length) / n) groups.push([chunk]);
    else group?.push(chunk);
    acc += chunk.count;
  }
  return groups;
}

function chunkOfRow(batch: Batch, row: number): number {
  let i = 0;
  while (i + 1 < batch.rowStart.length && (batch.rowStart[i + 1] ?? Infinity) <= row) i++;
  return i;
}
