import type { ExpertExecutor, LayerResult } from '@switchyard/engine';
import {
  addRows,
  at,
  expertsOfWorker,
  gatherRows,
  routesRotation,
  shareAmongReplicas,
  splitByPairWorker,
  usableReplicas,
  type Placement,
  type TokenRoutes,
  type WorkerShard,
} from '@switchyard/routing';
import { NotFoundError, type ExpertStreamClient, type RunReply } from '@switchyard/rpc';
import type { SwitchyardTracer } from '@switchyard/telemetry';

export interface RemoteExecutorOptions {
  readonly placement: Placement;
  /** Client per worker index of the placement. */
  readonly clients: ReadonlyMap<number, ExpertStreamClient>;
  readonly numExperts: number;
  readonly hiddenSize: number;
  /** Deadline of one worker call. */
  readonly deadlineMs: number;
  /** How long a failed worker is skipped before it is tried again. */
  readonly retryAfterMs: number;
  readonly now?: () => number;
  /** Dispatch spans (one per layer and worker) whose context travels to the worker. */
  readonly tracer?: SwitchyardTracer;
  /** Told the round trip of every Run call (dispatch latency metric), with the worker's address. */
  readonly onDispatch?: (layer: number, worker: string, seconds: number, ok: boolean) => void;
  /**
   * Ask every worker this often what it hosts (Describe): one that does not answer is out of dispatch
   * before a request needs it, one that answers without its placed experts (it restarted) is given them
   * before it is put back, and one that answers again is back at once. 0 or absent: no probing.
   */
  readonly healthIntervalMs?: number;
  /**
   * How long a layer call waits for a worker of experts that have no live replica right now to come back
   * (reloading, or down for a moment) before it fails their rows with NoReplicaError. Default 0: no wait.
   */
  readonly replicaWaitMs?: number;
  /**
   * Rotate which replica takes an expert's larger chunk from step to step (`routesRotation`), so that an
   * expert with one pair in a step does not always send it to its first replica. Default true; false
   * keeps the plain replica order (the first replicas take the larger chunks).
   */
  readonly rotateReplicas?: boolean;
}

/** A layer call asks a down worker whether it is back at most this often, and waits this long for the answer. */
const ON_DEMAND_PROBE_EVERY_MS = 3_000;
const ON_DEMAND_PROBE_MS = 1_000;

export class NoReplicaError extends Error {
  override readonly name = 'NoReplicaError';
  readonly code = 'no_replica' as const;
}

interface ShardOutcome {
  readonly shard: WorkerShard;
  readonly reply?: RunReply;
  readonly error?: Error;
}

/**
 * Sends each layer's tokens to the expert workers over their long-lived Run streams: an expert's pairs
 * are shared among its live replicas (contiguous chunks of its rows, balanced by count, in replica
 * order rotated by a hash of the step's routing: `shareAmongReplicas`, `routesRotation`), the batch is split by worker (each token once per worker), shards go out
 * in parallel, and partial sums are added back in ascending worker order. A worker that fails is skipped
 * for `retryAfterMs`, and its pairs are shared among the other live replicas of their experts in the
 * same call; rows whose experts have no live replica are reported as failed, so only the requests that
 * own them end — never a hang, since every call carries a deadline.
 */
export class RemoteExpertExecutor implements ExpertExecutor {
  readonly #opts: RemoteExecutorOptions;
  /** Worker index → time until which it is skipped (Infinity while it reloads its experts). */
  readonly #downUntil = new Map<number, number>();
  /** Workers being asked to load their experts again (a restarted worker comes back empty). */
  readonly #reloading = new Set<number>();
  /** Bumped by setPlacement: a reload started under an older placement no longer touches worker state. */
  #epoch = 0;
  #placement: Placement;
  #clients: ReadonlyMap<number, ExpertStreamClient>;
  /** Workers with a health probe in flight. */
  readonly #probing = new Set<number>();
  /** Workers asked on demand (a layer call found their experts without a usable worker), and when. */
  readonly #probingOnDemand = new Set<number>();
  readonly #lastOnDemandProbe = new Map<number, number>();
  readonly #healthTimer: NodeJS.Timeout | undefined;

  constructor(opts: RemoteExecutorOptions) {
    this.#opts = opts;
    this.#placement = opts.placement;
    this.#clients = opts.clients;
    const interval = opts.healthIntervalMs ?? 0;
    if (interval > 0) {
      this.#healthTimer = setInterval(() => this.#probeAll(), interval);
      this.#healthTimer.unref();
    }
  }

  get placement(): Placement {
    return this.#placement;
  }

