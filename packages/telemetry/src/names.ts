/**
 * Every span, attribute, event and metric name Switchyard emits, in one place.
 *
 * The GenAI semantic conventions are still in development upstream (and moving to their own
 * repository), so their names are copied in here as constants: a rename upstream cannot silently
 * change what we emit. Our own names live under `switchyard.*`.
 *
 * NOTE: nothing here names a prompt, a completion or a header. Spans and metrics carry counts, ids and
 * model names only.
 */

// ── GenAI semantic conventions: attributes ─────────────────────────────────────────────────────────
export const ATTR_GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
export const ATTR_GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name';
export const ATTR_GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
export const ATTR_GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model';
export const ATTR_GEN_AI_RESPONSE_ID = 'gen_ai.response.id';
export const ATTR_GEN_AI_RESPONSE_FINISH_REASONS = 'gen_ai.response.finish_reasons';
export const ATTR_GEN_AI_REQUEST_MAX_TOKENS = 'gen_ai.request.max_tokens';
export const ATTR_GEN_AI_REQUEST_TEMPERATURE = 'gen_ai.request.temperature';
export const ATTR_GEN_AI_REQUEST_TOP_P = 'gen_ai.request.top_p';
export const ATTR_GEN_AI_REQUEST_TOP_K = 'gen_ai.request.top_k';
export const ATTR_GEN_AI_REQUEST_SEED = 'gen_ai.request.seed';
export const ATTR_GEN_AI_REQUEST_STREAM = 'gen_ai.request.stream';
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
export const ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = 'gen_ai.usage.cache_read.input_tokens';
export const ATTR_GEN_AI_TOKEN_TYPE = 'gen_ai.token.type';

/** Values of `gen_ai.operation.name` that Switchyard serves. */
export const GEN_AI_OPERATION_CHAT = 'chat';
export const GEN_AI_OPERATION_TEXT_COMPLETION = 'text_completion';
export type GenAiOperation = typeof GEN_AI_OPERATION_CHAT | typeof GEN_AI_OPERATION_TEXT_COMPLETION;

/** Values of `gen_ai.token.type`. */
export const GEN_AI_TOKEN_TYPE_INPUT = 'input';
export const GEN_AI_TOKEN_TYPE_OUTPUT = 'output';

/** Our `gen_ai.provider.name`: a self-hosted model server is its own provider. */
export const SWITCHYARD_PROVIDER_NAME = 'switchyard';

// ── General semantic conventions ───────────────────────────────────────────────────────────────────
export const ATTR_ERROR_TYPE = 'error.type';
export const ATTR_SERVICE_NAME = 'service.name';
export const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id';

// ── GenAI semantic conventions: metrics ────────────────────────────────────────────────────────────
export const METRIC_GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = 'gen_ai.server.time_to_first_token';
export const METRIC_GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN = 'gen_ai.server.time_per_output_token';
export const METRIC_GEN_AI_SERVER_REQUEST_DURATION = 'gen_ai.server.request.duration';
export const METRIC_GEN_AI_CLIENT_TOKEN_USAGE = 'gen_ai.client.token.usage';

/** Bucket boundaries the conventions recommend (seconds, or tokens for token usage). */
export const BUCKETS_TIME_TO_FIRST_TOKEN_S = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];
export const BUCKETS_TIME_PER_OUTPUT_TOKEN_S = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];
export const BUCKETS_REQUEST_DURATION_S = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
export const BUCKETS_TOKEN_USAGE = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];

// ── Switchyard spans ───────────────────────────────────────────────────────────────────────────────
// The request span is named `{gen_ai.operation.name} {gen_ai.request.model}` (see requestSpanName).
export const SPAN_ENGINE_STEP = 'switchyard.engine.step';
/** Gateway side: one layer's shard sent to one expert worker. */
export const SPAN_EXPERT_DISPATCH = 'switchyard.expert.dispatch';
/** Worker side: one Run message computed, joined to the dispatch span through `traceparent`. */
export const SPAN_EXPERT_RUN = 'switchyard.expert.run';

export function requestSpanName(operation: GenAiOperation, model: string): string {
  return `${operation} ${model}`;
}

// ── Switchyard span events ─────────────────────────────────────────────────────────────────────────
/** One computed token row (detail `tokens`). */
export const EVENT_TOKEN = 'switchyard.token';
export const EVENT_FIRST_TOKEN = 'switchyard.first_token';

