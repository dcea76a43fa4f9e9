/**
 * Server-side figures for a run: `/metrics` is scraped before and after, and the report is built from
 * the differences of the counters (so traffic before the run does not count) and the last values of
 * the gauges. A server without `/metrics`, or without a given series, is reported as "not available",
 * never as an error: the bench runs against any OpenAI-compatible server.
 */

import { parseExposition, type Exposition, type Sample } from './prometheus-text.ts';
import { LABELS, SERIES } from './server-metric-names.ts';

export type Scrape =
  { readonly ok: true; readonly exposition: Exposition } | { readonly ok: false; readonly reason: string };

/** GET `<baseUrl>/metrics`; anything but a parsable 200 is a reason. */
export async function scrapeMetrics(baseUrl: string, timeoutMs = 5000): Promise<Scrape> {
  try {
    const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    if (response.status !== 200) {
      await response.body?.cancel();
      return { ok: false, reason: `GET /metrics answered HTTP ${response.status}` };
    }
    return { ok: true, exposition: parseExposition(await response.text()) };
  } catch (error) {
    return { ok: false, reason: `GET /metrics failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** Tokens routed to each expert at each layer during the run: `counts[layer][expert]`. */
export interface ExpertLoad {
  readonly numLayers: number;
  readonly numExperts: number;
  readonly counts: readonly (readonly number[])[];
}

export interface ServerMetrics {
  readonly available: true;
  readonly expertLoad: ExpertLoad | undefined;
  /** Per layer, mean ÷ max of the run's tokens per expert (1 = perfectly balanced). */
  readonly balancedness: readonly number[] | undefined;
  /** The server's own gauge after the run: balancedness of the last step, per layer. */
  readonly lastStepBalancedness: readonly number[] | undefined;
  /** The KV usage gauge after the run. */
  readonly kvUsage: number | undefined;
  /** The highest KV usage seen by the scrapes taken during the run (one a second). */
  readonly kvUsagePeak: number | undefined;
  readonly prefixCache:
    { readonly queriedTokens: number; readonly hitTokens: number; readonly hitRate: number } | undefined;
  readonly activeParamsPerToken: number | undefined;
  readonly flopsPerToken: number | undefined;
  readonly expertBytesRead: number | undefined;
  readonly dispatchLatencyMs: { readonly mean: number; readonly p50: number; readonly p99: number } | undefined;
  /** Series this server does not expose. */
  readonly missing: readonly string[];
}

export type ServerMetricsReport = ServerMetrics | { readonly available: false; readonly reason: string };

const samplesOf = (e: Exposition, name: string): Sample[] => e.samples.filter((s) => s.name === name);

function has(e: Exposition, name: string): boolean {
  return e.samples.some((s) => s.name === name);
}

/** Sum of every sample of `name` (over all label sets), undefined when there is none. */
function total(e: Exposition, name: string): number | undefined {
  const samples = samplesOf(e, name);
  return samples.length === 0 ? undefined : samples.reduce((sum, s) => sum + s.value, 0);
}

function delta(before: Exposition, after: Exposition, name: string): number | undefined {
  const a = total(after, name);
  return a === undefined ? undefined : a - (total(before, name) ?? 0);
}

function intLabel(sample: Sample, label: string): number | undefined {
  const raw = sample.labels[label];
  const n = Number(raw);
  return raw !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** Counts by (layer, expert) label of a counter, summed over any other labels. */
function countsByLayerExpert(e: Exposition, name: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of samplesOf(e, name)) {
    const layer = intLabel(s, LABELS.layer);
    const expert = intLabel(s, LABELS.expert);
    if (layer === undefined || expert === undefined) continue;
    const key = `${layer}/${expert}`;
    counts.set(key, (counts.get(key) ?? 0) + s.value);
  }
  return counts;
}

/**
 * The run's tokens per (layer, expert). The shape comes from the labels seen, widened by `shape` when
 * given (an expert that never got a token has no series: OTel reports only observed values).
 */
export function expertLoadOf(
  before: Exposition,
  after: Exposition,
  shape?: { numLayers: number; numExperts: number },
): ExpertLoad | undefined {
  const a = countsByLayerExpert(after, SERIES.expertTokens);
  if (a.size === 0) return undefined;
  const b = countsByLayerExpert(before, SERIES.expertTokens);
  const keys = [...a.keys()].map((k) => k.split('/').map(Number));
  const numLayers = Math.max(shape?.numLayers ?? 0, ...keys.map(([l]) => (l ?? 0) + 1));
  const numExperts = Math.max(shape?.numExperts ?? 0, ...keys.map(([, x]) => (x ?? 0) + 1));
  const counts = Array.from({ length: numLayers }, (_, l) =>
    Array.from({ length: numExperts }, (_, x) => (a.get(`${l}/${x}`) ?? 0) - (b.get(`${l}/${x}`) ?? 0)),
  );
  return { numLayers, numExperts, counts };
}

/** Mean ÷ max tokens per expert, per layer; NaN for a layer that routed nothing. */
export function balancednessOf(load: ExpertLoad): number[] {
  return load.counts.map((row) => {
    const max = Math.max(...row);
    return max > 0 ? row.reduce((s, n) => s + n, 0) / row.length / max : NaN;
  });
}

function perLayerGauge(e: Exposition, name: string): number[] | undefined {
  const values: number[] = [];
  for (const s of samplesOf(e, name)) {
    const layer = intLabel(s, LABELS.layer);
    if (layer !== undefined) values[layer] = s.value;
  }
  return values.length === 0 ? undefined : Array.from(values, (v) => v ?? NaN);
}

/** Δsum ÷ Δcount of a histogram: the mean of what was recorded during the run. */
function histogramMean(before: Exposition, after: Exposition, name: string): number | undefined {
  const count = delta(before, after, `${name}_count`);
  const sum = delta(before, after, `${name}_sum`);
  return count === undefined || sum === undefined || count <= 0 ? undefined : sum / count;
}

/**
 * PromQL's `histogram_quantile` over the run's bucket deltas: linear within the bucket that holds the
 * rank; the upper bound of the last finite bucket when the rank falls in +Inf.
 */
export function histogramQuantile(q: number, before: Exposition, after: Exposition, name: string): number | undefined {
  const byLe = (e: Exposition) => {
    const m = new Map<number, number>();
    for (const s of samplesOf(e, `${name}_bucket`)) {
      const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
      if (!Number.isNaN(le)) m.set(le, (m.get(le) ?? 0) + s.value);
    }
    return m;
  };
  const a = byLe(after);
  const b = byLe(before);
  const buckets = [...a.entries()].map(([le, n]) => [le, n - (b.get(le) ?? 0)] as const).sort((x, y) => x[0] - y[0]);
  const count = buckets[buckets.length - 1]?.[1] ?? 0;
  if (count <= 0) return undefined;
  const rank = q * count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, cumulative] of buckets) {
    if (cumulative >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = cumulative - prevCount;
      return inBucket > 0 ? prevLe + (le - prevLe) * ((rank - prevCount) / inBucket) : le;
    }
    prevLe = le;
    prevCount = cumulative;
  }
  return prevLe;
}

function dispatchLatency(before: Exposition, after: Exposition): ServerMetrics['dispatchLatencyMs'] {
  const name = SERIES.dispatchDuration;
  const mean = histogramMean(before, after, name);
  const p50 = histogramQuantile(0.5, before, after, name);
  const p99 = histogramQuantile(0.99, before, after, name);
  if (mean === undefined || p50 === undefined || p99 === undefined) return undefined;
  return { mean: mean * 1000, p50: p50 * 1000, p99: p99 * 1000 };
}

/**
 * Scrapes `/metrics` every `intervalMs` until stopped, for gauges whose value during the run matters
 * more than after it (KV usage drops back when the requests finish). Bounded: one scrape in flight.
 */
export function sampleDuringRun(baseUrl: string, intervalMs = 1000): { stop: () => Promise<Scrape[]> } {
  const scrapes: Scrape[] = [];
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    inFlight = inFlight.then(async () => {
      if (!stopped) scrapes.push(await scrapeMetrics(baseUrl, intervalMs));
    });
  }, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
      return scrapes;
    },
  };
}

function peakOf(scrapes: readonly Scrape[], name: string): number | undefined {
  const values = scrapes
    .flatMap((s) => (s.ok ? [total(s.exposition, name)] : []))
    .filter((v): v is number => v !== undefined);
  return values.length === 0 ? undefined : Math.max(...values);
}

/** Builds the run's report from the scrapes before and after it (and any taken during it). */
export function serverMetricsOf(
  before: Scrape,
  after: Scrape,
  shape?: { numLayers: number; numExperts: number },
  during: readonly Scrape[] = [],
): ServerMetricsReport {
  if (!after.ok) return { available: false, reason: after.reason };
  if (!before.ok) return { available: false, reason: before.reason };
  const b = before.exposition;
  const a = after.exposition;
  const expertLoad = expertLoadOf(b, a, shape);
  const queried = delta(b, a, SERIES.prefixQueries);
  const hits = delta(b, a, SERIES.prefixHits);
  const expected = [
    SERIES.expertTokens,
    SERIES.balancedness,
    SERIES.kvUsage,
    SERIES.prefixQueries,
    SERIES.prefixHits,
    SERIES.expertBytes,
    `${SERIES.activeParams}_count`,
    `${SERIES.flops}_count`,
    `${SERIES.dispatchDuration}_count`,
  ];
  return {
    available: true,
    expertLoad,
    balancedness: expertLoad === undefined ? undefined : balancednessOf(expertLoad),
    lastStepBalancedness: perLayerGauge(a, SERIES.balancedness),
    kvUsage: total(a, SERIES.kvUsage),
    kvUsagePeak: peakOf([...during, after], SERIES.kvUsage),
    prefixCache:
      queried === undefined || hits === undefined
        ? undefined
        : { queriedTokens: queried, hitTokens: hits, hitRate: queried > 0 ? hits / queried : 0 },
    activeParamsPerToken: histogramMean(b, a, SERIES.activeParams),
    flopsPerToken: histogramMean(b, a, SERIES.flops),
    expertBytesRead: delta(b, a, SERIES.expertBytes),
    dispatchLatencyMs: dispatchLatency(b, a),
    missing: expected.filter((name) => !has(a, name)),
  };
}