  /**
   * Switches to a new placement and its clients (worker indices are the new placement's); takes effect
   * from the next layer call. Both placements must be fully loaded on their workers, so a layer routed
   * under either gives the same numbers.
   */
  setPlacement(placement: Placement, clients: ReadonlyMap<number, ExpertStreamClient> = this.#clients): void {
    this.#placement = placement;
    this.#clients = clients;
    this.#epoch++;
    this.#downUntil.clear();
    this.#reloading.clear();
  }

  get clients(): ReadonlyMap<number, ExpertStreamClient> {
    return this.#clients;
  }

  isWorkerUp(workerIndex: number): boolean {
    return (this.#downUntil.get(workerIndex) ?? 0) <= this.#now();
  }

  async runLayer(layer: number, hidden: Float32Array, routes: TokenRoutes, signal?: AbortSignal): Promise<LayerResult> {
    const H = this.#opts.hiddenSize;
    const output = new Float32Array(routes.numTokens * H);
    const failed = new Set<number>();
    // Workers that failed during this call are not tried again in it, whatever their retry time: each
    // round then removes at least one worker, so the rounds end.
    const failedInCall = new Set<number>();
    let lastError: Error | undefined;
    let pending: TokenRoutes = routes;
    let rowMap: Int32Array = identityRows(routes.numTokens);
    const waitUntil = this.#now() + (this.#opts.replicaWaitMs ?? 0);
    // Each round sends what is left to the live replicas; a round that fails a worker narrows the set.
    for (let round = 0; round <= this.#placement.workers.length && pending.numTokens > 0; round++) {
      let replicas = this.#usableReplicas(layer, failedInCall);
      // Experts with no live replica now: a worker of theirs taken as down may have come back since it
      // was last asked (restarted between two health probes), so it is asked now (at most once per
      // ON_DEMAND_PROBE_EVERY_MS, within ON_DEMAND_PROBE_MS). One that is loading them (it restarted and
      // answered) is waited for within replicaWaitMs rather than their requests failed at once. A worker
      // that does not answer at all is not waited for past that probe: the whole batch would stall on it.
      if (this.#now() < waitUntil) this.#probeDownReplicas(layer, pending, replicas);
      while (this.#now() < waitUntil && !signal?.aborted && this.#comingBackFor(layer, pending, replicas)) {
        await sleep(50);
        // A worker that failed earlier in this call and has been found healthy again may be used again.
        for (const w of failedInCall) if (this.isWorkerUp(w) && !this.#downUntil.has(w)) failedInCall.delete(w);
        replicas = this.#usableReplicas(layer, failedInCall);
      }
      const { routable, unroutable, kept } = partitionRoutable(pending, replicas);
      if (unroutable.length > 0) {
        for (const t of unroutable) failed.add(at(rowMap, t));
        lastError = new NoReplicaError(
          `no live worker hosts the experts of ${unroutable.length} token(s) at layer ${layer}`,
          { cause: lastError },
        );
        rowMap = Int32Array.from(kept, (t) => at(rowMap, t));
        pending = routable;
      }
      const rotation = this.#opts.rotateReplicas === false ? undefined : routesRotation(pending, layer);
      const workerOfPair = shareAmongReplicas(pending, replicas, rotation);
      const shards = splitByPairWorker(pending, workerOfPair, this.#placement.workers.length);
      const outcomes = await Promise.all(shards.map((shard) => this.#send(layer, hidden, rowMap, shard, signal)));
      const retry: number[] = [];
      for (const { shard, reply, error } of outcomes) {
        const rows = mapRows(shard.tokenRows, rowMap);
        if (reply) {
          addRows(output, H, rows, reply.output);
          continue;
        }
        lastError = error;
        if (signal?.aborted) {
          // The caller gave up: the worker did nothing wrong, so it stays up for everyone else.
          for (const r of rows) failed.add(r);
          continue;
        }
        failedInCall.add(shard.workerIndex);
        if (error instanceof NotFoundError) this.#reload(shard.workerIndex);
        else this.#downUntil.set(shard.workerIndex, this.#now() + this.#opts.retryAfterMs);
        retry.push(...shard.tokenRows);
      }
      if (retry.length === 0) {
        pending = NO_ROUTES;
        break;
      }
      ({ pending, rowMap } = subsetRoutes(pending, rowMap, retry, workerOfPair, outcomes));
    }
    // Rows still owed when the rounds ran out are failed, never returned as zeros or partial sums.
    for (let t = 0; t < pending.numTokens; t++) failed.add(at(rowMap, t));
    const failedRows = Int32Array.from([...failed].sort((a, b) => a - b));
    return { output, failedRows, ...(failedRows.length > 0 && lastError ? { error: lastError } : {}) };
  }

  /**
   * Has a worker that answers "not hosted" (NOT_FOUND) for experts the placement gives it (it
   * restarted) load them again; it stays out of the dispatch set until the load is done. One reload per
   * worker at a time; a load started under an older placement leaves the current one alone.
   */
  #reload(workerIndex: number): void {
    this.#downUntil.set(workerIndex, Number.POSITIVE_INFINITY);
    const client = this.#clients.get(workerIndex);
    if (!client || this.#reloading.has(workerIndex)) return;
    this.#reloading.add(workerIndex);
    const placement = this.#placement;
    const epoch = this.#epoch;
    const current = () => epoch === this.#epoch;
    const experts = expertsOfWorker(placement, workerIndex).map(([layer, expertId]) => ({ layer, expertId }));
    void client
      .load(
        { experts, placementRevision: placement.revision },
        { deadlineMs: Math.max(this.#opts.deadlineMs, 120_000) },
      )
      .then(
        () => current() && this.#downUntil.delete(workerIndex),
        () => current() && this.#downUntil.set(workerIndex, this.#now() + this.#opts.retryAfterMs),
      )
      .finally(() => current() && this.#reloading.delete(workerIndex));
  }

  async close(): Promise<void> {
    clearInterval(this.#healthTimer);
    for (const client of this.#clients.values()) client.close();
  }

  /**
   * Whether an expert of `routes` without a usable worker has a placed worker that is reloading, or
   * that an on-demand probe is asking whether it is back.
   */
  #comingBackFor(layer: number, routes: TokenRoutes, usable: readonly (readonly number[])[]): boolean {
    if (this.#reloading.size === 0 && this.#probingOnDemand.size === 0) return false;
    return this.#unservedReplicas(layer, routes, usable).some(
      (w) => this.#reloading.has(w) || this.#probingOnDemand.has(w),
    );
  }

  /** The placed workers of the experts of `routes` that have no usable worker now. */
  #unservedReplicas(layer: number, routes: TokenRoutes, usable: readonly (readonly number[])[]): number[] {
    const replicas = this.#placement.replicas[layer] ?? [];
    const found = new Set<number>();
    for (let p = 0; p < routes.expertIds.length; p++) {
      const expert = at(routes.expertIds, p);
      if ((usable[expert]?.length ?? 0) > 0) continue;
      for (const w of replicas[expert] ?? []) found.add(w);
    }
    return [...found];
  }

  /** Asks the down workers of experts without a usable worker whether they are back (see runLayer). */
  #probeDownReplicas(layer: number, routes: TokenRoutes, usable: readonly (readonly number[])[]): void {
    // Every layer call comes here: with no worker down there is nobody to ask, and no pair to look at.
    if (this.#downUntil.size === 0) return;
    const now = this.#now();
    for (const w of this.#unservedReplicas(layer, routes, usable)) {
      if (this.#reloading.has(w) || this.#probingOnDemand.has(w)) continue;
      if (now - (this.#lastOnDemandProbe.get(w) ?? Number.NEGATIVE_INFINITY) < ON_DEMAND_PROBE_EVERY_MS) continue;
      this.#lastOnDemandProbe.set(w, now);
      this.#probingOnDemand.add(w);
      void this.#probe(w, {
        deadlineMs: Math.min(this.#opts.deadlineMs, ON_DEMAND_PROBE_MS),
        waitForReady: true,
      }).finally(() => this.#probingOnDemand.delete(w));
    }
  }

  #usableReplicas(layer: number, failedInCall: ReadonlySet<number>): number[][] {
    return usableReplicas(
      this.#placement,
      layer,
      (w) => !failedInCall.has(w) && this.isWorkerUp(w) && this.#clients.has(w),
    );
  }

  /** One health probe per worker (none while the last is in flight); see `healthIntervalMs`. */
  #probeAll(): void {
    for (const workerIndex of this.#clients.keys()) {
      if (!this.#probing.has(workerIndex))
        void this.#probe(workerIndex, { deadlineMs: Math.min(this.#opts.deadlineMs, 2_000) });
    }
  }

  /**
   * Asks one worker what it hosts: no answer keeps it out of dispatch for `retryAfterMs`; an answer
   * without its placed experts (it restarted) starts their reload; a full answer puts it back at once.
   */
  async #probe(workerIndex: number, options: { deadlineMs: number; waitForReady?: boolean }): Promise<void> {
    const client = this.#clients.get(workerIndex);
    if (!client) return;
    const epoch = this.#epoch;
    const current = () => epoch === this.#epoch;
    const placed = expertsOfWorker(this.#placement, workerIndex);
    this.#probing.add(workerIndex);
    try {
      const described = await client.describe(options);
      if (!current() || this.#reloading.has(workerIndex)) return;
      const hosted = new Set(described.hosted.map((r) => `${r.layer}:${r.expertId}`));
      if (placed.some(([layer, expert]) => !hosted.has(`${layer}:${expert}`))) this.#reload(workerIndex);
      else this.#downUntil.delete(workerIndex);
    } catch {
      if (current() && !this.#reloading.has(workerIndex))
        this.#downUntil.set(workerIndex, this.#now() + this.#opts.retryAfterMs);
    } finally {
      this.#probing.delete(workerIndex);
    }
  }

  async #send(
    layer: number,
    hidden: Float32Array,
    rowMap: Int32Array,
    shard: WorkerShard,
    signal?: AbortSignal,
  ): Promise<ShardOutcome> {
    const client = this.#clients.get(shard.workerIndex);
    if (!client) return { shard, error: new NoReplicaError(`no client for worker ${shard.workerIndex}`) };
    const rows = mapRows(shard.tokenRows, rowMap);
    const span = this.#opts.tracer?.startDispatchSpan(layer, shard.workerIndex, rows.length);
    const startedAt = performance.now();
    const worker = this.#placement.workers[shard.workerIndex] ?? String(shard.workerIndex);
    const done = (ok: boolean) => this.#opts.onDispatch?.(layer, worker, (performance.now() - startedAt) / 1000, ok);
    try {
      const reply = await client.run(
        {
          layer,
          hiddenSize: this.#opts.hiddenSize,
          hidden: gatherRows(hidden, this.#opts.hiddenSize, rows),
          routes: shard.routes,
          ...(span?.traceparent ? { traceparent: span.traceparent } : {}),
        },
        { deadlineMs: this.#opts.deadlineMs, ...(signal ? { signal } : {}) },
      );
      span?.end();
      done(true);
      return { shard, reply };
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      span?.end(e);
      done(false);
      return { shard, error: e };
    }
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }
}

const NO_ROUTES: TokenRoutes = {
  numTokens: 0,
  offsets: new Int32Array(1),
  expertIds: new Int32Array(0),
  weights: new Float32Array(0),
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function identityRows(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

function mapRows(local: Int32Array, rowMap: Int32Array): Int32Array {
  return local.map((r) => at(rowMap, r));
}

/** Splits tokens into those whose every expert has a live replica, and the rest. */
function partitionRoutable(
  routes: TokenRoutes,
  replicas: readonly (readonly number[])[],
): { routable: TokenRoutes; unroutable: number[]; kept: number[] } {
  const keep: number[] = [];
  const unroutable: number[] = [];
  for (let t = 0; t < routes.numTokens; t++) {
    let ok = true;
    for (let p = routes.offsets[t] ?? 0; p < (routes.offsets[t + 1] ?? 0); p++)
      if ((replicas[at(routes.expertIds, p)]?.length ?? 0) === 0) ok = false;
    (ok ? keep : unroutable).push(t);
  }
  return {
    routable: keep.length === routes.numTokens ? routes : selectTokens(routes, keep, () => true),
    unroutable,
    kept: keep,
  };
}

/**
 * The routes still owed after a round: for each failed token, only the pairs that were sent to a
 * failed worker (pairs answered by a live worker are already added in).
 */
function subsetRoutes(
  routes: TokenRoutes,
  rowMap: Int32Array,
  failedLocalTokens: readonly number[],
  workerOfPair: Int32Array,
  outcomes: readonly ShardOutcome[],
): { pending: TokenRoutes; rowMap: Int32Array } {
  const deadWorkers = new Set(outcomes.filter((o) => o.error).map((o) => o.shard.workerIndex));
  const tokens = [...new Set(failedLocalTokens)].sort((a, b) => a - b);
  const pending = selectTokens(routes, tokens, (pair) => deadWorkers.has(workerOfPair[pair] ?? -1));
  return { pending, rowMap: Int32Array.from(tokens, (t) => at(rowMap, t)) };
}

/** The routes of `tokens` (local indices, ascending) with only the pairs `keepPair` (by pair index) keeps. */
function selectTokens(
  routes: TokenRoutes,
  tokens: readonly number[],
  keepPair: (pair: number) => boolean,
): TokenRoutes {
  const offsets = new Int32Array(tokens.length + 1);
  const expertIds: number[] = [];
  const weights: number[] = [];
  tokens.forEach((t, i) => {
    for (let p = routes.offsets[t] ?? 0; p < (routes.offsets[t + 1] ?? 0); p++) {
      if (!keepPair(p)) continue;
      expertIds.push(at(routes.expertIds, p));
      weights.push(at(routes.weights, p));
    }
    offsets[i + 1] = expertIds.length;
  });
  return {
    numTokens: tokens.length,
    offsets,
    expertIds: Int32Array.from(expertIds),
    weights: Float32Array.from(weights),
  };
}