// ── Switchyard attributes: one token (span event attributes at detail `tokens`) ────────────────────
/** Absolute position of the row in its sequence. */
export const ATTR_TOKEN_POSITION = 'switchyard.token.position';
/** `prefill` (a prompt position) or `decode` (a generated position). */
export const ATTR_TOKEN_PHASE = 'switchyard.token.phase';
/** The LM head ran on this row (its logits were computed and sampled). */
export const ATTR_TOKEN_SAMPLED = 'switchyard.token.sampled';
/** Per layer (array index = layer), the distinct experts chosen, comma-separated: `["3,7", "0,5"]`. */
export const ATTR_TOKEN_EXPERTS = 'switchyard.token.experts';
export const ATTR_TOKEN_ACTIVE_PARAMS = 'switchyard.token.active_params';
export const ATTR_TOKEN_FLOPS = 'switchyard.token.flops';
export const ATTR_TOKEN_DENSE_EQUIVALENT_FLOPS = 'switchyard.token.dense_equivalent_flops';

// ── Switchyard attributes: one request (totals on the request span) ────────────────────────────────
export const ATTR_REQUEST_ID = 'switchyard.request.id';
/** Token rows computed for the request (prompt rows not found in the prefix cache, generated rows, recomputation after preemption). */
export const ATTR_REQUEST_COMPUTED_TOKENS = 'switchyard.request.computed_tokens';
export const ATTR_REQUEST_PREFILL_TOKENS = 'switchyard.request.prefill_tokens';
export const ATTR_REQUEST_DECODE_TOKENS = 'switchyard.request.decode_tokens';
/** Σ over computed rows of their active parameters. */
export const ATTR_REQUEST_ACTIVE_PARAMS = 'switchyard.request.active_params';
export const ATTR_REQUEST_ACTIVE_PARAMS_PER_TOKEN = 'switchyard.request.active_params_per_token';
export const ATTR_REQUEST_FLOPS = 'switchyard.request.flops';
export const ATTR_REQUEST_PREFILL_FLOPS = 'switchyard.request.prefill_flops';
export const ATTR_REQUEST_DECODE_FLOPS = 'switchyard.request.decode_flops';
export const ATTR_REQUEST_DENSE_EQUIVALENT_FLOPS = 'switchyard.request.dense_equivalent_flops';
/** Σ over rows and layers of distinct experts chosen (a row choosing expert 3 at two layers counts 2). */
export const ATTR_REQUEST_EXPERT_ACTIVATIONS = 'switchyard.request.expert_activations';
/** Distinct (layer, expert) pairs the request touched. */
export const ATTR_REQUEST_EXPERTS_HIT = 'switchyard.request.experts_hit';
/** Prefill FLOPs not computed because the prompt prefix came from the prefix cache. */
export const ATTR_PREFIX_CACHE_FLOPS_SAVED = 'switchyard.prefix_cache.flops_saved';
export const ATTR_REQUEST_PREEMPTIONS = 'switchyard.request.preemptions';

// ── Switchyard attributes: one engine step ─────────────────────────────────────────────────────────
export const ATTR_STEP_SEQUENCES = 'switchyard.step.sequences';
export const ATTR_STEP_TOKENS = 'switchyard.step.tokens';
export const ATTR_STEP_PREFILL_TOKENS = 'switchyard.step.prefill_tokens';
export const ATTR_STEP_DECODE_TOKENS = 'switchyard.step.decode_tokens';
export const ATTR_STEP_SAMPLED = 'switchyard.step.sampled';
export const ATTR_STEP_PREEMPTED = 'switchyard.step.preempted';
export const ATTR_STEP_FLOPS = 'switchyard.step.flops';
export const ATTR_STEP_PREFILL_FLOPS = 'switchyard.step.prefill_flops';
export const ATTR_STEP_DECODE_FLOPS = 'switchyard.step.decode_flops';
export const ATTR_STEP_DENSE_EQUIVALENT_FLOPS = 'switchyard.step.dense_equivalent_flops';
/** Σ over layer calls of the distinct experts hit. */
export const ATTR_STEP_EXPERTS_HIT = 'switchyard.step.experts_hit';
/** Expert weight bytes read by the step, in the dtype the experts run in. */
export const ATTR_STEP_EXPERT_BYTES = 'switchyard.step.expert_bytes';
/** The same experts' bytes had they been fp32 / int8 (for the int8 savings). */
export const ATTR_STEP_EXPERT_BYTES_FP32 = 'switchyard.step.expert_bytes_fp32';
export const ATTR_STEP_EXPERT_BYTES_INT8 = 'switchyard.step.expert_bytes_int8';
/** Non-expert weight bytes every step reads (attention, router, shared experts, LM head; fp32). */
export const ATTR_STEP_DENSE_BYTES = 'switchyard.step.dense_bytes';
export const ATTR_EXPERT_DTYPE = 'switchyard.expert.dtype';

