import { describe, expect, it } from 'vitest';
import { computePlacement, routesFromPairs, type Placement } from '@switchyard/routing';
import {
  DeadlineExceededError,
  NotFoundError,
  UnavailableError,
  type ExpertStreamClient,
  type PlacementChange,
  type PlacementState,
  type RunReply,
  type RunRequest,
  type WorkerDescription,
} from '@switchyard/rpc';
import { NoReplicaError, RemoteExpertExecutor } from '../src/remote-expert-executor.ts';

const H = 2;
const DEADLINE_MS = 100;
const RETRY_AFTER_MS = 1000;

/** The part of ExpertStreamClient the executor uses; the fakes implement only this. */
type DispatchClient = Pick<ExpertStreamClient, 'run' | 'load' | 'close' | 'describe'>;
const asClient = (fake: DispatchClient): ExpertStreamClient => fake as ExpertStreamClient;

/** One Run call as a worker saw it: batch rows (read back from the hidden states) and each row's experts. */
interface SeenCall {
  readonly tokens: number[];
  readonly experts: number[][];
}

interface Clock {
  nowMs: number;
}

/**
 * A worker with a predictable partial sum: per row, Σ over its pairs of weight × (expertId + 1) × hidden row.
 * `failOn(callIndex)` picks the error a call rejects with (none = answer); a failing call first moves the
 * clock by `msPerFailure` (a timeout costs time). `load` stays pending until `finishLoad()`.
 */
class FakeWorker implements DispatchClient {
  readonly calls: SeenCall[] = [];
  readonly loads: PlacementChange[] = [];
  failOn: (callIndex: number) => Error | undefined = () => undefined;
  msPerFailure = 0;
  readonly #clock: Clock;
  readonly #loaded = Promise.withResolvers<void>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  async run(request: RunRequest): Promise<RunReply> {
    const { routes, hidden } = request;
    const tokens = Array.from({ length: routes.numTokens }, (_, i) => (hidden[i * H] ?? 0) - 1);
    const experts = tokens.map((_, i) =>
      Array.from(routes.expertIds.subarray(routes.offsets[i], routes.offsets[i + 1])),
    );
    const error = this.failOn(this.calls.length);
    this.calls.push({ tokens, experts });
    if (error) {
      this.#clock.nowMs += this.msPerFailure;
      throw error;
    }
    const output = new Float32Array(routes.numTokens * H);
    for (let i = 0; i < routes.numTokens; i++) {
      for (let p = routes.offsets[i] ?? 0; p < (routes.offsets[i + 1] ?? 0); p++) {
        const scale = (routes.weights[p] ?? 0) * ((routes.expertIds[p] ?? 0) + 1);
        for (let j = 0; j < H; j++) output[i * H + j] = (output[i * H + j] ?? 0) + scale * (hidden[i * H + j] ?? 0);
      }
    }
    return { output, computeTimeUs: 1 };
  }

  async load(change: PlacementChange): Promise<PlacementState> {
    this.loads.push(change);
    await this.#loaded.promise;
    return { hosted: change.experts, placementRevision: change.placementRevision };
  }

  finishLoad(): void {
    this.#loaded.resolve();
  }

  /** What `describe` answers: the experts it hosts, or an error (it is not back). */
  describeAnswer: () => WorkerDescription | Error = () => new UnavailableError('not reachable');
  numDescribes = 0;

  async describe(): Promise<WorkerDescription> {
    this.numDescribes++;
    const answer = this.describeAnswer();
    if (answer instanceof Error) throw answer;
    return answer;
  }

  close(): void {}
}

const description: WorkerDescription = {
  workerId: 'w',
  hosted: [],
  dtype: 'DTYPE_F32',
  executionProvider: 'cpu',
  modelName: 'm',
  hiddenSize: H,
  placementRevision: 1,
  weightsDigest: '',
  tokensServed: [],
};

/** Contiguous placement of 4 experts over 2 layers: worker w is primary for experts 2w and 2w + 1. */
function place(workers: readonly string[], replication: number, revision = 1): Placement {
  return computePlacement({ workers, numLayers: 2, numExperts: 4, strategy: 'contiguous', replication, revision });
}

function setup(replication: number, replicaWaitMs = 0, rotateReplicas = false) {
  const clock: Clock = { nowMs: 0 };
  const workers = [new FakeWorker(clock), new FakeWorker(clock), new FakeWorker(clock)] as const;
  const [w0, w1] = workers;
  const executor = new RemoteExpertExecutor({
    placement: place(['a', 'b'], replication),
    clients: new Map([
      [0, asClient(w0)],
      [1, asClient(w1)],
    ]),
    numExperts: 4,
    hiddenSize: H,
    deadlineMs: DEADLINE_MS,
    retryAfterMs: RETRY_AFTER_MS,
    replicaWaitMs,
    now: () => clock.nowMs,
    // Most cases check which replica gets which rows, so the split keeps the plain replica order; the
    // rotation (the default) has its own case.
    rotateReplicas,
  });
  return { clock, workers, executor };
}

