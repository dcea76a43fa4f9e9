/**
 * The gateway's `/metrics` series the bench reads, by their Prometheus names: the names in the
 * telemetry package's metric catalog (`@switchyard/telemetry`'s METRIC_CATALOG, checked against what
 * the gateway exports), written out here because a load generator reads them from any server — vLLM's
 * included — and must not need the telemetry package to know them.
 */

export const SERIES = {
  expertTokens: 'switchyard_expert_tokens_total',
  balancedness: 'switchyard_expert_balancedness_ratio',
  kvUsage: 'vllm:kv_cache_usage_perc',
  prefixQueries: 'vllm:prefix_cache_queries_total',
  prefixHits: 'vllm:prefix_cache_hits_total',
  expertBytes: 'switchyard_step_expert_bytes_total',
  /** Histograms: `<name>_sum`, `<name>_count`, `<name>_bucket{le}`. */
  activeParams: 'switchyard_token_active_params',
  flops: 'switchyard_token_flops',
  dispatchDuration: 'switchyard_expert_dispatch_duration_seconds',
} as const;

export const LABELS = {
  layer: 'switchyard_layer',
  expert: 'switchyard_expert',
} as const;
