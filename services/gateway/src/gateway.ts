import type { AuthOptions } from './http/auth.ts';
import { OffThreadTokenizer } from './tokenize/off-thread-tokenizer.ts';
import type { ClientTls } from '@switchyard/rpc';
import type { FastifyInstance } from 'fastify';
import {
  createByteTokenizer,
  EngineLoop,
  loadHfTokenizer,
  PrefixHasher,
  type EngineBundle,
  type GenerationBackend,
  type RoutingObserver,
  type Tokenizer,
} from '@switchyard/engine';
import { createEngine, type ExpertDtype } from '@switchyard/onnx';
import { EngineTelemetry, ExpertLoadWindow, PROMETHEUS_CONTENT_TYPE, type Telemetry } from '@switchyard/telemetry';
import type { PlacementStrategy } from '@switchyard/routing';
import {
  connectExpertCluster,
  LocalPlacementStore,
  PlacementController,
  Rebalancer,
  RemoteExpertExecutor,
  WarmupPlacement,
  type LoadAwareSettings,
  type RebalanceResult,
} from '@switchyard/dispatch';
import type { BlockPoolEvent } from '@switchyard/kv-cache';
import type { FetchMode, KvTransport } from '@switchyard/kv-transfer';
import {
  ExpertLoadExchange,
  PlacementStore,
  type ClusterConnection,
  type ClusterConnectOptions,
  type RequestQueueOptions,
  type RouterMode,
} from '@switchyard/cluster';
import { loadModelDir, readModelDirInfo, type ModelConfig } from '@switchyard/model';
import { createHttpServer } from './http/server.ts';
import { LocalBackend } from './local-backend.ts';
import { loadLiveAssets, registerLivePage } from './live/live-page.ts';
import type { LiveSource } from './live/live-sampler.ts';
import { closeNats, openConnection, openNats, type NatsParts } from './nats-parts.ts';