// ── Switchyard attributes: dispatch and worker spans, metric dimensions ───────────────────────────
export const ATTR_LAYER = 'switchyard.layer';
export const ATTR_EXPERT = 'switchyard.expert';
export const ATTR_WORKER_INDEX = 'switchyard.worker.index';
export const ATTR_WORKER_ID = 'switchyard.worker.id';
/** Metric dimension: the expert worker (its address; `local` for experts in the gateway's process). */
export const ATTR_WORKER = 'switchyard.worker';
export const WORKER_LOCAL = 'local';
export const ATTR_DISPATCH_TOKENS = 'switchyard.dispatch.tokens';
export const ATTR_KV_TRANSFER_DIRECTION = 'switchyard.kv.transfer.direction';
/** The frontend's routing decision, on the serving engine's request span (NATS mode). */
export const ATTR_ROUTE_MODE = 'switchyard.route.mode';
/** `engine` (sent to the chosen engine), `shared` (any engine), `rerouted` (the chosen one was silent). */
export const ATTR_ROUTE_TARGET = 'switchyard.route.target';
export const ATTR_ROUTE_ENGINE = 'switchyard.route.engine';
export const ATTR_ROUTE_OVERLAP_BLOCKS = 'switchyard.route.overlap_blocks';
export const ATTR_ROUTE_PROMPT_BLOCKS = 'switchyard.route.prompt_blocks';
export const ATTR_ROUTE_SCORE = 'switchyard.route.score';
/** Where the prompt's KV came from, on the serving engine's request span (NATS mode, docs/architecture.md §6). */
export const ATTR_KV_LOCAL_TOKENS = 'switchyard.kv.local_tokens';
export const ATTR_KV_FETCHED_TOKENS = 'switchyard.kv.fetched_tokens';
export const ATTR_KV_RECOMPUTED_TOKENS = 'switchyard.kv.recomputed_tokens';
/** `engine` (a peer) or `store` (the page store) for fetched tokens. */
export const ATTR_KV_FETCH_SOURCE = 'switchyard.kv.fetch.source';
/** The page fetcher's outcome: no-prefix, local, fetched, partial, recompute, failed. */
export const ATTR_KV_FETCH_OUTCOME = 'switchyard.kv.fetch.outcome';
/** Why a fetch stopped or failed: checksum, hash-mismatch, token-mismatch, malformed, unavailable, deadline, refused. */
export const ATTR_KV_FETCH_REASON = 'switchyard.kv.fetch.reason';
export const ATTR_KV_FETCH_BYTES = 'switchyard.kv.fetch.bytes';
export const ATTR_KV_FETCH_DURATION_MS = 'switchyard.kv.fetch.duration_ms';
/** Prefill FLOPs the request did not spend thanks to pages fetched from a peer or the page store. */
export const ATTR_KV_REMOTE_FLOPS_SAVED = 'switchyard.kv.remote_flops_saved';
/** `local`, `engine`, `store` or `computed`: where a prompt token's KV came from (hits by source). */
export const ATTR_KV_SOURCE = 'switchyard.kv.source';

// ── Switchyard metrics ─────────────────────────────────────────────────────────────────────────────
export const METRIC_TOKEN_ACTIVE_PARAMS = 'switchyard.token.active_params';
export const METRIC_TOKEN_FLOPS = 'switchyard.token.flops';
/** Counter: (token, expert) pairs routed, by layer and expert. */
export const METRIC_EXPERT_TOKENS = 'switchyard.expert.tokens';
/** Gauge: (token, expert) pairs routed over the sliding window (`--expert-load-window-s`), by layer and expert. */
export const METRIC_EXPERT_WINDOW_TOKENS = 'switchyard.expert.window_tokens';
/** Gauge per layer: mean ÷ max tokens per expert in the last step (1 = perfectly balanced). */
export const METRIC_EXPERT_BALANCEDNESS = 'switchyard.expert.balancedness';
/** Counter: expert weight bytes read. */
export const METRIC_STEP_EXPERT_BYTES = 'switchyard.step.expert_bytes';
export const METRIC_KV_PAGE_TRANSFERS = 'switchyard.kv.page_transfers';
/** Round trip of one Run message to an expert worker (gateway side), seconds, by layer and worker. */
export const METRIC_EXPERT_DISPATCH_DURATION = 'switchyard.expert.dispatch.duration';
export const BUCKETS_DISPATCH_S = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];
export const METRIC_KV_PAGE_TRANSFER_BYTES = 'switchyard.kv.page_transfer_bytes';
/** Counter: a frontend's routing decisions, by `switchyard.router.target` (`engine` or `shared`). */
export const METRIC_ROUTER_DECISIONS = 'switchyard.router.decisions';
export const ATTR_ROUTER_TARGET = 'switchyard.router.target';
/** Counter: routed requests published again for any engine (the chosen one stayed silent). */
export const METRIC_ROUTER_REROUTES = 'switchyard.router.reroutes';
/** Counters: full prompt blocks of the requests routed, and of those the chosen engine already held. */
export const METRIC_ROUTER_PROMPT_BLOCKS = 'switchyard.router.prompt_blocks';
export const METRIC_ROUTER_OVERLAP_BLOCKS = 'switchyard.router.overlap_blocks';
/** Gauge: (block hash, engine) pairs in the frontend's cluster prefix index. */
export const METRIC_KV_INDEX_ENTRIES = 'switchyard.kv.index.entries';
/** Counter: gaps in engines' KV event numbers (each drops the engine's entries until its snapshot). */
export const METRIC_KV_EVENT_GAPS = 'switchyard.kv.events.gaps';
/** Gauge: seconds from an engine taking its latest KV event batch to this frontend applying it. */
export const METRIC_KV_EVENT_LAG = 'switchyard.kv.events.lag';
/** Counter: prompt tokens by where their KV came from (`switchyard.kv.source`). */
export const METRIC_KV_PROMPT_TOKENS = 'switchyard.kv.prompt_tokens';
/** Counter: page fetch decisions before admission, by outcome, source and reason. */
export const METRIC_KV_FETCHES = 'switchyard.kv.fetches';
/** Histogram: seconds spent fetching pages before admission (fetches that moved pages). */
export const METRIC_KV_FETCH_DURATION = 'switchyard.kv.fetch.duration';
export const BUCKETS_KV_FETCH_S = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

