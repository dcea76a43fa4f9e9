import { randomUUID } from 'node:crypto';
import type { EngineBundle, EngineLoop, GenerateRequest, TokenEvent } from '@switchyard/engine';
import type { BlockPoolEvent } from '@switchyard/kv-cache';
import type { EngineTelemetry } from '@switchyard/telemetry';
import {
  chooseEngine,
  ClusterConnection,
  EngineLoadReporter,
  EngineLoads,
  KvEventPublisher,
  KvEventStream,
  KvView,
  QueueBacklog,
  NatsBackend,
  QueueWorker,
  RequestQueue,
  RouteLedger,
  FrontendHeartbeat,
  TokenSubscriber,
  type RouteDecision,
} from '@switchyard/cluster';
import type { GatewayConfig, NatsSettings, ServedModel } from './gateway.ts';
import { KvParts } from './kv-parts.ts';

/** How often a frontend says it is alive; engines take it as gone after `--frontend-ttl-ms` (1.5 s). */
const FRONTEND_HEARTBEAT_MS = 250;

/**
 * The NATS side of a clustered gateway. Frontend: its backend (with the KV-aware router), its view of
 * every engine's KV cache and of the engines' load. Engine (unless frontend-only): its queue consumer,
 * its KV event publisher and its load reporter.
 */
export interface NatsParts {
  readonly conn: ClusterConnection;
  readonly tokens: TokenSubscriber;
  readonly backend: NatsBackend;
  readonly kvView: KvView;
  readonly loads: EngineLoads;
  /** The model's shared-queue backlog (added to `vllm:num_requests_waiting`). */
  readonly backlog: QueueBacklog;
  /** This frontend's heartbeat, by which engines know its requests still have a reader. */
  readonly heartbeat: FrontendHeartbeat;
  readonly worker: QueueWorker | undefined;
  readonly kvEvents: KvEventPublisher | undefined;
  readonly loadReporter: EngineLoadReporter | undefined;
  /** The engine's KV pages on the network (engines only). */
  readonly kv: KvParts | undefined;
}

export function openConnection(settings: NatsSettings, config: GatewayConfig): Promise<ClusterConnection> {
  const { url, namespace, auth } = settings;
  return ClusterConnection.open({
    url,
    ...(namespace !== undefined ? { namespace } : {}),
    name: config.instanceName,
    ...auth,
  });
}