/** The gateway's resolved configuration (main.ts builds it from flags and environment, once). */
export interface GatewayConfig {
  readonly modelDir: string;
  readonly host: string;
  readonly port: number;
  /** Expert worker addresses; empty = run the experts in this process (monolithic). */
  readonly workers: readonly string[];
  readonly placement: PlacementStrategy;
  readonly replication: number;
  /** `--placement eplb`: place from measured expert loads instead of `placement` and `replication`. */
  readonly loadAware?: LoadAwareSettings;
  /**
   * `--placement eplb --eplb-warmup-s`: start on `placement` and, once pairs have been routed after
   * `warmupMs`, switch once to a load-aware placement from this gateway's own window (`--workers` only).
   */
  readonly eplbWarmup?: { readonly warmupMs: number; readonly settings: Omit<LoadAwareSettings, 'loads'> };
  /**
   * `--placement eplb` over `--workers`: live re-placement from this gateway's window (`Rebalancer`): every
   * `intervalMs` (0: only on demand, `POST /v1/switchyard/rebalance`) when the predicted balancedness gains
   * more than `threshold`; gateways agree through the placement store (NATS) or one in this process.
   */
  readonly rebalance?: {
    readonly intervalMs: number;
    readonly threshold: number;
    readonly settings: Omit<LoadAwareSettings, 'loads'>;
  };
  readonly expertDtype: ExpertDtype;
  readonly denseDtype: 'fp32' | 'int8';
  /** Threads of each onnxruntime session's intra-op pool; absent = onnxruntime's default (one per physical core). */
  readonly intraOpThreads?: number;
  readonly microBatches: number;
  readonly maxRunningSequences: number;
  readonly maxBatchedTokens: number;
  readonly maxQueuedRequests: number;
  readonly dispatchDeadlineMs: number;
  /** How far back the expert load statistics (`/metrics`, `GET /v1/switchyard/stats`) look. */
  readonly expertLoadWindowMs: number;
  readonly workerConnectTimeoutMs: number;
  readonly bodyLimitBytes: number;
  /** API keys on the HTTP API (and per-key rate limits); absent: the API is open. */
  readonly auth?: AuthOptions;
  /** TLS to the expert workers (mutual TLS with a certificate and key); absent: plaintext. */
  readonly workerTls?: ClientTls;
  /** Prompt texts longer than this are tokenized on a thread of their own. */
  readonly tokenizeInlineMaxChars: number;
  /** The NATS request queue; absent = the in-process path (this gateway's HTTP feeds its own engine). */
  readonly nats?: NatsSettings;
  /** Name shown to NATS and in logs. */
  readonly instanceName: string;
  /**
   * Whether this gateway's engine serves requests from the queue. A frontend-only gateway (false)
   * takes HTTP requests and queues them for other gateways' engines. Needs NATS.
   */
  readonly serveQueue: boolean;
  /**
   * With NATS and no `workers` list: discover expert workers in the registry, wait for at least this
   * many, and follow the registry (re-placing experts when workers come and go). 0 = off.
   */
  readonly discoverWorkers: number;
  /** TTL of the worker registry (a silent worker leaves it after this long). */
  readonly registryTtlMs: number;
  /** Largest number of (block hash, engine) pairs in this frontend's cluster prefix index (NATS mode). */
  readonly kvIndexMaxEntries: number;
  /** How the frontend chooses an engine (NATS mode): KV-aware (`kv`), `round-robin` or `random`. */
  readonly routerMode: RouterMode;
  /** A routed request whose engine is silent this long goes to the shared queue (once). */
  readonly rerouteAfterMs: number;
  /** An engine not heard from for this long is taken as gone (no routing to it, its blocks dropped). */
  readonly engineTtlMs: number;
  /**
   * A frontend silent this long is gone (NATS mode): an engine stops the requests it queued, since nobody
   * reads their tokens any more. Frontends heartbeat every 250 ms.
   */
  readonly frontendTtlMs: number;
  /**
   * What this engine does (NATS mode): `both` takes requests and prefills them; `decode` has a `prefill`
   * engine compute new prompts, fetches their pages and generates; `prefill` only computes prompts for
   * decode engines (it takes no requests from the shared queue).
   */
  readonly role: GatewayRole;
  /** Port of this engine's KvPageService (NATS mode with an engine); 0 picks a free one. */
  readonly kvPort: number;
  /** Port of this engine's KV bulk data plane (page fetches over plain TCP); 0 picks a free one. */
  readonly kvDataPort: number;
  /** Host peers reach the KvPageService and the bulk data plane at (advertised in the load reports). */
  readonly kvAdvertiseHost: string;
  /** Fetch prompt prefixes held by peers or the page store: `auto` (when faster than recompute), `always`, `never`. */
  readonly kvFetch: FetchMode;
  /** Time allowed for one page fetch (and one offload push). */
  readonly kvFetchDeadlineMs: number;
  /** Fetch pages over peers' bulk data planes (`tcp`, gRPC when a peer has none) or always over gRPC. */
  readonly kvTransport: KvTransport;
  /** Push evicted pages to a live page store (write-behind). */
  readonly kvOffload: boolean;
  /** A decode engine's wait for a prefill engine to compute a prompt before computing it itself. */
  readonly prefillDeadlineMs: number;
  /** KV cache size in blocks of 16 tokens; absent = enough for --max-running full contexts, up to 1 GiB. */
  readonly numKvBlocks?: number;
}

export type GatewayRole = 'both' | 'prefill' | 'decode';
export const GATEWAY_ROLES: readonly GatewayRole[] = ['both', 'prefill', 'decode'];

export interface NatsSettings {
  readonly url: string;
  /** The cluster's namespace (default `default`). */
  readonly namespace?: string;
  /** Credentials and TLS (from the environment: `natsAuthFromEnv`). */
  readonly auth?: Pick<ClusterConnectOptions, 'user' | 'pass' | 'token' | 'credsFile' | 'nkeySeedFile' | 'tls'>;
  readonly queue: Partial<RequestQueueOptions>;
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
  expertLoadWindowMs: 60_000,
  workerConnectTimeoutMs: 30_000,
  bodyLimitBytes: 4 * 1024 * 1024,
  tokenizeInlineMaxChars: 16_384,
  instanceName: 'gateway',
  serveQueue: true,
  discoverWorkers: 0,
  registryTtlMs: 15_000,
  kvIndexMaxEntries: 1_000_000,
  routerMode: 'kv',
  rerouteAfterMs: 5_000,
  engineTtlMs: 2_000,
  frontendTtlMs: 1_500,
  role: 'both',
  kvPort: 0,
  kvDataPort: 0,
  kvAdvertiseHost: '127.0.0.1',
  kvFetch: 'auto',
  kvFetchDeadlineMs: 2_000,
  kvTransport: 'tcp',
  kvOffload: true,
  prefillDeadlineMs: 30_000,
});

