import { connectExpertClient, type ClientTls, type ExpertStreamClient } from '@switchyard/rpc';
import { expertsOfWorker, type Placement, type PlacementStrategy } from '@switchyard/routing';
import type { ModelConfig } from '@switchyard/model';
import type { SwitchyardTracer } from '@switchyard/telemetry';
import { RemoteExpertExecutor } from './remote-expert-executor.ts';
import { placeExperts, type LoadAwareSettings } from './expert-placement.ts';

export interface ExpertClusterOptions {
  readonly addresses: readonly string[];
  readonly config: ModelConfig;
  readonly strategy: PlacementStrategy;
  readonly replication: number;
  /** Load-aware placement from measured loads instead of `strategy` and `replication`. */
  readonly loadAware?: LoadAwareSettings;
  readonly deadlineMs: number;
  /** How long to wait for every worker to answer at start-up. */
  readonly connectTimeoutMs: number;
  readonly wireFormat?: 'f32' | 'bf16';
  /** Use this placement (worker indices = positions in `addresses`) instead of computing one. */
  readonly placement?: Placement;
  readonly tracer?: SwitchyardTracer;
  readonly onDispatch?: (layer: number, worker: string, seconds: number, ok: boolean) => void;
  /** SHA-256 (hex) of the gateway's weights: a worker that reports other weights is refused. */
  readonly weightsDigest?: string;
  /** TLS to the workers (mutual TLS with this gateway's certificate); absent: plaintext. */
  readonly tls?: ClientTls;
  /** How often each worker's health and hosted experts are checked (default 1000 ms; 0: never). */
  readonly healthIntervalMs?: number;
  /** How long a call waits for a missing expert's worker to come back (default: the call deadline). */
  readonly replicaWaitMs?: number;
}

/** Same weights, or one side does not know its digest (weights given in memory). */
export function sameWeights(a: string | undefined, b: string | undefined): boolean {
  return a === undefined || b === undefined || a === '' || b === '' || a === b;
}

export class WorkerStartupError extends Error {
  override readonly name = 'WorkerStartupError';
  readonly code = 'worker_startup' as const;
}

/**
 * Connects to the expert workers, computes placement v1 over them, has each load its experts, and
 * returns the executor that dispatches to them. Fails start-up, naming the worker, when a worker is
 * unreachable or serves another model.
 */
export async function connectExpertCluster(
  options: ExpertClusterOptions,
): Promise<{ executor: RemoteExpertExecutor; placement: Placement; clients: Map<number, ExpertStreamClient> }> {
  const { addresses, config } = options;
  const clients = new Map<number, ExpertStreamClient>();
  try {
    await Promise.all(
      addresses.map(async (address, i) => {
        let client: ExpertStreamClient;
        try {
          client = await connectExpertClient(address, {
            deadlineMs: options.deadlineMs,
            connectDeadlineMs: options.connectTimeoutMs,
            ...(options.wireFormat ? { wireFormat: options.wireFormat } : {}),
            ...(options.tls ? { tls: options.tls } : {}),
          });
        } catch (cause) {
          throw new WorkerStartupError(
            `expert worker ${address} is not reachable within ${options.connectTimeoutMs} ms`,
            { cause },
          );
        }
        clients.set(i, client);
        const described = await client.describe({ deadlineMs: options.connectTimeoutMs });
        if (described.modelName !== config.name || described.hiddenSize !== config.hiddenSize) {
          throw new WorkerStartupError(
            `expert worker ${address} serves ${described.modelName} (hidden ${described.hiddenSize}), not ${config.name}`,
          );
        }
        if (!sameWeights(options.weightsDigest, described.weightsDigest)) {
          throw new WorkerStartupError(
            `expert worker ${address} serves ${config.name} with other weights (${described.weightsDigest.slice(0, 12)}…, ` +
              `this gateway has ${options.weightsDigest?.slice(0, 12) ?? ''}…)`,
          );
        }
      }),
    );
    const placement =
      options.placement ??
      placeExperts(
        addresses,
        config,
        {
          strategy: options.strategy,
          replication: options.replication,
          ...(options.loadAware ? { loadAware: options.loadAware } : {}),
        },
        1,
      );
    await Promise.all(
      addresses.map(async (_address, i) => {
        const experts = expertsOfWorker(placement, i).map(([layer, expertId]) => ({ layer, expertId }));
        await clients
          .get(i)
          ?.load(
            { experts, placementRevision: placement.revision },
            { deadlineMs: Math.max(options.connectTimeoutMs, 120_000) },
          );
      }),
    );
    const executor = new RemoteExpertExecutor({
      placement,
      clients,
      numExperts: config.numExperts,
      hiddenSize: config.hiddenSize,
      deadlineMs: options.deadlineMs,
      retryAfterMs: 2000,
      healthIntervalMs: options.healthIntervalMs ?? 1_000,
      replicaWaitMs: options.replicaWaitMs ?? options.deadlineMs,
      ...(options.tracer ? { tracer: options.tracer } : {}),
      ...(options.onDispatch ? { onDispatch: options.onDispatch } : {}),
    });
    return { executor, placement, clients };
  } catch (error) {
    for (const c of clients.values()) c.close();
    throw error;
  }
}
