/**
 * Part (b) of `bench:kv`: by prefix length, the time to fetch a prefix's pages from a page store (another
 * process) and verify and import them, against the time to recompute that prefill on this machine, and
 * the break-even length — measured, and as the engine's fetch-or-recompute estimate puts it after
 * learning from these same transfers and prefills.
 */
import { EngineLoop, KvPageAccess, PageStore, PrefixHasher, resolveSamplingParams } from '@switchyard/engine';
import { BlockPool } from '@switchyard/kv-cache';
import { KvClients, PageFetcher, pagesToExtents } from '@switchyard/kv-transfer';
import { startKvStore } from '@switchyard/launcher';
import { loadModelDir } from '@switchyard/model';
import { createEngine } from '@switchyard/onnx';

export interface FetchRow {
  readonly tokens: number;
  readonly recomputeMs: number;
  readonly fetchMs: number;
  readonly fetchBytes: number;
}

export interface FetchVsRecomputeResult {
  readonly rows: readonly FetchRow[];
  /** Shortest measured prefix (tokens) whose fetch beat its recompute; null if none did. */
  readonly measuredBreakEvenTokens: number | null;
  /** What the engine's estimate (learnt from the same runs) takes as the break-even, tokens. */
  readonly engineBreakEvenTokens: number | null;
  readonly engineBandwidthMBps: number;
  readonly engineOverheadMs: number;
  readonly enginePrefillTokensPerS: number;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const BLOCK = 16;

export async function measureFetchVsRecompute(
  modelDir: string,
  natsUrl: string,
  options: { lengths: readonly number[]; rounds: number },
  log: (line: string) => void,
): Promise<FetchVsRecomputeResult> {
  const model = await loadModelDir(modelDir);
  const bundle = await createEngine(model, {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: BLOCK,
    scheduler: { maxBatchedTokens: 2048, maxRunningSequences: 4 },
  });
  const loop = new EngineLoop(bundle.engine);
  const store = await startKvStore(natsUrl, ['--name', 'bench-fetch-store', '--capacity-bytes', '2GiB']);
  const clients = new KvClients(60_000);
  const { config } = model;
  const hasher = new PrefixHasher({
    modelId: config.name,
    weightsDigestHex: model.weightsDigest,
    kvDtype: 'f32',
    blockSize: BLOCK,
  });
  const namespace = hasher.namespaceHex();
  const freshAccess = () =>
    new KvPageAccess(
      new BlockPool({ numBlocks: Math.ceil(config.maxContext / BLOCK) + 1, blockSize: BLOCK }),
      new PageStore(config.numLayers, BLOCK, config.numKvHeads * config.headDim),
    );
  // The engine's own estimator: one long-lived fetcher that learns from every transfer and prefill here.
  const engineView = new PageFetcher({
    access: freshAccess(),
    hasher,
    namespace,
    sources: () => [],
    clients,
    mode: 'auto',
    deadlineMs: 60_000,
  });
  const params = resolveSamplingParams({ maxTokens: 1, temperature: 0, stopAtEos: false });
  const rows: FetchRow[] = [];
  try {
    const client = await clients.get(store.address);
    let serial = 0;
    for (const tokens of options.lengths) {
      const recompute: number[] = [];
      const fetch: number[] = [];
      let fetchBytes = 0;
      for (let round = 0; round < options.rounds; round++) {
        serial++;
        // A prompt no cache here has seen: `tokens` tokens of full blocks and one more to compute.
        const promptIds = Array.from({ length: tokens + 1 }, (_, i) => (serial * 131 + i * 17 + (i >> 3)) % 256);
        let started = performance.now();
        await loop.generate({ id: `recompute-${serial}`, promptIds, params });
        const recomputeMs = performance.now() - started;
        recompute.push(recomputeMs);
        engineView.prefillRate.observe(tokens, recomputeMs);
        const pages = bundle.pages.exportPages(hasher.hashTokens(promptIds));
        await client.pushPages({ namespace, extents: pagesToExtents(pages, 2 ** 20) });
        const fetcher = new PageFetcher({
          access: freshAccess(),
          hasher,
          namespace,
          sources: () => [{ id: 'store', address: store.address, kind: 'store', numBlocks: tokens / BLOCK }],
          clients,
          mode: 'always',
          deadlineMs: 60_000,
        });
        started = performance.now();
        const result = await fetcher.prefetch(promptIds);
        const fetchMs = performance.now() - started;
        if (result.numFetchedBlocks !== tokens / BLOCK)
          throw new Error(`fetched ${result.numFetchedBlocks} blocks of ${tokens / BLOCK}`);
        fetch.push(fetchMs);
        fetchBytes = result.bytes;
        engineView.observeTransfer(result.bytes, fetchMs);
      }
      rows.push({ tokens, recomputeMs: median(recompute), fetchMs: median(fetch), fetchBytes });
      log(
        `prefix ${tokens} tokens: recompute ${median(recompute).toFixed(1)} ms, fetch ${median(fetch).toFixed(1)} ms`,
      );
    }
  } finally {
    clients.close();
    await loop.stop();
    await bundle.close();
    await store.stop(5_000);
  }
  const measured = rows.find((r) => r.fetchMs < r.recomputeMs)?.tokens ?? null;
  const blocks = engineView.breakEvenBlocks();
  return {
    rows,
    measuredBreakEvenTokens: measured,
    engineBreakEvenTokens: Number.isFinite(blocks) ? blocks * BLOCK : null,
    engineBandwidthMBps: engineView.bandwidth.perMs / 1000,
    engineOverheadMs: engineView.overheadMs,
    enginePrefillTokensPerS: engineView.prefillRate.perMs * 1000,
  };
}
