import { randomUUID } from 'node:crypto';
import {
  ANY_MODEL,
  ClusterConnection,
  EngineLoadReporter,
  KvEventPublisher,
  KvEventStream,
  natsAuthFromEnv,
} from '@switchyard/cluster';
import { LruPageStore, newStoreCounters, storePageHandler, type StoreCounters } from '@switchyard/kv-transfer';
import { createKvBulkServer, createKvPageServer, type KvBulkServer, type KvPageServer } from '@switchyard/rpc';

/** The page store's resolved configuration (main.ts builds it once from flags and environment). */
export interface KvStoreConfig {
  readonly host: string;
  readonly port: number;
  /** Port of its KV bulk data plane (page fetches over plain TCP); 0 picks a free one. */
  readonly dataPort: number;
  /** Host engines reach this store at (advertised in its load reports). */
  readonly advertiseHost: string;
  readonly capacityBytes: number;
  /** Its id in KV events and load reports. */
  readonly name: string;
  readonly natsUrl: string;
  /** The cluster's namespace on NATS (default `default`). */
  readonly namespace?: string;
}

/**
 * A shared KV page store (LMCache's cache server, Mooncake's store): keeps pages engines push as they
 * evict them, up to `capacityBytes` (least recently used out first), serves them to any engine of the
 * same KV namespace over KvPageService, and tells every frontend what it holds through KV events, like
 * an engine — so routers and fetchers see it as one more holder. Its load reports say `role: store`, so
 * no request is ever routed to it.
 */
export class KvStoreService {
  readonly config: KvStoreConfig;
  readonly store: LruPageStore;
  readonly counters: StoreCounters;
  readonly address: string;
  /** host:port of its KV bulk data plane. */
  readonly dataAddress: string;
  readonly #server: KvPageServer;
  readonly #bulkServer: KvBulkServer;
  readonly #conn: ClusterConnection;
  readonly #publishers: Map<string, KvEventPublisher>;
  readonly #reporter: EngineLoadReporter;

  private constructor(parts: {
    config: KvStoreConfig;
    store: LruPageStore;
    counters: StoreCounters;
    server: KvPageServer;
    bulkServer: KvBulkServer;
    conn: ClusterConnection;
    publishers: Map<string, KvEventPublisher>;
    reporter: EngineLoadReporter;
  }) {
    this.config = parts.config;
    this.store = parts.store;
    this.counters = parts.counters;
    this.#server = parts.server;
    this.#bulkServer = parts.bulkServer;
    this.#conn = parts.conn;
    this.#publishers = parts.publishers;
    this.#reporter = parts.reporter;
    this.address = `${parts.config.advertiseHost}:${parts.server.port}`;
    this.dataAddress = `${parts.config.advertiseHost}:${parts.bulkServer.port}`;
  }

  get port(): number {
    return this.#server.port;
  }

  static async start(config: KvStoreConfig, log: (line: string) => void): Promise<KvStoreService> {
    const conn = await ClusterConnection.open({
      url: config.natsUrl,
      name: config.name,
      ...(config.namespace !== undefined ? { namespace: config.namespace } : {}),
      ...natsAuthFromEnv(process.env),
    });
    try {
      const stream = await KvEventStream.open(conn);
      const epoch = randomUUID();
      const publishers = new Map<string, KvEventPublisher>();
      // NOTE: late-bound, since a publisher's snapshots read the store it publishes for.
      const late: { store?: LruPageStore } = {};
      const publisherOf = (namespace: string): KvEventPublisher => {
        let publisher = publishers.get(namespace);
        if (!publisher) {
          publisher = new KvEventPublisher(stream, {
            engineId: config.name,
            epoch,
            namespace,
            intervalMs: 50,
            snapshotIntervalMs: 30_000,
            heldHashes: () => late.store?.hashesOf(namespace) ?? [],
            log,
          });
          publishers.set(namespace, publisher);
        }
        return publisher;
      };
      const store = new LruPageStore({
        capacityBytes: config.capacityBytes,
        onEvent: (e) => publisherOf(e.namespace).add({ type: e.type, blockHash: e.blockHash, blockId: -1 }),
      });
      late.store = store;
      const counters = newStoreCounters();
      const handler = storePageHandler(store, counters);
      const logError = (message: string, err: unknown): void =>
        log(`${message}: ${err instanceof Error ? err.message : String(err)}`);
      const server = await createKvPageServer({ host: config.host, port: config.port, handler, logError });
      // NOTE: the same handler: a page fetched over gRPC or over the bulk data plane is the same page.
      const bulkServer = await createKvBulkServer({
        host: config.host,
        port: config.dataPort,
        handler,
        logError,
      }).catch(async (error: unknown) => {
        await server.close(0);
        throw error;
      });
      const address = `${config.advertiseHost}:${server.port}`;
      const dataAddress = `${config.advertiseHost}:${bulkServer.port}`;
      const reporter = new EngineLoadReporter(
        conn,
        () => ({
          engineId: config.name,
          model: ANY_MODEL,
          numRunning: 0,
          numWaiting: 0,
          maxRunning: 1,
          kvUsage: store.numBytes / store.capacityBytes,
          role: 'store',
          kvAddress: address,
          kvDataAddress: dataAddress,
        }),
        250,
      );
      return new KvStoreService({ config, store, counters, server, bulkServer, conn, publishers, reporter });
    } catch (error) {
      await conn.close(2_000);
      throw error;
    }
  }

  /** Counters for the log line and tests. */
  stats(): Record<string, number> {
    return {
      pages: this.store.numPages,
      bytes: this.store.numBytes,
      capacityBytes: this.store.capacityBytes,
      evicted: this.store.numEvicted,
      fetches: this.counters.numFetches,
      pagesServed: this.counters.numPagesServed,
      pagesPushed: this.counters.numPagesPushed,
      pagesRejected: this.counters.numPagesRejected,
    };
  }

  /** Says it is leaving (load report, empty KV snapshots), lets transfers finish briefly, closes NATS. */
  async stop(graceMs = 2_000): Promise<void> {
    this.#reporter.stop();
    await Promise.all([...this.#publishers.values()].map((p) => p.stop({ cleared: true })));
    await Promise.all([this.#server.close(graceMs), this.#bulkServer.close(graceMs)]);
    await this.#conn.close(2_000);
  }
}