export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
  readonly code = 'gateway_config' as const;
}

export type GatewayState = 'starting' | 'serving' | 'draining' | 'stopped';

type ReadyBackend = GenerationBackend & { setReady(ready: boolean): void };

/** Expert workers found in the NATS registry: the first placement, then re-placement as they change. */
async function discoverExperts(
  conn: ClusterConnection,
  config: GatewayConfig,
  loaded: { readonly config: ModelConfig; readonly weightsDigest: string },
  telemetry: Telemetry | undefined,
) {
  const model = loaded.config;
  const controller = await PlacementController.open({
    conn,
    config: model,
    weightsDigest: loaded.weightsDigest,
    ...(config.workerTls ? { tls: config.workerTls } : {}),
    strategy: config.placement,
    replication: config.replication,
    ...(config.loadAware ? { loadAware: config.loadAware } : {}),
    deadlineMs: config.dispatchDeadlineMs,
    registryTtlMs: config.registryTtlMs,
    log: (line) => process.stdout.write(`gateway ${config.instanceName}: ${line}\n`),
  });
  const placed = await controller.first(config.discoverWorkers, config.workerConnectTimeoutMs);
  const executor = new RemoteExpertExecutor({
    placement: placed.placement,
    clients: placed.clients,
    numExperts: model.numExperts,
    hiddenSize: model.hiddenSize,
    deadlineMs: config.dispatchDeadlineMs,
    retryAfterMs: 2000,
    healthIntervalMs: 1_000,
    replicaWaitMs: config.dispatchDeadlineMs,
    ...(telemetry
      ? { tracer: telemetry.tracer, onDispatch: telemetry.metrics.recordDispatch.bind(telemetry.metrics) }
      : {}),
  });
  void controller.follow((next) => executor.setPlacement(next.placement, next.clients));
  return { executor, controller };
}

/**
 * A running gateway: model, engine (monolithic or over expert workers), loop and HTTP server. Built by
 * `Gateway.start` so no half-initialised gateway exists; `stop` drains within a deadline.
 */
export class Gateway {
  readonly config: GatewayConfig;
  /** The model served: what the HTTP frontend and the router need (a frontend-only gateway has no more). */
  readonly served: ServedModel;
  /** The engine and its loop; undefined on a frontend-only gateway (`--no-engine`), which loads no weights. */
  readonly bundle: EngineBundle | undefined;
  readonly loop: EngineLoop | undefined;
  readonly backend: ReadyBackend;
  readonly http: FastifyInstance;
  readonly nats: NatsParts | undefined;
  readonly executor: RemoteExpertExecutor | undefined;
  readonly url: string;
  readonly telemetry: Telemetry | undefined;
  readonly controller: PlacementController | undefined;
  readonly #live: { close(): void };
  readonly #expertLoad: ExpertLoadWindow | undefined;
  readonly #loadExchange: ExpertLoadExchange | undefined;
  readonly #warmup: WarmupPlacement | undefined;
  readonly #rebalancer: Rebalancer | undefined;
  #state: GatewayState = 'serving';

  private constructor(parts: {
    config: GatewayConfig;
    served: ServedModel;
    bundle: EngineBundle | undefined;
    loop: EngineLoop | undefined;
    backend: ReadyBackend;
    http: FastifyInstance;
    executor: RemoteExpertExecutor | undefined;
    url: string;
    nats: NatsParts | undefined;
    telemetry: Telemetry | undefined;
    controller: PlacementController | undefined;
    live: { close(): void };
    expertLoad: ExpertLoadWindow | undefined;
    loadExchange: ExpertLoadExchange | undefined;
    warmup: WarmupPlacement | undefined;
    rebalancer: Rebalancer | undefined;
  }) {
    this.config = parts.config;
    this.served = parts.served;
    this.bundle = parts.bundle;
    this.loop = parts.loop;
    this.backend = parts.backend;
    this.http = parts.http;
    this.executor = parts.executor;
    this.url = parts.url;
    this.nats = parts.nats;
    this.telemetry = parts.telemetry;
    this.controller = parts.controller;
    this.#live = parts.live;
    this.#expertLoad = parts.expertLoad;
    this.#loadExchange = parts.loadExchange;
    this.#warmup = parts.warmup;
    this.#rebalancer = parts.rebalancer;
  }

  get state(): GatewayState {
    return this.#state;
  }

