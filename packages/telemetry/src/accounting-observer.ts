import type { ExpertWeightFormat } from '@switchyard/model';
import type { TokenRoutes } from '@switchyard/routing';
import {
  addRow,
  emptyTotals,
  rowCompute,
  type ComputeModel,
  type ComputeTotals,
  type MutableTotals,
} from './compute-accounting.ts';

/** What the observer needs of a scheduled chunk: structurally the engine's `ScheduledChunk`. */
export interface ChunkLike {
  readonly seq: { readonly id: string; readonly numPromptTokens: number };
  readonly start: number;
  readonly count: number;
  readonly sample: boolean;
  /** The LM head ran on every row of the chunk (a request scoring its prompt); absent: false. */
  readonly logitsOfEveryRow?: boolean;
}

/** One computed row, as it is reported to `onToken` once its last layer has run. */
export interface TokenCompute {
  readonly seqId: string;
  readonly position: number;
  /** `prefill`: a prompt position (an input token); `decode`: a generated position. */
  readonly phase: 'prefill' | 'decode';
  /** The LM head ran on this row. */
  readonly sampled: boolean;
  readonly expertActivations: number;
  /** Per layer (index = layer), the distinct experts chosen; only when `recordExperts` is on. */
  readonly experts?: readonly (readonly number[])[];
  readonly activeParams: number;
  readonly matmulParams: number;
  readonly flops: number;
  readonly denseEquivalentFlops: number;
}

/** One worker's share of a step (attributed by the placement's `workerOf`). */
export interface WorkerCompute {
  readonly workerIndex: number;
  /** (row, expert) pairs it computed. */
  readonly expertActivations: number;
  /** Σ over layer calls of the distinct experts of this worker that were hit. */
  readonly expertsHit: number;
  readonly expertBytes: number;
  /** 2 × expert matmul parameters per pair. */
  readonly expertFlops: number;
}

/** A step's accounting: every row computed since the previous `takeStep()`. */
export interface StepCompute extends ComputeTotals {
  readonly numLayerCalls: number;
  /** Σ over layer calls of the distinct experts hit. */
  readonly expertsHit: number;
  /** Expert weight bytes read, in the format the experts run in, and had they been fp32 / int8. */
  readonly expertBytes: number;
  readonly expertBytesFp32: number;
  readonly expertBytesInt8: number;
  /** Non-expert weight bytes read: one pass over the dense weights per micro-batch. */
  readonly denseBytes: number;
  /** [layer × numExperts + expert]: (row, expert) pairs routed in this step. */
  readonly tokensPerExpert: Float64Array;
  /** Per layer: mean ÷ max of tokensPerExpert over the layer's experts; NaN for a layer that saw no row. */
  readonly balancedness: Float64Array;
  readonly workers: readonly WorkerCompute[];
}

export interface AccountingObserverOptions {
  readonly model: ComputeModel;
  readonly expertFormat: ExpertWeightFormat;
  /** Worker hosting (layer, expert); -1 or absent = in process. Attribution uses the primary replica. */
  readonly workerOf?: (layer: number, expert: number) => number;
  /** Keep each row's layer → experts lists (detail `tokens`); off, rows allocate nothing per layer. */
  readonly recordExperts?: boolean;
  readonly onToken?: (token: TokenCompute) => void;
  /** Request totals kept at most (oldest dropped first); default 4096. */
  readonly maxTrackedRequests?: number;
}

const MAX_PENDING = 64;

interface Pending {
  readonly chunks: readonly ChunkLike[];
  readonly activations: Int32Array;
  readonly experts: number[][][] | undefined;
}

interface RequestState {
  readonly totals: MutableTotals;
  /** [layer × numExperts + expert] = 1 once the request touched it. */
  readonly touched: Uint8Array;
}

interface MutableWorker {
  workerIndex: number;
  expertActivations: number;
  expertsHit: number;
  expertBytes: number;
  expertFlops: number;
}

/** A request's totals plus the distinct (layer, expert) pairs it touched. */
export interface RequestCompute extends ComputeTotals {
  readonly expertsHit: number;
}

/**
 * Turns the engine's routing decisions into exact accounting. Plug `observe` into the engine's
 * `onRouted`: it is called for every layer of every micro-batch with that micro-batch's chunks (the
 * batch rows are the chunks' tokens, in order) and the routes actually taken.
 *
 * A row is complete — and reported to `onToken`, added to its request and to the step — when its last
 * layer has been observed. Invariants: `#pending` holds only micro-batches whose last layer has not run
 * (keyed by their chunks, since micro-batches of one step interleave layer by layer); request totals
 * hold at most `maxTrackedRequests` entries, dropped oldest first when `takeRequest` is never called.
 */
