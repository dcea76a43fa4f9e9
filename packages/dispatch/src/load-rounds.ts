/**
 * Loading experts on workers that are serving, without stalling the steps that wait for them.
 *
 * A worker opens a session synchronously on its serving thread, so while it loads it answers no Run
 * call, and a step waits for its slowest worker. `loadInRounds` therefore loads one expert per worker per
 * round, all workers together, with a pause of twice the round (at most MAX_ROUND_PAUSE_MS) between
 * rounds: the workers are busy together, and serving keeps about two thirds of the time. Measured with
 * the eplb bench on `skewed-heavy`, workers at 0.25 cores: every worker loading all its experts at once
 * gave a p99 ITL 5.8× the steady state during the re-placement (and requests stalled ≥ 2 s); rounds,
 * 2.1×; rounds with the worker building graphs on its own thread, 1.44× and 1.63×.
 */
import type { ExpertStreamClient } from '@switchyard/rpc';

/** The longest pause between two load rounds. */
const MAX_ROUND_PAUSE_MS = 2_000;

export interface LoadRoundsTarget {
  /** Worker names, by index (for the failure messages). */
  readonly workers: readonly string[];
  readonly clients: ReadonlyMap<number, Pick<ExpertStreamClient, 'load'>>;
}

/**
 * Has worker w load `perWorker[w]` ([layer, expert] pairs) under `revision`, in rounds. Stops after the
 * round in which a worker fails; resolves with the failures (`<worker>: <reason>`), empty when all loaded.
 */
export async function loadInRounds(
  target: LoadRoundsTarget,
  perWorker: readonly (readonly (readonly [number, number])[])[],
  revision: number,
  deadlineMs: number,
): Promise<string[]> {
  const failures: string[] = [];
  const rounds = Math.max(0, ...perWorker.map((experts) => experts.length));
  for (let round = 0; round < rounds && failures.length === 0; round++) {
    const started = performance.now();
    await Promise.all(
      target.workers.map(async (id, w) => {
        const expert = perWorker[w]?.[round];
        if (expert === undefined) return;
        const client = target.clients.get(w);
        if (!client) return void failures.push(`${id}: no client`);
        try {
          await client.load(
            { experts: [{ layer: expert[0], expertId: expert[1] }], placementRevision: revision },
            { deadlineMs },
          );
        } catch (error) {
          failures.push(`${id}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
    );
    if (round + 1 < rounds && failures.length === 0) {
      const pauseMs = Math.min(2 * (performance.now() - started), MAX_ROUND_PAUSE_MS);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }
  return failures;
}
