import type { EngineBundle, GenerateRequest, TokenEvent } from '@switchyard/engine';
import type { BlockHash } from '@switchyard/kv-cache';
import { roleOf, type EngineLoads, type KvView, type NatsBackend } from '@switchyard/cluster';
import {
  enginePageHandler,
  KvClients,
  newServingCounters,
  PageFetcher,
  PageOffloader,
  type KvFetchCounters,
  type PageServingCounters,
  type PageSource,
  type PrefetchResult,
} from '@switchyard/kv-transfer';
import { createKvBulkServer, createKvPageServer, type KvBulkServer, type KvPageServer } from '@switchyard/rpc';
import type { KvTransferRecord } from '@switchyard/telemetry';
import type { GatewayConfig } from './gateway.ts';

type RequestTrace = { recordKvTransfer(kv: KvTransferRecord): void } | undefined;

/** Counters of this engine's KV traffic (`GET /v1/switchyard/stats`). */
export interface KvTrafficCounts {
  readonly prefetches: Record<string, number>;
  fetchedBlocks: number;
  fetchedBytes: number;
  prefillJobs: number;
  prefillJobFailures: number;
}

/**
 * An engine's KV pages on the network (docs/architecture.md §6): its KvPageService for peers, the
 * fetch-before-admission of prompts' prefixes held elsewhere, the write-behind offload of evicted pages
 * to a page store, and — for a `decode` engine — handing new prompts to a `prefill` engine first.
 */
export class KvParts {
  readonly server: KvPageServer;
  readonly address: string;
  /** The KV bulk data plane beside `server`, on the same handler. */
  readonly bulkServer: KvBulkServer;
  readonly dataAddress: string;
  readonly fetcher: PageFetcher;
  readonly offloader: PageOffloader | undefined;
  readonly serving: PageServingCounters;
  readonly counts: KvTrafficCounts;
  readonly #clients: KvClients;
  readonly #config: GatewayConfig;
  readonly #bundle: EngineBundle;
  readonly #loads: EngineLoads;
  readonly #backend: NatsBackend;
  readonly #log: (line: string) => void;

  private constructor(parts: {
    server: KvPageServer;
    address: string;
    bulkServer: KvBulkServer;
    dataAddress: string;
    fetcher: PageFetcher;
    offloader: PageOffloader | undefined;
    serving: PageServingCounters;
    counts: KvTrafficCounts;
    clients: KvClients;
    config: GatewayConfig;
    bundle: EngineBundle;
    loads: EngineLoads;
    backend: NatsBackend;
    log: (line: string) => void;
  }) {
    this.server = parts.server;
    this.address = parts.address;
    this.bulkServer = parts.bulkServer;
    this.dataAddress = parts.dataAddress;
    this.fetcher = parts.fetcher;
    this.offloader = parts.offloader;
    this.serving = parts.serving;
    this.counts = parts.counts;
    this.#clients = parts.clients;
    this.#config = parts.config;
    this.#bundle = parts.bundle;
    this.#loads = parts.loads;
    this.#backend = parts.backend;
    this.#log = parts.log;
  }

  static async open(parts: {
    config: GatewayConfig;
    bundle: EngineBundle;
    kvView: KvView;
    loads: EngineLoads;
    backend: NatsBackend;
    engineId: string;
    log: (line: string) => void;
  }): Promise<KvParts> {
    const { config, bundle, kvView, loads, engineId, log } = parts;
    const namespace = bundle.hasher.namespaceHex();
    const serving = newServingCounters();
    const handler = enginePageHandler(bundle.pages, namespace, serving);
    const logError = (message: string, err: unknown): void =>
      log(`${message}: ${err instanceof Error ? err.message : String(err)}`);
    const server = await createKvPageServer({ host: config.host, port: config.kvPort, handler, logError });
    const bulkServer = await createKvBulkServer({
      host: config.host,
      port: config.kvDataPort,
      handler,
      logError,
    }).catch(async (error: unknown) => {
      await server.close(0);
      throw error;
    });
    const clients = new KvClients(config.kvFetchDeadlineMs, { transport: config.kvTransport });
    const counts: KvTrafficCounts = {
      prefetches: {},
      fetchedBlocks: 0,
      fetchedBytes: 0,
      prefillJobs: 0,
      prefillJobFailures: 0,
    };
    const sources = (hashes: readonly BlockHash[], from: number): PageSource[] => {
      const out: PageSource[] = [];
      for (const [id, numBlocks] of kvView.index.runsFrom(hashes, from)) {
        if (id === engineId) continue;
        const load = loads.get(id);
        if (load?.kvAddress === undefined) continue;
        const kind = roleOf(load) === 'store' ? 'store' : 'engine';
        const data = load.kvDataAddress === undefined ? {} : { dataAddress: load.kvDataAddress };
        out.push({ id, address: load.kvAddress, ...data, kind, numBlocks });
      }
      return out;
    };
    const fetcher = new PageFetcher({
      access: bundle.pages,
      hasher: bundle.hasher,
      namespace,
      sources,
      clients,
      mode: config.kvFetch,
      deadlineMs: config.kvFetchDeadlineMs,
      onResult: (r) => {
        counts.prefetches[r.outcome] = (counts.prefetches[r.outcome] ?? 0) + 1;
        counts.fetchedBlocks += r.numFetchedBlocks;
        counts.fetchedBytes += r.bytes;
      },
      onError: (err) => log(`page fetch: ${err.message}`),
    });
    const offloader = config.kvOffload
      ? new PageOffloader({
          namespace,
          target: () => {
            const store = loads.live().find((l) => roleOf(l) === 'store' && l.kvAddress !== undefined);
            return store?.kvAddress === undefined ? undefined : clients.get(store.kvAddress);
          },
          // NOTE: what waits for the store is bounded by bytes, not pages; past it the oldest are dropped.
          maxQueuedBytes: 64 * 1024 * 1024,
          minBatchBytes: 1024 * 1024,
          flushIntervalMs: 100,
          // NOTE: not the fetch deadline: an offload is off every request's path, and a push that times
          // out under load drops its pages, so it gets longer.
          deadlineMs: Math.max(10_000, config.kvFetchDeadlineMs),
          onError: (err) => log(`page offload: ${err.message}`),
        })
      : undefined;
    if (offloader) bundle.pages.onEvicted(offloader.offer);
    const host = config.kvAdvertiseHost.includes(':') ? `[${config.kvAdvertiseHost}]` : config.kvAdvertiseHost;
    return new KvParts({
      server,
      address: `${host}:${server.port}`,
      bulkServer,
      dataAddress: `${host}:${bulkServer.port}`,
      fetcher,
      offloader,
      serving,
      counts,
      clients,
      config,
      bundle,
      loads,
      backend: parts.backend,
      log,
    });
  }

