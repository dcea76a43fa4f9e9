import {
  ConnectFailedError,
  connectKvPageClient,
  createKvBulkClient,
  type FetchedPages,
  type FetchPagesRequest,
  type KvBulkClient,
  type KvCallOptions,
  type KvPageClient,
} from '@switchyard/rpc';

/** How pages are fetched: over a peer's bulk data plane (plain TCP) when it has one, or always over gRPC. */
export type KvTransport = 'tcp' | 'grpc';
export const KV_TRANSPORTS: readonly KvTransport[] = ['tcp', 'grpc'];

/** Where a peer serves pages: its KvPageService, and its bulk data plane when it has one. */
export interface KvPeer {
  readonly address: string;
  readonly dataAddress?: string;
}

export interface KvClientsOptions {
  /** Default `tcp`. */
  readonly transport?: KvTransport;
}

/** Fetches by transport since start (`GET /v1/switchyard/stats`). */
export interface KvFetchCounters {
  numBulkFetches: number;
  numGrpcFetches: number;
  /** Bulk connects that failed, so the fetch went over gRPC instead. */
  numBulkFallbacks: number;
}

/**
 * One KvPageClient per peer address (a gRPC channel, opened on first use and kept, as for expert
 * workers; a client whose connect failed is not kept, so the next use tries again) and one KvBulkClient
 * per bulk data address (a small pool of TCP connections). Pushes always go over gRPC.
 */
export class KvClients {
  readonly counters: KvFetchCounters = { numBulkFetches: 0, numGrpcFetches: 0, numBulkFallbacks: 0 };
  readonly #deadlineMs: number;
  readonly #transport: KvTransport;
  readonly #clients = new Map<string, Promise<KvPageClient>>();
  readonly #bulkClients = new Map<string, KvBulkClient>();

  constructor(deadlineMs: number, options: KvClientsOptions = {}) {
    this.#deadlineMs = deadlineMs;
    this.#transport = options.transport ?? 'tcp';
  }

  get transport(): KvTransport {
    return this.#transport;
  }

  get(address: string): Promise<KvPageClient> {
    let client = this.#clients.get(address);
    if (!client) {
      client = connectKvPageClient(address, { deadlineMs: this.#deadlineMs, connectDeadlineMs: 2_000 });
      this.#clients.set(address, client);
      client.catch(() => this.#clients.delete(address));
    }
    return client;
  }

  /**
   * The peer's pages: over its bulk data plane when it has one (and the transport is `tcp`), else over
   * gRPC FetchPages — also when the bulk connect fails (nothing was sent, so the same fetch is safe to
   * repeat). Any other failure is the fetch's (a peer that dies mid-answer is not asked again here).
   */
  async fetchPages(peer: KvPeer, request: FetchPagesRequest, options: KvCallOptions = {}): Promise<FetchedPages> {
    const bulk = this.#bulkClientFor(peer);
    if (bulk !== undefined) {
      try {
        const fetched = await bulk.fetchPages(request, options);
        this.counters.numBulkFetches++;
        return fetched;
      } catch (err) {
        if (!(err instanceof ConnectFailedError)) throw err;
        this.counters.numBulkFallbacks++;
      }
    }
    const client = await this.get(peer.address);
    const fetched = await client.fetchPages(request, options);
    this.counters.numGrpcFetches++;
    return fetched;
  }

  /** Drops a peer's clients (it failed): the next use reconnects. */
  forget(peer: KvPeer | string): void {
    const { address, dataAddress } = typeof peer === 'string' ? { address: peer, dataAddress: undefined } : peer;
    const client = this.#clients.get(address);
    this.#clients.delete(address);
    void client?.then((c) => c.close()).catch(() => undefined);
    if (dataAddress === undefined) return;
    this.#bulkClients.get(dataAddress)?.close();
    this.#bulkClients.delete(dataAddress);
  }

  close(): void {
    for (const address of [...this.#clients.keys()]) this.forget(address);
    for (const bulk of this.#bulkClients.values()) bulk.close();
    this.#bulkClients.clear();
  }

  #bulkClientFor(peer: KvPeer): KvBulkClient | undefined {
    if (this.#transport !== 'tcp' || peer.dataAddress === undefined) return undefined;
    let bulk = this.#bulkClients.get(peer.dataAddress);
    if (bulk === undefined) {
      bulk = createKvBulkClient(peer.dataAddress, { deadlineMs: this.#deadlineMs, connectDeadlineMs: 2_000 });
      this.#bulkClients.set(peer.dataAddress, bulk);
    }
    return bulk;
  }
}
