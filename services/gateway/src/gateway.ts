import type { FastifyInstance } from 'fastify';
import { createEngine, EngineLoop, type EngineBundle, type ExpertDtype } from '@switchyard/engine';
import type { PlacementStrategy } from '@switchyard/routing';
import { loadGatewayModel } from './dense-weights.ts';
import { connectExpertCluster } from './expert-cluster.ts';
import { createHttpServer } from './http/server.ts';
import { LocalBackend } from './local-backend.ts';
import type { RemoteExpertExecutor } from './remote-expert-executor.ts';

/** The gateway's resolved configuration (main.ts builds it from flags and environment, once). */
export interface GatewayConfig {
  readonly modelDir: string;
  readonly host: string;
  readonly port: number;
  /** Expert worker addresses; empty = run the experts in this process (monolithic). */
  readonly workers: readonly string[];
  readonly placement: PlacementStrategy;
  readonly replication: number;
  readonly expertDtype: ExpertDtype;
  readonly denseDtype: 'fp32' | 'int8';
  readonly microBatches: number;
  readonly maxRunningSequences: number;
  readonly maxBatchedTokens: number;
  readonly maxQueuedRequests: number;
  readonly dispatchDeadlineMs: number;
  readonly workerConnectTimeoutMs: number;
  readonly bodyLimitBytes: number;
}

export const DEFAULT_GATEWAY_CONFIG: Omit<GatewayConfig, 'modelDir'> = Object.freeze({
  host: '127.0.0.1',
  port: 8000,
  workers: [],
  placement: 'contiguous',
  replication: 1,
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  microBatches: 1,
  maxRunningSequences: 64,
  maxBatchedTokens: 2048,
  maxQueuedRequests: 256,
  dispatchDeadlineMs: 10_000,
  workerConnectTimeoutMs: 30_000,
  bodyLimitBytes: 4 * 1024 * 1024,
});

export type GatewayState = 'starting' | 'serving' | 'draining' | 'stopped';

/**
 * A running gateway: model, engine (monolithic or over expert workers), loop and HTTP server. Built by
 * `Gateway.start` so no half-initialised gateway exists; `stop` drains within a deadline.
 */
export class Gateway {
  readonly config: GatewayConfig;
  readonly bundle: EngineBundle;
  readonly loop: EngineLoop;
  readonly backend: LocalBackend;
  readonly http: FastifyInstance;
  readonly executor: RemoteExpertExecutor | undefined;
  readonly url: string;
  #state: GatewayState = 'serving';

  private constructor(parts: { config: GatewayConfig; bundle: EngineBundle; loop: EngineLoop; backend: LocalBackend; http: FastifyInstance; executor: RemoteExpertExecutor | undefined; url: string }) {
    this.config = parts.config;
    this.bundle = parts.bundle;
    this.loop = parts.loop;
    this.backend = parts.backend;
    this.http = parts.http;
    this.executor = parts.executor;
    this.url = parts.url;
  }

  get state(): GatewayState {
    return this.#state;
  }

  static async start(config: GatewayConfig): Promise<Gateway> {
    const distributed = config.workers.length > 0;
    const model = await loadGatewayModel(config.modelDir, !distributed);
    const cluster = distributed
      ? await connectExpertCluster({
          addresses: config.workers,
          config: model.config,
          strategy: config.placement,
          replication: config.replication,
          deadlineMs: config.dispatchDeadlineMs,
          connectTimeoutMs: config.workerConnectTimeoutMs,
        })
      : undefined;
    const bundle = await createEngine(
      model,
      {
        expertDtype: config.expertDtype,
        denseDtype: config.denseDtype,
        blockSize: 16,
        microBatches: config.microBatches,
        scheduler: { maxBatchedTokens: config.maxBatchedTokens, maxRunningSequences: config.maxRunningSequences },
      },
      cluster?.executor,
    );
    const loop = new EngineLoop(bundle.engine);
    const backend = new LocalBackend(bundle, loop, config.maxQueuedRequests);
    const http = createHttpServer({ backend, bodyLimitBytes: config.bodyLimitBytes });
    const url = await http.listen({ host: config.host, port: config.port });
    return new Gateway({ config, bundle, loop, backend, http, executor: cluster?.executor, url });
  }

  /** Bounded shutdown: not ready, finish in-flight requests within deadlineMs, close everything. */
  async stop(deadlineMs = 10_000): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'draining') return;
    this.#state = 'draining';
    this.backend.setReady(false);
    await this.loop.stop(deadlineMs);
    await this.http.close();
    await this.bundle.close();
    this.#state = 'stopped';
  }
}