  /** Page fetches by transport (bulk data plane, gRPC, fallbacks from one to the other). */
  get fetchCounters(): KvFetchCounters {
    return this.#clients.counters;
  }

  /** Feeds the prefill-rate estimate from a step (steps that were mostly prefill). */
  observeStep(numBatchedTokens: number, numSequences: number, ms: number): void {
    if (numBatchedTokens >= 2 * numSequences && numBatchedTokens >= 16)
      this.fetcher.prefillRate.observe(numBatchedTokens, ms);
  }

  /**
   * The QueueWorker's `prepare`: make the prompt's prefix local if another node holds it (and it pays),
   * and on a `decode` engine have a `prefill` engine compute what nobody holds. Never throws. Nothing
   * for a request that scores its prompt: the scheduler computes every prompt row of it anyway.
   */
  readonly prepare = async (request: GenerateRequest, trace: RequestTrace): Promise<void> => {
    if (request.params.promptLogprobs !== undefined) return;
    const salt = request.cacheSalt ?? '';
    let result = await this.fetcher.prefetch(request.promptIds, salt);
    if (this.#config.role === 'decode' && covered(result) < result.numPromptBlocks) {
      const fetched = await this.#prefillElsewhere(request, salt);
      if (fetched) result = merge(result, fetched);
    }
    trace?.recordKvTransfer(record(result, this.#bundle.pages.blockSize, request.promptIds.length));
  };

  /** Releases the page service and clients; pending offloads are dropped. */
  async close(): Promise<void> {
    this.#bundle.pages.onEvicted(undefined);
    await this.offloader?.stop();
    await Promise.all([this.server.close(1_000), this.bulkServer.close(1_000)]);
    this.#clients.close();
  }

  async #prefillElsewhere(request: GenerateRequest, salt: string): Promise<PrefetchResult | undefined> {
    const prefill = this.#loads
      .live()
      .filter((l) => roleOf(l) === 'prefill')
      .sort((a, b) => a.numRunning + a.numWaiting - (b.numRunning + b.numWaiting))[0];
    if (prefill === undefined) return undefined;
    this.counts.prefillJobs++;
    const job: GenerateRequest = {
      id: `${request.id}.prefill`,
      promptIds: request.promptIds,
      params: { ...request.params, maxTokens: 1, stop: [], temperature: 0 },
      ...(request.cacheSalt !== undefined ? { cacheSalt: request.cacheSalt } : {}),
    };
    const done = await new Promise<TokenEvent | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.#backend.abort(job.id);
        resolve(undefined);
      }, this.#config.prefillDeadlineMs);
      try {
        this.#backend.submitTo(prefill.engineId, job, (event) => {
          if (event.finishReason === undefined) return;
          clearTimeout(timer);
          resolve(event);
        });
      } catch (err) {
        clearTimeout(timer);
        this.#log(`prefill job: ${err instanceof Error ? err.message : String(err)}`);
        resolve(undefined);
      }
    });
    if (done?.finishReason === undefined || done.finishReason === 'error' || done.finishReason === 'abort') {
      this.counts.prefillJobFailures++;
      return undefined;
    }
    // The prefill engine's KV events reach this engine's index within a publish interval or two.
    let last: PrefetchResult | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      last = await this.fetcher.prefetch(request.promptIds, salt, 'always');
      if (covered(last) >= last.numPromptBlocks) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return last;
  }
}

function covered(r: PrefetchResult): number {
  return r.numLocalBlocks + r.numFetchedBlocks;
}

/** A first prefetch and the one after a prefill job, as one request's record. */
function merge(first: PrefetchResult, second: PrefetchResult): PrefetchResult {
  return {
    ...second,
    numLocalBlocks: first.numLocalBlocks,
    numFetchedBlocks: first.numFetchedBlocks + second.numFetchedBlocks,
    bytes: first.bytes + second.bytes,
    ms: first.ms + second.ms,
  };
}

function record(r: PrefetchResult, blockSize: number, numPromptTokens: number): KvTransferRecord {
  const localTokens = r.numLocalBlocks * blockSize;
  const fetchedTokens = r.numFetchedBlocks * blockSize;
  return {
    outcome: r.outcome,
    ...(r.sourceKind !== undefined ? { source: r.sourceKind } : {}),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    localTokens,
    fetchedTokens,
    fetchedPages: r.numFetchedBlocks,
    recomputedTokens: Math.max(0, numPromptTokens - localTokens - fetchedTokens),
    bytes: r.bytes,
    durationMs: r.ms,
  };
}