  /**
   * One re-placement now (`POST /v1/switchyard/rebalance`, `switchyard rebalance`); undefined when this
   * gateway does not re-place (no `--placement eplb` over `--workers`).
   */
  async rebalance(force: boolean): Promise<RebalanceResult | undefined> {
    return this.#rebalancer?.rebalanceNow({ force });
  }

  /** Counters for operators and tests (`GET /v1/switchyard/stats`). */
  stats(): Record<string, number | string | boolean | Record<string, number> | number[][]> {
    return {
      instance: this.config.instanceName,
      state: this.#state,
      queue: this.nats ? 'nats' : 'in-process',
      placementRevision: this.executor?.placement.revision ?? 0,
      placementWorkers: this.executor?.placement.workers.join(',') ?? '',
      servesQueue: this.nats ? this.nats.worker !== undefined : true,
      served: this.nats?.worker?.numServed ?? 0,
      serving: this.nats?.worker?.numServing ?? 0,
      running: this.bundle?.engine.numRunning ?? 0,
      waiting: this.bundle?.engine.numWaiting ?? 0,
      kvFreeBlocks: this.bundle?.kv.numFreeBlocks ?? 0,
      kvCachedBlocks: this.bundle?.pool.numCachedBlocks ?? 0,
      kvIndexEntries: this.nats?.kvView.index.numEntries ?? 0,
      kvIndexHashes: this.nats?.kvView.index.numHashes ?? 0,
      // Blocks the frontend's index holds per engine (trusted views only).
      kvIndexBlocks: Object.fromEntries(
        [...(this.nats?.kvView.index.engines() ?? new Map())]
          .filter(([, e]) => e.trusted && e.numBlocks > 0)
          .map(([id, e]) => [id, e.numBlocks]),
      ),
      kvEventBatchesSeen: this.nats?.kvView.numBatches ?? 0,
      kvEventGaps: this.nats?.kvView.numGaps ?? 0,
      kvEventLagMs: this.nats?.kvView.lastLagMs ?? -1,
      kvEventBatchesPublished: this.nats?.kvEvents?.numPublished ?? 0,
      routerMode: this.config.routerMode,
      routedToEngine: this.nats?.backend.routing.routed ?? 0,
      routedShared: this.nats?.backend.routing.shared ?? 0,
      rerouted: this.nats?.backend.routing.rerouted ?? 0,
      routedOverlapBlocks: this.nats?.backend.routing.overlapBlocks ?? 0,
      routedPromptBlocks: this.nats?.backend.routing.promptBlocks ?? 0,
      takenFromOwnLane: this.nats?.worker?.numRouted ?? 0,
      orphansStopped: this.nats?.worker?.numOrphansStopped ?? 0,
      liveEngines: (this.nats?.loads.live() ?? []).map((e) => e.engineId).join(','),
      role: this.config.role,
      kvAddress: this.nats?.kv?.address ?? '',
      kvDataAddress: this.nats?.kv?.dataAddress ?? '',
      kvBulkFetches: this.nats?.kv?.fetchCounters.numBulkFetches ?? 0,
      kvGrpcFetches: this.nats?.kv?.fetchCounters.numGrpcFetches ?? 0,
      kvBulkFallbacks: this.nats?.kv?.fetchCounters.numBulkFallbacks ?? 0,
      kvPrefetches: this.nats?.kv?.counts.prefetches ?? {},
      kvFetchedBlocks: this.nats?.kv?.counts.fetchedBlocks ?? 0,
      kvFetchedBytes: this.nats?.kv?.counts.fetchedBytes ?? 0,
      kvServedPages: this.nats?.kv?.serving.numPagesServed ?? 0,
      kvRefusedFetches: this.nats?.kv?.serving.numRefused ?? 0,
      kvOffloadedPages: this.nats?.kv?.offloader?.counters.numAccepted ?? 0,
      kvOffloadDropped: this.nats?.kv?.offloader?.counters.numDropped ?? 0,
      kvOffloadQueuedBytes: this.nats?.kv?.offloader?.numQueuedBytes ?? 0,
      prefillJobs: this.nats?.kv?.counts.prefillJobs ?? 0,
      prefillJobFailures: this.nats?.kv?.counts.prefillJobFailures ?? 0,
      kvFetchBandwidthMBps: Math.round((this.nats?.kv?.fetcher.bandwidth.perMs ?? 0) / 1000),
      kvPrefillTokensPerS: Math.round((this.nats?.kv?.fetcher.prefillRate.perMs ?? 0) * 1000),
      memoryMiB: processMemoryMiB(),
      // (token, expert) pairs this engine routed in the last expertLoadWindowS, [layer][expert].
      expertLoadWindowS: this.config.expertLoadWindowMs / 1000,
      expertLoad: this.#expertLoad?.totals(Date.now()) ?? [],
      // The same summed over every engine of the cluster heard from (NATS), and who they are; without
      // NATS, this engine's alone (engines comma-separated, this one first).
      ...(this.#expertLoad
        ? {
            clusterExpertLoad: this.#loadExchange?.merged() ?? this.#expertLoad.totals(Date.now()),
            clusterExpertLoadEngines: [this.config.instanceName, ...(this.#loadExchange?.peers ?? [])].join(','),
          }
        : {}),
    };
  }

  /** `telemetry` (started by main.ts before anything else) adds spans, metrics and GET /metrics. */
  static async start(config: GatewayConfig, telemetry?: Telemetry): Promise<Gateway> {
    if (!config.serveQueue && !config.nats)
      throw new GatewayConfigError('a frontend-only gateway (--no-engine) needs the NATS request queue (--nats-url)');
    if (config.role !== 'both' && !config.nats)
      throw new GatewayConfigError(`--role ${config.role} needs the NATS request queue (--nats-url)`);
    if (config.role !== 'both' && !config.serveQueue)
      throw new GatewayConfigError(
        `--role ${config.role} is an engine role; a frontend-only gateway (--no-engine) has none`,
      );
    if (config.eplbWarmup && config.workers.length === 0)
      throw new GatewayConfigError(
        '--eplb-warmup-s places over a --workers list (the registry path re-places on its own)',
      );
    if (config.rebalance && config.rebalance.intervalMs > 0 && config.workers.length === 0)
      throw new GatewayConfigError(
        '--rebalance-interval-s re-places over a --workers list (the registry path re-places on its own)',
      );
    if (config.discoverWorkers > 0 && !config.nats)
      throw new GatewayConfigError('discovering expert workers (--discover-workers) needs NATS (--nats-url)');
    const conn = config.nats ? await openConnection(config.nats, config) : undefined;
    let engine: OpenedEngine | undefined;
    let served: ServedModel;
    let nats: NatsParts | undefined;
    try {
      engine = config.serveQueue ? await openEngine(config, conn, telemetry) : undefined;
      served = engine ? servedOf(engine.bundle) : await openServedModel(config.modelDir);
      nats =
        conn && config.nats
          ? await openNats(
              conn,
              config.nats,
              config,
              served,
              engine ? { bundle: engine.bundle, loop: engine.loop } : undefined,
              engine?.telemetry,
              engine?.kvSink ?? {},
            )
          : undefined;
    } catch (error) {
      engine?.warmup?.stop();
      engine?.loadExchange?.stop();
      await engine?.rebalancer?.stop();
      await engine?.loop.stop(0);
      await engine?.bundle.close();
      await engine?.controller?.stop();
      await conn?.close(2000);
      throw error;
    }
    const kvParts = nats?.kv;
    if (kvParts && engine)
      engine.stepSink.observe = (tokens, sequences, ms) => kvParts.observeStep(tokens, sequences, ms);
    const backend = nats?.backend ?? localBackendOf(engine, config);
    const natsParts = nats;
    if (natsParts && telemetry) {
      telemetry.metrics.observeRouter({
        decisions: () => natsParts.backend.routing,
        indexEntries: () => natsParts.kvView.index.numEntries,
        eventGaps: () => natsParts.kvView.numGaps,
        eventLagS: () => {
          const lagMs = natsParts.kvView.lastLagMs;
          return lagMs === undefined ? undefined : lagMs / 1000;
        },
      });
    }
    if (engine) {
      const { bundle } = engine;
      engine.telemetry?.observeEngine({
        model: bundle.config.name,
        numRunning: () => bundle.engine.numRunning,
        numWaiting: () => bundle.engine.numWaiting,
        kvUsage: () => bundle.kv.usage,
        // vllm:num_requests_waiting counts the model's JetStream backlog too.
        ...(natsParts ? { queueDepth: () => natsParts.backlog.numWaiting } : {}),
      });
    }
    const ref: { gateway?: Gateway } = {};
    const live = await openLivePage(config, served, engine, natsParts, telemetry, () => ref.gateway?.state);
    // Long prompts are tokenized on a thread of their own: the event loop keeps answering meanwhile.
    const { tokenizerPath } = await readModelDirInfo(config.modelDir);
    const offThread = new OffThreadTokenizer(
      served.tokenizer,
      {
        ...(tokenizerPath !== undefined ? { tokenizerPath } : {}),
        bosTokenId: served.tokenizer.bosTokenId,
        eosTokenId: served.tokenizer.eosTokenId,
      },
      { inlineMaxChars: config.tokenizeInlineMaxChars },
    );
    const http = createHttpServer({
      backend,
      bodyLimitBytes: config.bodyLimitBytes,
      ...(config.auth ? { auth: config.auth } : {}),
      tokenize: (text, maxTokens) => offThread.encode(text, maxTokens),
      extraRoutes: (app) => {
        app.addHook('onClose', async () => offThread.close());
        app.get('/v1/switchyard/stats', async () => ref.gateway?.stats() ?? {});
        // A re-placement now, from this gateway's window (`?force=true`: whatever it gains).
        app.post<{ Querystring: { force?: string } }>('/v1/switchyard/rebalance', async (request, reply) => {
          const result = await ref.gateway?.rebalance(request.query.force === 'true');
          if (result) return result;
          return reply.code(409).send({
            error: {
              message: 'this gateway does not re-place experts: start it with --placement eplb over --workers',
              type: 'invalid_request_error',
              param: null,
              code: 'rebalance_unavailable',
            },
          });
        });
        live.register(app);
        if (telemetry)
          app.get('/metrics', async (_request, reply) =>
            reply.type(PROMETHEUS_CONTENT_TYPE).send(await telemetry.renderPrometheus()),
          );
      },
    });
    const url = await http.listen({ host: config.host, port: config.port });
    ref.gateway = new Gateway({
      config,
      served,
      bundle: engine?.bundle,
      loop: engine?.loop,
      backend,
      http,
      executor: engine?.executor,
      url,
      nats,
      telemetry,
      controller: engine?.controller,
      live,
      expertLoad: engine?.expertLoad,
      loadExchange: engine?.loadExchange,
      warmup: engine?.warmup,
      rebalancer: engine?.rebalancer,
    });
    return ref.gateway;
  }

  /**
   * Bounded shutdown: not ready; with NATS, stop pulling, finish what this engine serves within the
   * deadline and hand the rest back to the queue (other gateways take it); then close HTTP, NATS and
   * the engine.
   */
  async stop(deadlineMs = 10_000): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'draining') return;
    this.#state = 'draining';
    this.backend.setReady(false);
    this.#warmup?.stop();
    this.#loadExchange?.stop();
    await this.#rebalancer?.stop();
    const deadline = Date.now() + deadlineMs;
    if (this.nats) {
      const { backend, worker } = this.nats;
      await Promise.all([worker?.drain(deadlineMs), waitUntil(() => backend.numInFlight === 0, deadline)]);
    }
    await this.loop?.stop(Math.max(0, deadline - Date.now()));
    this.#live.close();
    await this.http.close();
    await this.controller?.stop();
    // A leaving engine says so (last load report, an empty KV snapshot), so frontends drop it at once.
    if (this.nats) await closeNats(this.nats);
    await this.bundle?.close();
    await this.telemetry?.shutdown();
    this.#state = 'stopped';
  }
}

