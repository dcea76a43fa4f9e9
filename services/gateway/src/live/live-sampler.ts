/**
 * One picture of the cluster for the live page (`GET /`), taken about once a second and pushed over
 * SSE. Cumulative counters become rates here: each sampler keeps the previous totals of its own viewer.
 */

/** What the gateway can tell at any moment (plain reads, no I/O). */
export interface LiveSource {
  readonly instance: string;
  readonly model: string;
  readonly queue: 'in-process' | 'nats';
  /** False on a frontend-only gateway (`--no-engine`): no engine, no experts here. */
  readonly hasEngine: boolean;
  readonly state: () => string;
  readonly numRunning: () => number;
  readonly numWaiting: () => number;
  /** 0–1. */
  readonly kvUsage: () => number;
  /** Workers of the current placement (empty: experts in process). */
  readonly workers: () => readonly LiveWorker[];
  /** `replicas[layer][expert]` = worker indices, primary first; undefined in process. */
  readonly placement: () => LivePlacement | undefined;
  readonly totals: () => LiveTotals;
  readonly numLayers: number;
  readonly numExperts: number;
}

export interface LiveWorker {
  readonly address: string;
  readonly up: boolean;
}

export interface LivePlacement {
  readonly revision: number;
  readonly replicas: readonly (readonly (readonly number[])[])[];
}

export interface LiveTotals {
  readonly computedTokens: number;
  readonly activeParams: number;
  readonly flops: number;
  /** `[layer × numExperts + expert]`, undefined before the first step. */
  readonly expertTokens: Float64Array | undefined;
}

/** The JSON one SSE `snapshot` event carries. */
export interface LiveSnapshot {
  readonly timeMs: number;
  readonly instance: string;
  readonly model: string;
  readonly queue: string;
  readonly hasEngine: boolean;
  readonly state: string;
  readonly running: number;
  readonly waiting: number;
  readonly kvUsage: number;
  /** Computed token rows per second since the previous snapshot. */
  readonly tokensPerSecond: number;
  /** Over the rows computed since the previous snapshot (the last known value when none was). */
  readonly activeParamsPerToken: number;
  readonly flopsPerToken: number;
  readonly workers: readonly (LiveWorker & {
    /** (layer, expert) pairs this worker holds a replica of, and how many as primary. */
    readonly numExperts: number;
    readonly numPrimary: number;
    /** Per layer, the experts it holds. */
    readonly experts: readonly (readonly number[])[];
  })[];
  readonly placementRevision: number;
  /** `[layer][expert]`: (token, expert) pairs routed since the gateway started. */
  readonly expertLoad: readonly (readonly number[])[];
}

export class LiveSampler {
  readonly #source: LiveSource;
  #previous: { readonly timeMs: number; readonly totals: LiveTotals } | undefined;
  #perToken = { activeParams: 0, flops: 0 };

  constructor(source: LiveSource) {
    this.#source = source;
  }

  sample(nowMs: number): LiveSnapshot {
    const s = this.#source;
    const totals = s.totals();
    const previous = this.#previous;
    this.#previous = { timeMs: nowMs, totals };
    const rows = previous ? totals.computedTokens - previous.totals.computedTokens : 0;
    const seconds = previous ? (nowMs - previous.timeMs) / 1000 : 0;
    if (previous && rows > 0)
      this.#perToken = {
        activeParams: (totals.activeParams - previous.totals.activeParams) / rows,
        flops: (totals.flops - previous.totals.flops) / rows,
      };
    else if (!previous && totals.computedTokens > 0)
      this.#perToken = {
        activeParams: totals.activeParams / totals.computedTokens,
        flops: totals.flops / totals.computedTokens,
      };
    const placement = s.placement();
    return {
      timeMs: nowMs,
      instance: s.instance,
      model: s.model,
      queue: s.queue,
      hasEngine: s.hasEngine,
      state: s.state(),
      running: s.numRunning(),
      waiting: s.numWaiting(),
      kvUsage: s.kvUsage(),
      tokensPerSecond: seconds > 0 ? rows / seconds : 0,
      activeParamsPerToken: this.#perToken.activeParams,
      flopsPerToken: this.#perToken.flops,
      workers: s.workers().map((w, index) => ({ ...w, ...hostedBy(placement, index, s.numLayers) })),
      placementRevision: placement?.revision ?? 0,
      expertLoad: Array.from({ length: s.numLayers }, (_, layer) =>
        Array.from({ length: s.numExperts }, (_, e) => totals.expertTokens?.[layer * s.numExperts + e] ?? 0),
      ),
    };
  }
}

function hostedBy(placement: LivePlacement | undefined, worker: number, numLayers: number) {
  const experts = Array.from({ length: numLayers }, (_, layer) =>
    (placement?.replicas[layer] ?? []).flatMap((workers, e) => (workers.includes(worker) ? [e] : [])),
  );
  const numPrimary = (placement?.replicas ?? []).reduce(
    (n, layer) => n + layer.filter((workers) => workers[0] === worker).length,
    0,
  );
  return { experts, numExperts: experts.reduce((n, l) => n + l.length, 0), numPrimary };
}