/** Counter: FLOPs of the computed tokens had every routed expert been active (the MoE sparsity saving). */
export const METRIC_DENSE_EQUIVALENT_FLOPS = 'switchyard.dense_equivalent_flops';
/** Counter: prefill FLOPs not computed because the prompt prefix came from the prefix cache. */
export const METRIC_PREFIX_CACHE_FLOPS_SAVED = 'switchyard.prefix_cache.flops_saved';
/** Counter: the expert bytes of `switchyard.step.expert_bytes` had the experts been fp32 (the int8 saving). */
export const METRIC_STEP_EXPERT_BYTES_FP32 = 'switchyard.step.expert_bytes_fp32';

// ── vLLM-compatible metrics ────────────────────────────────────────────────────────────────────────
// The series vLLM's own dashboards, alerts and autoscalers read, from the same measurements as the GenAI
// ones. NOTE: `:` is outside OpenTelemetry's instrument-name alphabet (the SDK only warns) but inside
// Prometheus'; both of our Prometheus paths keep it (see prometheus-naming.ts). Units are chosen so the
// specification's suffix rules give vLLM's exact names: histograms already end in `seconds`, counters
// gain `_total`, and the gauges have no unit (unit `1` would add `_ratio`).
export const ATTR_VLLM_MODEL_NAME = 'model_name';
export const ATTR_VLLM_FINISHED_REASON = 'finished_reason';
export const METRIC_VLLM_NUM_REQUESTS_RUNNING = 'vllm:num_requests_running';
/** Waiting in this engine plus the JetStream backlog of the model's shared consumer (NATS mode). */
export const METRIC_VLLM_NUM_REQUESTS_WAITING = 'vllm:num_requests_waiting';
/** Fraction (0–1, despite the name) of KV cache blocks held by live sequences. */
export const METRIC_VLLM_KV_CACHE_USAGE_PERC = 'vllm:kv_cache_usage_perc';
export const METRIC_VLLM_PROMPT_TOKENS = 'vllm:prompt_tokens';
export const METRIC_VLLM_GENERATION_TOKENS = 'vllm:generation_tokens';
export const METRIC_VLLM_REQUEST_SUCCESS = 'vllm:request_success';
export const METRIC_VLLM_NUM_PREEMPTIONS = 'vllm:num_preemptions';
export const METRIC_VLLM_TIME_TO_FIRST_TOKEN = 'vllm:time_to_first_token_seconds';
export const METRIC_VLLM_INTER_TOKEN_LATENCY = 'vllm:inter_token_latency_seconds';
export const METRIC_VLLM_E2E_REQUEST_LATENCY = 'vllm:e2e_request_latency_seconds';
/** From the engine taking the request to its first computed row (waiting in the engine). */
export const METRIC_VLLM_REQUEST_QUEUE_TIME = 'vllm:request_queue_time_seconds';
/** Counters in prompt tokens: looked up in the prefix cache, and found. */
export const METRIC_VLLM_PREFIX_CACHE_QUERIES = 'vllm:prefix_cache_queries';
export const METRIC_VLLM_PREFIX_CACHE_HITS = 'vllm:prefix_cache_hits';
/** vLLM's bucket boundaries (seconds). */
export const BUCKETS_VLLM_TTFT_S = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560,
];
export const BUCKETS_VLLM_ITL_S = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
export const BUCKETS_VLLM_REQUEST_S = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];