/** What the frontend and the router need of the model: no weights. */
export interface ServedModel {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly hasher: PrefixHasher;
}

function servedOf(bundle: EngineBundle): ServedModel {
  return { config: bundle.config, tokenizer: bundle.tokenizer, hasher: bundle.hasher };
}

/** A frontend-only gateway's model: config, tokenizer and KV namespace, read without loading any weights. */
async function openServedModel(modelDir: string): Promise<ServedModel> {
  const info = await readModelDirInfo(modelDir);
  const tokenizer = info.tokenizerPath ? await loadHfTokenizer(info.tokenizerPath, info.config) : createByteTokenizer();
  const hasher = new PrefixHasher({
    modelId: info.config.name,
    weightsDigestHex: info.weightsDigest,
    kvDtype: 'f32',
    blockSize: KV_BLOCK_SIZE,
  });
  return { config: info.config, tokenizer, hasher };
}

const KV_BLOCK_SIZE = 16;

interface OpenedEngine {
  readonly bundle: EngineBundle;
  readonly loop: EngineLoop;
  readonly executor: RemoteExpertExecutor | undefined;
  readonly controller: PlacementController | undefined;
  readonly telemetry: EngineTelemetry | undefined;
  /** The engine's KV events go to the NATS publisher once it exists (NATS mode only). */
  readonly kvSink: { add?: (event: BlockPoolEvent) => void };
  /** Step times feed the page fetcher's prefill-rate estimate once the NATS parts exist. */
  readonly stepSink: { observe?: (tokens: number, sequences: number, ms: number) => void };
  /** The engine's routing decisions over the last `expertLoadWindowMs`. */
  readonly expertLoad: ExpertLoadWindow;
  /** The other engines' windows, over NATS. */
  readonly loadExchange: ExpertLoadExchange | undefined;
  /** The one switch to a load-aware placement after a warm-up (`eplbWarmup`). */
  readonly warmup: WarmupPlacement | undefined;
  /** Live re-placement (`rebalance`). */
  readonly rebalancer: Rebalancer | undefined;
}

