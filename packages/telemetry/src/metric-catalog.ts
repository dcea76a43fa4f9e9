/**
 * Every metric Switchyard exports, by its Prometheus name: the contract that dashboards, alerts,
 * autoscalers and the bench read. Written out literally (not derived from names.ts) so that a change in
 * what the code exports fails `metric-catalog.test.ts` instead of silently renaming a series; the test
 * also checks that the OTLP path, named by the Collector's rules, gives the same names.
 *
 * `labels` are on every series; `optionalLabels` on some (e.g. `error_type` on failures only).
 * `exportedBy`: `engine` (a gateway serving requests), `dispatch` (a gateway with expert workers),
 * `frontend` (a gateway on the NATS queue), `kv` (an engine fetching KV pages from a peer or the page store).
 */
export interface CatalogMetric {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly labels: readonly string[];
  readonly optionalLabels?: readonly string[];
  readonly exportedBy: 'engine' | 'dispatch' | 'frontend' | 'kv';
}

const MODEL = ['model_name'];
const GEN_AI = ['gen_ai_operation_name', 'gen_ai_provider_name', 'gen_ai_request_model'];
const REQUEST_MODEL = ['gen_ai_request_model'];

export const METRIC_CATALOG: readonly CatalogMetric[] = [
  // vLLM's names (docs.vllm.ai "Production Metrics"), labelled model_name.
  { name: 'vllm:num_requests_running', type: 'gauge', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:num_requests_waiting', type: 'gauge', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:kv_cache_usage_perc', type: 'gauge', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:prompt_tokens_total', type: 'counter', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:generation_tokens_total', type: 'counter', labels: MODEL, exportedBy: 'engine' },
  {
    name: 'vllm:request_success_total',
    type: 'counter',
    labels: [...MODEL, 'finished_reason'],
    exportedBy: 'engine',
  },
  { name: 'vllm:num_preemptions_total', type: 'counter', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:time_to_first_token_seconds', type: 'histogram', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:inter_token_latency_seconds', type: 'histogram', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:e2e_request_latency_seconds', type: 'histogram', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:request_queue_time_seconds', type: 'histogram', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:prefix_cache_queries_total', type: 'counter', labels: MODEL, exportedBy: 'engine' },
  { name: 'vllm:prefix_cache_hits_total', type: 'counter', labels: MODEL, exportedBy: 'engine' },
  // The OpenTelemetry GenAI semantic conventions.
  { name: 'gen_ai_server_time_to_first_token_seconds', type: 'histogram', labels: GEN_AI, exportedBy: 'engine' },
  { name: 'gen_ai_server_time_per_output_token_seconds', type: 'histogram', labels: GEN_AI, exportedBy: 'engine' },
  {
    name: 'gen_ai_server_request_duration_seconds',
    type: 'histogram',
    labels: GEN_AI,
    optionalLabels: ['error_type'],
    exportedBy: 'engine',
  },
  {
    name: 'gen_ai_client_token_usage',
    type: 'histogram',
    labels: [...GEN_AI, 'gen_ai_token_type'],
    exportedBy: 'engine',
  },
  // Switchyard's own: compute per token, experts, economics.
  { name: 'switchyard_token_active_params', type: 'histogram', labels: REQUEST_MODEL, exportedBy: 'engine' },
  { name: 'switchyard_token_flops', type: 'histogram', labels: REQUEST_MODEL, exportedBy: 'engine' },
  { name: 'switchyard_dense_equivalent_flops_total', type: 'counter', labels: REQUEST_MODEL, exportedBy: 'engine' },
  { name: 'switchyard_prefix_cache_flops_saved_total', type: 'counter', labels: REQUEST_MODEL, exportedBy: 'engine' },
  { name: 'switchyard_step_expert_bytes_total', type: 'counter', labels: REQUEST_MODEL, exportedBy: 'engine' },
  { name: 'switchyard_step_expert_bytes_fp32_total', type: 'counter', labels: REQUEST_MODEL, exportedBy: 'engine' },
  {
    name: 'switchyard_expert_tokens_total',
    type: 'counter',
    labels: ['switchyard_layer', 'switchyard_expert', 'switchyard_worker'],
    exportedBy: 'engine',
  },
  { name: 'switchyard_expert_balancedness_ratio', type: 'gauge', labels: ['switchyard_layer'], exportedBy: 'engine' },
  {
    name: 'switchyard_expert_window_tokens',
    type: 'gauge',
    labels: ['switchyard_layer', 'switchyard_expert'],
    exportedBy: 'engine',
  },
  {
    name: 'switchyard_expert_dispatch_duration_seconds',
    type: 'histogram',
    labels: ['switchyard_layer', 'switchyard_worker'],
    optionalLabels: ['error_type'],
    exportedBy: 'dispatch',
  },
  // A NATS frontend's routing and its view of the engines' KV caches.
  {
    name: 'switchyard_router_decisions_total',
    type: 'counter',
    labels: ['switchyard_router_target'],
    exportedBy: 'frontend',
  },
  { name: 'switchyard_router_reroutes_total', type: 'counter', labels: [], exportedBy: 'frontend' },
  { name: 'switchyard_router_prompt_blocks_total', type: 'counter', labels: [], exportedBy: 'frontend' },
  { name: 'switchyard_router_overlap_blocks_total', type: 'counter', labels: [], exportedBy: 'frontend' },
  { name: 'switchyard_kv_index_entries', type: 'gauge', labels: [], exportedBy: 'frontend' },
  { name: 'switchyard_kv_events_gaps_total', type: 'counter', labels: [], exportedBy: 'frontend' },
  { name: 'switchyard_kv_events_lag_seconds', type: 'gauge', labels: [], exportedBy: 'frontend' },
  // KV pages between engines and the page store.
  {
    name: 'switchyard_kv_prompt_tokens_total',
    type: 'counter',
    labels: ['switchyard_kv_source'],
    exportedBy: 'kv',
  },
  {
    name: 'switchyard_kv_fetches_total',
    type: 'counter',
    labels: ['switchyard_kv_fetch_outcome', 'switchyard_kv_fetch_source'],
    optionalLabels: ['switchyard_kv_fetch_reason'],
    exportedBy: 'kv',
  },
  {
    name: 'switchyard_kv_fetch_duration_seconds',
    type: 'histogram',
    labels: ['switchyard_kv_fetch_source'],
    exportedBy: 'kv',
  },
  {
    name: 'switchyard_kv_page_transfers_total',
    type: 'counter',
    labels: ['switchyard_kv_transfer_direction'],
    exportedBy: 'kv',
  },
  {
    name: 'switchyard_kv_page_transfer_bytes_total',
    type: 'counter',
    labels: ['switchyard_kv_transfer_direction'],
    exportedBy: 'kv',
  },
];