export async function openNats(
  conn: ClusterConnection,
  settings: NatsSettings,
  config: GatewayConfig,
  served: ServedModel,
  engine: { readonly bundle: EngineBundle; readonly loop: EngineLoop } | undefined,
  telemetry: EngineTelemetry | undefined,
  kvSink: { add?: (event: BlockPoolEvent) => void },
): Promise<NatsParts> {
  const log = (line: string) => process.stdout.write(`gateway ${config.instanceName}: ${line}\n`);
  const queue = await RequestQueue.open(conn, settings.queue);
  // Its token, cancel and resend subjects carry this frontend's name, so NATS permissions can confine a
  // frontend's user to its own requests. A restart under the same name is told apart by the heartbeat's life.
  const frontendId = config.instanceName;
  const tokens = new TokenSubscriber(conn, {}, frontendId);
  const { config: model, tokenizer, hasher } = served;
  const engineId = config.instanceName;
  const kvStream = await KvEventStream.open(conn);
  const namespace = hasher.namespaceHex();
  const kvView = await KvView.open(kvStream, {
    namespace,
    maxEntries: config.kvIndexMaxEntries,
    snapshotRequestIntervalMs: 1_000,
  });
  // An engine that leaves (said so, or silent past the TTL) has its blocks dropped from the index.
  // Set once the backend exists: an engine that leaves hands its routed requests to the others at once.
  const late: { rerouteFrom?: (engineId: string) => number } = {};
  const loads = new EngineLoads(conn, {
    model: model.name,
    ttlMs: config.engineTtlMs,
    onGone: (id) => {
      kvView.index.removeEngine(id);
      const n = late.rerouteFrom?.(id) ?? 0;
      if (n > 0) log(`engine ${id} is gone: ${n} request(s) routed to it published again for any engine`);
    },
  });
  let turn = 0;
  // What this frontend has sent each engine and not yet seen finish (the load reports lag by up to 250 ms).
  const ledger = new RouteLedger();
  const route = (request: GenerateRequest): RouteDecision => {
    const hashes = hasher.hashTokens(request.promptIds, request.cacheSalt ?? '');
    const overlap = kvView.index.overlap(hashes);
    for (const [id, blocks] of ledger.predictedOverlap(hashes)) overlap.set(id, Math.max(blocks, overlap.get(id) ?? 0));
    const pending = ledger.pending();
    // A load report older than this frontend's last news of an engine (a request it sent there ended
    // since) still counts that request: for such an engine the ledger's own figures are the better view.
    const engines = loads.routable().map((e) => {
      const changed = ledger.changedAtMs(e.engineId);
      const reported = loads.reportedAtMs(e.engineId);
      if (changed === undefined || reported === undefined || changed <= reported) return e;
      const p = pending.get(e.engineId);
      return { ...e, numRunning: p?.sequences ?? 0, numWaiting: 0, numPrefillTokens: p?.prefillTokens ?? 0 };
    });
    const decision = chooseEngine({
      mode: config.routerMode,
      engines,
      overlap,
      numPromptBlocks: hashes.length,
      promptTokens: request.promptIds.length,
      blockSize: hasher.blockSize,
      fetch: config.kvFetch !== 'never',
      pending,
      ...(hashes[0] !== undefined ? { firstBlockHash: hashes[0] } : {}),
      pick: config.routerMode === 'random' ? Math.random() : turn++,
    });
    if (decision.engineId !== undefined) {
      const computeTokens =
        decision.computeTokens ?? request.promptIds.length - decision.overlapBlocks * hasher.blockSize;
      ledger.routed(request.id, decision.engineId, Math.max(0, computeTokens), hashes);
    }
    return decision;
  };
  const onEvent = (event: TokenEvent): void => {
    if (event.finishReason !== undefined) ledger.finished(event.requestId);
    else ledger.prefilled(event.requestId);
  };
  const backlog = new QueueBacklog(queue, model.name, 1_000);
  await backlog.poll();
  const backend = new NatsBackend({
    conn,
    queue,
    tokens,
    model: {
      modelId: model.name,
      maxContext: model.maxContext,
      vocabSize: model.vocabSize,
      tokenizer,
      weightsDigest: hasher.weightsDigestHex,
    },
    maxInFlight: config.maxQueuedRequests,
    route,
    onEvent,
    rerouteAfterMs: config.rerouteAfterMs,
    frontendId,
  });
  // Engines stop this frontend's requests when these heartbeats stop (it died: nobody reads the tokens).
  const heartbeat = new FrontendHeartbeat(conn, frontendId, FRONTEND_HEARTBEAT_MS);
  late.rerouteFrom = (id) => backend.rerouteFrom(id);
  if (!engine)
    return {
      conn,
      tokens,
      backend,
      kvView,
      loads,
      backlog,
      heartbeat,
      worker: undefined,
      kvEvents: undefined,
      loadReporter: undefined,
      kv: undefined,
    };
  const { bundle, loop } = engine;
  const kv = await KvParts.open({ config, bundle, kvView, loads, backend, engineId, log });
  const worker = await QueueWorker.start(
    { conn, queue, loop },
    {
      model: model.name,
      weightsDigest: hasher.weightsDigestHex,
      maxRunning: config.maxRunningSequences,
      engineId,
      frontendTtlMs: config.frontendTtlMs,
      prepare: kv.prepare,
      // A prefill engine takes only the prompts decode engines send it, never new requests.
      sharedLane: config.role !== 'prefill',
      ...(telemetry ? { telemetry } : {}),
    },
  );
  const kvEvents = new KvEventPublisher(kvStream, {
    engineId,
    epoch: randomUUID(),
    namespace,
    intervalMs: 50,
    snapshotIntervalMs: 30_000,
    heldHashes: () => bundle.pool.cachedHashes(),
    log,
  });
  kvSink.add = kvEvents.add;
  const loadReporter = new EngineLoadReporter(
    conn,
    () => ({
      engineId,
      model: model.name,
      numRunning: bundle.engine.numRunning,
      numWaiting: bundle.engine.numWaiting,
      numPrefillTokens: bundle.engine.numPendingPrefillTokens,
      maxRunning: config.maxRunningSequences,
      kvUsage: bundle.kv.usage,
      role: config.role,
      kvAddress: kv.address,
      kvDataAddress: kv.dataAddress,
    }),
    250,
  );
  return { conn, tokens, backend, kvView, loads, backlog, heartbeat, worker, kvEvents, loadReporter, kv };
}

/** Says goodbye (load reporter, an empty KV snapshot) and closes everything NATS; the connection last. */
export async function closeNats(nats: NatsParts): Promise<void> {
  nats.loadReporter?.stop();
  nats.heartbeat.stop();
  nats.backlog.stop();
  await nats.kv?.close();
  await nats.kvEvents?.stop({ cleared: true });
  await nats.kvView.stop();
  nats.loads.stop();
  nats.backend.close();
  nats.tokens.close();
  await nats.conn.close(2000);
}