/** The model's weights, the experts (in process, listed workers or discovered ones), the engine and its loop. */
async function openEngine(
  config: GatewayConfig,
  conn: ClusterConnection | undefined,
  telemetry: Telemetry | undefined,
): Promise<OpenedEngine> {
  const distributed = config.workers.length > 0 || config.discoverWorkers > 0;
  const model = await loadModelDir(config.modelDir, { routedExperts: !distributed });
  const discovered =
    conn && config.workers.length === 0 && config.discoverWorkers > 0
      ? await discoverExperts(conn, config, model, telemetry)
      : undefined;
  const cluster =
    config.workers.length > 0
      ? await connectExpertCluster({
          addresses: config.workers,
          config: model.config,
          weightsDigest: model.weightsDigest,
          ...(config.workerTls ? { tls: config.workerTls } : {}),
          strategy: config.placement,
          replication: config.replication,
          ...(config.loadAware ? { loadAware: config.loadAware } : {}),
          deadlineMs: config.dispatchDeadlineMs,
          connectTimeoutMs: config.workerConnectTimeoutMs,
          ...(telemetry
            ? { tracer: telemetry.tracer, onDispatch: telemetry.metrics.recordDispatch.bind(telemetry.metrics) }
            : {}),
        })
      : undefined;
  const executor = cluster?.executor ?? discovered?.executor;
  const engineTelemetry = telemetry
    ? new EngineTelemetry(telemetry, {
        config: model.config,
        expertDtype: config.expertDtype,
        ...(executor
          ? {
              workerOf: (layer: number, expert: number) => executor.placement.replicas[layer]?.[expert]?.[0] ?? -1,
              workerName: (index: number) => executor.placement.workers[index] ?? String(index),
            }
          : {}),
      })
    : undefined;
  const expertLoad = new ExpertLoadWindow({
    numLayers: model.config.numLayers,
    numExperts: model.config.numExperts,
    windowMs: config.expertLoadWindowMs,
  });
  telemetry?.metrics.observeExpertLoad(() => expertLoad.totals(Date.now()));
  // With NATS, every engine shares its window with the others: a re-placement balances what the whole
  // cluster routed, not what this gateway happened to see.
  const loadExchange = conn
    ? new ExpertLoadExchange(conn, {
        model: model.config.name,
        engineId: config.instanceName,
        numLayers: model.config.numLayers,
        numExperts: model.config.numExperts,
        local: () => expertLoad.totals(Date.now()),
      })
    : undefined;
  const clusterLoads = () => loadExchange?.merged() ?? expertLoad.totals(Date.now());
  const onRouted: RoutingObserver = (layer, chunks, routes) => {
    expertLoad.add(layer, routes.expertIds, Date.now());
    engineTelemetry?.onRouted(layer, chunks, routes);
  };
  const kvSink: OpenedEngine['kvSink'] = {};
  const bundle = await createEngine(
    model,
    {
      onKvEvent: (event) => kvSink.add?.(event),
      expertDtype: config.expertDtype,
      denseDtype: config.denseDtype,
      ...(config.intraOpThreads === undefined ? {} : { session: { intraOpThreads: config.intraOpThreads } }),
      blockSize: KV_BLOCK_SIZE,
      ...(config.numKvBlocks !== undefined ? { numKvBlocks: config.numKvBlocks } : {}),
      microBatches: config.microBatches,
      scheduler: { maxBatchedTokens: config.maxBatchedTokens, maxRunningSequences: config.maxRunningSequences },
      onRouted,
    },
    executor,
  );
  const stepSink: OpenedEngine['stepSink'] = {};
  const loop = new EngineLoop(bundle.engine, undefined, async (step) => {
    const started = performance.now();
    const stats = await (engineTelemetry ? engineTelemetry.traceStep(step) : step());
    stepSink.observe?.(stats.numBatchedTokens, stats.numSequences, performance.now() - started);
    return stats;
  });
  // Started last: nothing after it can fail and leave its timer behind.
  const warmup =
    config.eplbWarmup && cluster
      ? WarmupPlacement.start({
          target: cluster.executor,
          config: model.config,
          settings: config.eplbWarmup.settings,
          loads: clusterLoads,
          warmupMs: config.eplbWarmup.warmupMs,
          loadDeadlineMs: Math.max(config.dispatchDeadlineMs, 120_000),
          log: (line) => process.stdout.write(`gateway ${config.instanceName}: ${line}\n`),
        })
      : undefined;
  const rebalancer =
    config.rebalance && cluster
      ? await Rebalancer.start({
          target: cluster.executor,
          store: conn ? await PlacementStore.open(conn) : new LocalPlacementStore(),
          config: model.config,
          settings: config.rebalance.settings,
          loads: clusterLoads,
          intervalMs: config.rebalance.intervalMs,
          threshold: config.rebalance.threshold,
          loadDeadlineMs: Math.max(config.dispatchDeadlineMs, 120_000),
          log: (line) => process.stdout.write(`gateway ${config.instanceName}: ${line}\n`),
        })
      : undefined;
  return {
    bundle,
    loop,
    executor,
    controller: discovered?.controller,
    telemetry: engineTelemetry,
    kvSink,
    stepSink,
    expertLoad,
    loadExchange,
    warmup,
    rebalancer,
  };
}