/** Lets the executor's load callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

// Token 0 needs worker 0 only, token 1 both workers, token 2 worker 1 only (primaries).
const routes = routesFromPairs([
  [
    [0, 0.5],
    [1, 0.5],
  ],
  [
    [1, 0.75],
    [2, 0.25],
  ],
  [
    [3, 0.5],
    [2, 0.5],
  ],
]);
const hidden = Float32Array.from([1, 1, 2, 1, 3, 1]); // row t = [t + 1, 1]
const tokens = (calls: readonly SeenCall[]) => calls.map((c) => c.tokens);
const run = (executor: RemoteExpertExecutor) => executor.runLayer(0, hidden, routes);

// Token 0: 0.5·1 + 0.5·2 = 1.5; token 1: 0.75·2 (worker 0) + 0.25·3 (worker 1) = 2.25; token 2: 0.5·4 + 0.5·3 = 3.5.
const healthy = { output: Float32Array.from([1.5, 1.5, 4.5, 2.25, 10.5, 3.5]), failedRows: new Int32Array() };
const byPrimaries = { w0: { tokens: [0, 1], experts: [[0, 1], [1]] }, w1: { tokens: [1, 2], experts: [[2], [3, 2]] } };
// Replication 2 (experts 0–1 on [w0, w1], 2–3 on [w1, w0]): expert 1's pairs (tokens 0, 1) and expert 2's
// (tokens 1, 2) are cut in two, the first half to the first replica.
const shared = { w0: { tokens: [0, 2], experts: [[0, 1], [2]] }, w1: { tokens: [1, 2], experts: [[1, 2], [3]] } };
// What w1 was asked for, resent to w0 when w1 fails.
const w1ShareOnW0 = { tokens: [1, 2], experts: [[1, 2], [3]] };

describe('RemoteExpertExecutor', () => {
  it('sends each token once per worker hosting one of its experts and adds the partial sums by worker', async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(1);
    const result = await run(executor);
    expect(w0.calls).toEqual([byPrimaries.w0]);
    expect(w1.calls).toEqual([byPrimaries.w1]);
    expect(result).toEqual(healthy);
    expect(result.error).toBeUndefined();
  });

  it("shares a replicated expert's tokens among its replicas in contiguous, balanced chunks", async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(2);
    expect(await run(executor)).toEqual(healthy);
    expect(w0.calls).toEqual([shared.w0]);
    expect(w1.calls).toEqual([shared.w1]);
    // A hot expert: five tokens all routed to expert 0, three to its primary w0 and two to w1.
    const hot = routesFromPairs(Array.from({ length: 5 }, () => [[0, 1] as const]));
    const rows = Float32Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? i / 2 + 1 : 1));
    const result = await executor.runLayer(1, rows, hot);
    expect(result.output).toEqual(rows);
    expect(tokens(w0.calls.slice(1))).toEqual([[0, 1, 2]]);
    expect(tokens(w1.calls.slice(1))).toEqual([[3, 4]]);
  });

  it("by default rotates which replica takes an expert's single pair from step to step, with the same output", async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(2, 0, true);
    // 40 decode steps of one token each: expert 0 (on both workers) and another expert that varies.
    for (let step = 0; step < 40; step++) {
      const one = routesFromPairs([
        [
          [0, 1],
          [1 + (step % 3), 0],
        ],
      ]);
      const row = Float32Array.from({ length: H }, (_, i) => (i === 0 ? step + 1 : 1));
      const result = await executor.runLayer(step % 2, row, one);
      expect(result.output).toEqual(row);
    }
    const servedExpert0 = (w: FakeWorker) => w.calls.filter((c) => c.experts.some((ids) => ids.includes(0))).length;
    expect(servedExpert0(w0) + servedExpert0(w1)).toBe(40);
    expect(servedExpert0(w0)).toBeGreaterThan(5);
    expect(servedExpert0(w1)).toBeGreaterThan(5);
  });

  it("sends a failed replica's share to the other replicas in the same call, and skips it until retryAfterMs has passed", async () => {
    const {
      clock,
      workers: [w0, w1],
      executor,
    } = setup(2);
    w1.failOn = () => new UnavailableError('stream broke');
    expect(await run(executor)).toEqual(healthy);
    expect(w0.calls).toEqual([shared.w0, w1ShareOnW0]);
    expect(w1.calls).toEqual([shared.w1]);

    w1.failOn = () => undefined;
    clock.nowMs = RETRY_AFTER_MS - 1;
    expect(await run(executor)).toEqual(healthy);
    expect(w0.calls[2]).toEqual({
      tokens: [0, 1, 2],
      experts: [
        [0, 1],
        [1, 2],
        [3, 2],
      ],
    });
    expect(w1.calls).toHaveLength(1);

    clock.nowMs = RETRY_AFTER_MS;
    expect(await run(executor)).toEqual(healthy);
    expect(w0.calls[3]).toEqual(shared.w0);
    expect(w1.calls).toEqual([shared.w1, shared.w1]);
  });

  it('reports the rows that needed a failed worker without replica as failed, and still answers the others', async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(1);
    w1.failOn = () => new DeadlineExceededError('no answer in time');
    const result = await run(executor);
    expect(result.failedRows).toEqual(Int32Array.from([1, 2]));
    expect(result.error).toBeInstanceOf(NoReplicaError);
    expect(result.output.subarray(0, H)).toEqual(Float32Array.from([1.5, 1.5]));
    expect(tokens(w0.calls)).toEqual([[0, 1]]);
    expect(tokens(w1.calls)).toEqual([[1, 2]]);
  });

  it('fails the rows when the replica fails too in the second round, and every call finishes', async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(2);
    w1.failOn = () => new UnavailableError('worker gone');
    w0.failOn = (call) => (call === 1 ? new DeadlineExceededError('no answer in time') : undefined);
    const result = await run(executor);
    expect(result.failedRows).toEqual(Int32Array.from([1, 2]));
    expect(result.error).toBeInstanceOf(NoReplicaError);
    expect(result.output.subarray(0, H)).toEqual(Float32Array.from([1.5, 1.5]));
    expect(w0.calls).toEqual([shared.w0, w1ShareOnW0]);
    expect(w1.calls).toEqual([shared.w1]);

    // Both workers are down now: the next call fails every row at once without sending anything.
    const next = await run(executor);
    expect(next.failedRows).toEqual(Int32Array.from([0, 1, 2]));
    expect(w0.calls.length + w1.calls.length).toBe(3);
  });

  // A regression test: when a failure took longer than retryAfterMs (deadline 10 s vs retry 2 s in the
  // gateway), a later round saw the first worker up again, and when the round bound was reached the rows
  // still pending were dropped: zero output, empty failedRows, no error.
  it('fails the rows when every replica times out and each timeout outlasts retryAfterMs', async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(2);
    w1.failOn = () => new DeadlineExceededError('no answer in time');
    w0.failOn = (call) => (call >= 1 ? new DeadlineExceededError('no answer in time') : undefined);
    w0.msPerFailure = w1.msPerFailure = 5 * RETRY_AFTER_MS;
    const result = await run(executor);
    expect(result.failedRows).toEqual(Int32Array.from([1, 2]));
    // The worker's own failure stays reachable from the error the request ends with.
    expect(result.error).toBeInstanceOf(NoReplicaError);
    expect(result.error?.cause).toBeInstanceOf(DeadlineExceededError);
  });

  it('reloads a worker that answers NotFoundError with its placed experts, and leaves it out until the load is done', async () => {
    const {
      clock,
      workers: [w0, w1],
      executor,
    } = setup(1);
    w1.failOn = () => new NotFoundError('expert not hosted');
    expect((await run(executor)).failedRows).toEqual(Int32Array.from([1, 2]));
    const hostedByW1 = [
      { layer: 0, expertId: 2 },
      { layer: 0, expertId: 3 },
      { layer: 1, expertId: 2 },
      { layer: 1, expertId: 3 },
    ];
    expect(w1.loads).toEqual([{ experts: hostedByW1, placementRevision: 1 }]);

    clock.nowMs = 10 * RETRY_AFTER_MS;
    expect((await run(executor)).failedRows).toEqual(Int32Array.from([1, 2]));
    expect(tokens(w1.calls)).toEqual([[1, 2]]);
    expect(executor.isWorkerUp(1)).toBe(false);

    w1.failOn = () => undefined;
    w1.finishLoad();
    await settle();
    expect(executor.isWorkerUp(1)).toBe(true);
    expect(await run(executor)).toEqual(healthy);
    expect(tokens(w1.calls)).toEqual([
      [1, 2],
      [1, 2],
    ]);
    expect(tokens(w0.calls)).toEqual([[0, 1], [0], [0, 1]]);
    expect(w1.loads).toHaveLength(1);
  });

  it('starts one reload when a second NotFoundError arrives while the first reload is pending', async () => {
    const {
      workers: [, w1],
      executor,
    } = setup(1);
    w1.failOn = () => new NotFoundError('expert not hosted');
    const results = await Promise.all([run(executor), run(executor)]);
    expect(results.map((r) => Array.from(r.failedRows))).toEqual([
      [1, 2],
      [1, 2],
    ]);
    expect(w1.calls).toHaveLength(2);
    expect(w1.loads).toHaveLength(1);
  });

  // A regression test: the second NotFoundError set the worker's down time to now + retryAfterMs,
  // overwriting the "until the reload is done" mark, so the worker was dispatched to mid-load.
  it('keeps the worker out until the reload is done after a second NotFoundError', async () => {
    const {
      clock,
      workers: [, w1],
      executor,
    } = setup(1);
    w1.failOn = () => new NotFoundError('expert not hosted');
    await Promise.all([run(executor), run(executor)]);
    clock.nowMs = 10 * RETRY_AFTER_MS;
    await run(executor);
    expect(w1.calls).toHaveLength(2);
  });

  it('keeps workers up when the caller aborts: an abort is not a worker failure', async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(2);
    const controller = new AbortController();
    w1.failOn = () => {
      controller.abort();
      return new UnavailableError('cancelled by the caller');
    };
    const aborted = await executor.runLayer(0, hidden, routes, controller.signal);
    expect(aborted.failedRows).toEqual(Int32Array.from([1, 2]));
    expect(executor.isWorkerUp(1)).toBe(true);
    expect(tokens(w0.calls)).toEqual([[0, 2]]);
    w1.failOn = () => undefined;
    expect(await run(executor)).toEqual(healthy);
  });

  it('ignores a reload started under the previous placement once the placement changes', async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(1);
    w1.failOn = () => new NotFoundError('expert not hosted');
    await run(executor);
    expect(executor.isWorkerUp(1)).toBe(false);
    // The new placement swaps the workers' indices: index 1 is now w0, which then fails on its own.
    executor.setPlacement(
      place(['b', 'a'], 1, 2),
      new Map([
        [0, asClient(w1)],
        [1, asClient(w0)],
      ]),
    );
    w1.failOn = () => undefined;
    w0.failOn = () => new DeadlineExceededError('no answer in time');
    await run(executor);
    expect(executor.isWorkerUp(1)).toBe(false);
    // The old reload of (old) index 1 finishing must not mark the new index 1 up.
    w1.finishLoad();
    await settle();
    expect(executor.isWorkerUp(1)).toBe(false);
    expect(executor.isWorkerUp(0)).toBe(true);
  });

  it('dispatches to the workers of a new placement from the next call', async () => {
    const {
      workers: [w0, w1, w2],
      executor,
    } = setup(1);
    expect(await run(executor)).toEqual(healthy);
    const next = place(['c'], 1, 2);
    executor.setPlacement(next, new Map([[0, asClient(w2)]]));
    expect(executor.placement).toBe(next);
    expect(await run(executor)).toEqual(healthy);
    expect(w2.calls).toEqual([
      {
        tokens: [0, 1, 2],
        experts: [
          [0, 1],
          [1, 2],
          [3, 2],
        ],
      },
    ]);
    expect(tokens(w0.calls)).toEqual([[0, 1]]);
    expect(tokens(w1.calls)).toEqual([[1, 2]]);
  });
  it('asks a down replica on demand whether it is back when the only live one fails, and serves from it', async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(2, 10_000);
    // Worker 0 dies: its rows go to worker 1, and worker 0 is down for retryAfterMs.
    w0.failOn = (call) => (call === 0 ? new UnavailableError('worker gone') : undefined);
    expect(await run(executor)).toEqual(healthy);
    // It restarts and loads again (it answers with every expert placed on it), but no health probe
    // has asked it yet; then worker 1 dies too.
    w0.describeAnswer = () => ({
      ...description,
      hosted: [0, 1].flatMap((layer) => [0, 1, 2, 3].map((expertId) => ({ layer, expertId }))),
    });
    w1.failOn = () => new UnavailableError('worker gone');
    expect(await run(executor)).toEqual(healthy);
    expect(w0.numDescribes).toBe(1);
    expect(w1.numDescribes).toBe(1);
    // The dead one is asked again only after ON_DEMAND_PROBE_EVERY_MS.
    expect(await run(executor)).toEqual(healthy);
    expect(w1.numDescribes).toBe(1);
  });

  it('asks no down replica on demand without a replica wait, and fails the rows at once', async () => {
    const {
      workers: [w0, w1],
      executor,
    } = setup(1);
    w1.failOn = () => new UnavailableError('worker gone');
    await run(executor);
    const result = await run(executor);
    expect(result.failedRows).toEqual(Int32Array.from([1, 2]));
    expect(w0.numDescribes + w1.numDescribes).toBe(0);
  });
});