export class AccountingObserver {
  readonly #opts: AccountingObserverOptions;
  readonly #m: ComputeModel;
  readonly #pending = new Map<string, Pending>();
  readonly #requests = new Map<string, RequestState>();
  readonly #hit: Uint8Array;
  #workerOf: ((layer: number, expert: number) => number) | undefined;
  #step: MutableTotals = emptyTotals();
  #stepExtra: StepExtra;

  constructor(opts: AccountingObserverOptions) {
    this.#opts = opts;
    this.#m = opts.model;
    this.#hit = new Uint8Array(opts.model.numExperts);
    this.#workerOf = opts.workerOf;
    this.#stepExtra = freshStepExtra(opts.model.numLayers, opts.model.numExperts);
  }

  /** The engine's `RoutingObserver`. */
  readonly observe = (layer: number, chunks: readonly ChunkLike[], routes: TokenRoutes): void => {
    const key = keyOf(chunks);
    let pending = this.#pending.get(key);
    if (!pending) {
      // Bounded: micro-batches of a step that failed part-way are dropped by discardPending(); if a
      // caller never calls it, the oldest half-observed micro-batch goes first.
      if (this.#pending.size >= MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value ?? '');
      pending = this.#startPending(
        chunks,
        chunks.reduce((n, c) => n + c.count, 0),
      );
      this.#pending.set(key, pending);
    }
    if (routes.numTokens !== pending.activations.length) {
      throw new Error(
        `internal: layer ${layer} routed ${routes.numTokens} rows for chunks of ${pending.activations.length} tokens`,
      );
    }
    this.#countLayer(layer, pending, routes);
    if (layer === this.#m.numLayers - 1) {
      this.#pending.delete(key);
      this.#finishRows(pending);
    }
  };

  /** Changes the expert → worker attribution (a new placement); takes effect from the next layer call. */
  setWorkerOf(workerOf: ((layer: number, expert: number) => number) | undefined): void {
    this.#workerOf = workerOf;
  }

  /** Drops micro-batches whose last layer never ran (a step that failed part-way). */
  discardPending(): void {
    this.#pending.clear();
  }

  /** A request's totals so far, and forgets them. */
  takeRequest(seqId: string): RequestCompute | undefined {
    const state = this.#requests.get(seqId);
    if (!state) return undefined;
    this.#requests.delete(seqId);
    let expertsHit = 0;
    for (const t of state.touched) expertsHit += t;
    return { ...state.totals, expertsHit };
  }

