/**
 * @switchyard/kv-transfer — KV pages between nodes (docs/architecture.md §6): an engine's pages served to
 * peers, the fetch-or-recompute decision and verified fetch before admission, write-behind offload of
 * evicted pages, and the page store's LRU memory and service handler.
 */
export { enginePageHandler, newServingCounters, type PageServingCounters } from './engine-page-handler.ts';
export {
  KV_TRANSPORTS,
  KvClients,
  type KvClientsOptions,
  type KvFetchCounters,
  type KvPeer,
  type KvTransport,
} from './kv-clients.ts';
export { LruPageStore, type LruPageStoreOptions, type StoreEvent } from './lru-page-store.ts';
export {
  decodeExtentPage,
  pagesToExtents,
  PageRejectedError,
  splitExtent,
  type PageRejection,
} from './page-extents.ts';
export {
  FETCH_MODES,
  PageFetcher,
  verifiedPrefix,
  type FetchMode,
  type PageFetcherOptions,
  type PageSource,
  type PrefetchOutcome,
  type PrefetchResult,
} from './page-fetcher.ts';
export { PageOffloader, type OffloadCounters, type PageOffloaderOptions } from './page-offloader.ts';
export { RateEstimator } from './rate-estimator.ts';
export { newStoreCounters, storePageHandler, type StoreCounters } from './store-page-handler.ts';