/**
 * The live page's view of this gateway (docs/architecture.md §7): its engine, its placement, its
 * metrics' running totals; a frontend-only gateway shows its queue and no engine.
 */
async function openLivePage(
  config: GatewayConfig,
  served: ServedModel,
  engine: OpenedEngine | undefined,
  nats: NatsParts | undefined,
  telemetry: Telemetry | undefined,
  state: () => GatewayState | undefined,
): Promise<{ register(app: FastifyInstance): void; close(): void }> {
  const assets = await loadLiveAssets();
  const bundle = engine?.bundle;
  const executor = engine?.executor;
  const source: LiveSource = {
    instance: config.instanceName,
    model: served.config.name,
    queue: nats ? 'nats' : 'in-process',
    hasEngine: engine !== undefined,
    state: () => state() ?? 'starting',
    numRunning: () => bundle?.engine.numRunning ?? 0,
    numWaiting: () => (bundle?.engine.numWaiting ?? 0) + (nats?.backlog.numWaiting ?? 0),
    kvUsage: () => bundle?.kv.usage ?? 0,
    workers: () =>
      executor ? executor.placement.workers.map((address, i) => ({ address, up: executor.isWorkerUp(i) })) : [],
    placement: () => executor?.placement,
    totals: () =>
      telemetry?.metrics.totals() ?? { computedTokens: 0, activeParams: 0, flops: 0, expertTokens: undefined },
    numLayers: served.config.numLayers,
    numExperts: served.config.numExperts,
  };
  let page: { close(): void } | undefined;
  return {
    register: (app) => {
      page = registerLivePage(app, assets, source);
    },
    close: () => page?.close(),
  };
}

function localBackendOf(engine: OpenedEngine | undefined, config: GatewayConfig): ReadyBackend {
  if (!engine) throw new GatewayConfigError('a frontend-only gateway (--no-engine) needs the NATS request queue');
  return new LocalBackend(engine.bundle, engine.loop, config.maxQueuedRequests, engine.telemetry);
}

async function waitUntil(done: () => boolean, deadline: number): Promise<void> {
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

/**
 * This process's memory, MiB: resident set, the JS heap in use, memory of C++ objects bound to JS
 * (external, array buffers included) and of array buffers alone. RSS growing while the other three stay
 * flat points at native allocations (onnxruntime arenas, the allocator), not at JS objects.
 */
function processMemoryMiB(): { rss: number; heapUsed: number; external: number; arrayBuffers: number } {
  const m = process.memoryUsage();
  const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
  return { rss: mib(m.rss), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers) };
}