  /** Everything computed since the previous call; call it after each `engine.step()`. */
  takeStep(): StepCompute {
    const m = this.#m;
    const extra = this.#stepExtra;
    const balancedness = new Float64Array(m.numLayers);
    for (let layer = 0; layer < m.numLayers; layer++) {
      let sum = 0;
      let max = 0;
      for (let e = 0; e < m.numExperts; e++) {
        const n = extra.tokensPerExpert[layer * m.numExperts + e] ?? 0;
        sum += n;
        if (n > max) max = n;
      }
      balancedness[layer] = max > 0 ? sum / m.numExperts / max : Number.NaN;
    }
    const step: StepCompute = {
      ...this.#step,
      numLayerCalls: extra.numLayerCalls,
      expertsHit: extra.expertsHit,
      expertBytes: extra.expertsHit * m.expertSizeBytes[this.#opts.expertFormat],
      expertBytesFp32: extra.expertsHit * m.expertSizeBytes.f32,
      expertBytesInt8: extra.expertsHit * m.expertSizeBytes.int8,
      denseBytes: extra.numForwards * m.denseSizeBytes,
      tokensPerExpert: extra.tokensPerExpert,
      balancedness,
      workers: [...extra.workers.values()].sort((a, b) => a.workerIndex - b.workerIndex),
    };
    this.#step = emptyTotals();
    this.#stepExtra = freshStepExtra(m.numLayers, m.numExperts);
    return step;
  }

  #startPending(chunks: readonly ChunkLike[], numRows: number): Pending {
    const experts = this.#opts.recordExperts
      ? Array.from({ length: numRows }, () => Array.from({ length: this.#m.numLayers }, (): number[] => []))
      : undefined;
    this.#stepExtra.numForwards += 1;
    return { chunks, activations: new Int32Array(numRows), experts };
  }

  /** One layer call: distinct experts per row, per-expert and per-worker counts, experts hit. */
  #countLayer(layer: number, pending: Pending, routes: TokenRoutes): void {
    const E = this.#m.numExperts;
    const extra = this.#stepExtra;
    const hit = this.#hit;
    let row = 0;
    for (const chunk of pending.chunks) {
      const request = this.#request(chunk.seq.id);
      for (let t = 0; t < chunk.count; t++, row++) {
        const from = routes.offsets[row] ?? 0;
        const to = routes.offsets[row + 1] ?? 0;
        let distinct = 0;
        for (let p = from; p < to; p++) {
          const e = routes.expertIds[p] ?? 0;
          if (isRepeat(routes.expertIds, from, p, e)) continue;
          distinct++;
          hit[e] = 1;
          extra.tokensPerExpert[layer * E + e] = (extra.tokensPerExpert[layer * E + e] ?? 0) + 1;
          request.touched[layer * E + e] = 1;
          this.#addWorkerPair(layer, e);
          pending.experts?.[row]?.[layer]?.push(e);
        }
        pending.activations[row] = (pending.activations[row] ?? 0) + distinct;
      }
    }
    extra.numLayerCalls += 1;
    for (let e = 0; e < E; e++) {
      if (hit[e] === 0) continue;
      hit[e] = 0;
      extra.expertsHit += 1;
      this.#addWorkerHit(layer, e);
    }
  }

  #finishRows(pending: Pending): void {
    const m = this.#m;
    const onToken = this.#opts.onToken;
    let row = 0;
    for (const chunk of pending.chunks) {
      const request = this.#request(chunk.seq.id).totals;
      for (let t = 0; t < chunk.count; t++, row++) {
        const position = chunk.start + t;
        // "Sampled" rows are the rows whose logits were computed, whatever they were for.
        const sampled = chunk.logitsOfEveryRow === true || (chunk.sample && t === chunk.count - 1);
        const isPrefill = position < chunk.seq.numPromptTokens;
        const activations = pending.activations[row] ?? 0;
        const cost = rowCompute(m, position, activations, sampled);
        addRow(request, cost, isPrefill, sampled, activations);
        addRow(this.#step, cost, isPrefill, sampled, activations);
        if (!onToken) continue;
        const experts = pending.experts?.[row];
        onToken({
          seqId: chunk.seq.id,
          position,
          phase: isPrefill ? 'prefill' : 'decode',
          sampled,
          expertActivations: activations,
          ...(experts ? { experts } : {}),
          ...cost,
        });
      }
    }
  }

  #request(seqId: string): RequestState {
    let state = this.#requests.get(seqId);
    if (state) return state;
    const max = this.#opts.maxTrackedRequests ?? 4096;
    if (this.#requests.size >= max) {
      const oldest = this.#requests.keys().next();
      if (!oldest.done) this.#requests.delete(oldest.value);
    }
    state = { totals: emptyTotals(), touched: new Uint8Array(this.#m.numLayers * this.#m.numExperts) };
    this.#requests.set(seqId, state);
    return state;
  }

  #worker(layer: number, expert: number): MutableWorker | undefined {
    const index = this.#workerOf?.(layer, expert) ?? -1;
    if (index < 0) return undefined;
    let w = this.#stepExtra.workers.get(index);
    if (!w) {
      w = { workerIndex: index, expertActivations: 0, expertsHit: 0, expertBytes: 0, expertFlops: 0 };
      this.#stepExtra.workers.set(index, w);
    }
    return w;
  }

  #addWorkerPair(layer: number, expert: number): void {
    const w = this.#worker(layer, expert);
    if (!w) return;
    w.expertActivations += 1;
    w.expertFlops += 2 * this.#m.expertMatmulParams;
  }

  #addWorkerHit(layer: number, expert: number): void {
    const w = this.#worker(layer, expert);
    if (!w) return;
    w.expertsHit += 1;
    w.expertBytes += this.#m.expertSizeBytes[this.#opts.expertFormat];
  }
}

interface StepExtra {
  numLayerCalls: number;
  numForwards: number;
  expertsHit: number;
  readonly tokensPerExpert: Float64Array;
  readonly workers: Map<number, MutableWorker>;
}

function freshStepExtra(numLayers: number, numExperts: number): StepExtra {
  return {
    numLayerCalls: 0,
    numForwards: 0,
    expertsHit: 0,
    tokensPerExpert: new Float64Array(numLayers * numExperts),
    workers: new Map(),
  };
}

/** A micro-batch's identity within a step: each sequence appears in at most one micro-batch. */
function keyOf(chunks: readonly ChunkLike[]): string {
  let key = '';
  for (const c of chunks) key += `${c.seq.id}\u0000${c.start}\u0001`;
  return key;
}

/** Expert `e` already appeared among pairs [from, p) of the same row (k is small: a scan beats a set). */
function isRepeat(ids: Int32Array, from: number, p: number, e: number): boolean {
  for (let q = from; q < p; q++) if (ids[q] === e) return true;
  return false;
}
