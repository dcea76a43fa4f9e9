/**
 * The gateway's `/metrics` series the bench reads, as the OpenTelemetry Prometheus exporter names them:
 * dots become underscores and monotonic counters gain `_total`; attribute keys become labels the same
 * way (`switchyard.layer` → `switchyard_layer`).
 *
 * NOTE: the OTel names come from the telemetry package's `names` entry, not its main entry: that
 * module is dependency-free, while the main entry loads the OpenTelemetry API and the accounting, which a load generator does
 * not need.
 */

import {
  ATTR_EXPERT,
  ATTR_LAYER,
  METRIC_EXPERT_BALANCEDNESS,
  METRIC_EXPERT_TOKENS,
  METRIC_KV_USAGE,
  METRIC_PREFIX_CACHE_HITS,
  METRIC_PREFIX_CACHE_QUERIES,
  METRIC_STEP_EXPERT_BYTES,
  METRIC_TOKEN_ACTIVE_PARAMS,
  METRIC_TOKEN_FLOPS,
} from '@switchyard/telemetry/names';

/** The exporter's sanitising: anything outside [a-zA-Z0-9_:] becomes `_`, runs of `_` collapse. */
export function prometheusName(otelName: string): string {
  return otelName.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/_{2,}/g, '_');
}

const counter = (otelName: string) => {
  const name = prometheusName(otelName);
  return name.endsWith('_total') ? name : `${name}_total`;
};

/**
 * Per-dispatch latency histogram (seconds). Not exported by the telemetry package yet (dispatches are
 * spans there); read when a gateway exposes it under this name.
 */
export const METRIC_EXPERT_DISPATCH_DURATION = 'switchyard.expert.dispatch.duration';

export const SERIES = {
  expertTokens: counter(METRIC_EXPERT_TOKENS),
  balancedness: prometheusName(METRIC_EXPERT_BALANCEDNESS),
  kvUsage: prometheusName(METRIC_KV_USAGE),
  prefixQueries: counter(METRIC_PREFIX_CACHE_QUERIES),
  prefixHits: counter(METRIC_PREFIX_CACHE_HITS),
  expertBytes: counter(METRIC_STEP_EXPERT_BYTES),
  /** Histograms: `<name>_sum`, `<name>_count`, `<name>_bucket{le}`. */
  activeParams: prometheusName(METRIC_TOKEN_ACTIVE_PARAMS),
  flops: prometheusName(METRIC_TOKEN_FLOPS),
  dispatchDuration: prometheusName(METRIC_EXPERT_DISPATCH_DURATION),
} as const;

export const LABELS = {
  layer: prometheusName(ATTR_LAYER),
  expert: prometheusName(ATTR_EXPERT),
} as const;
