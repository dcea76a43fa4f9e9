/**
 * The gateway process. Reads its configuration once (each flag, or else its environment variable — see
 * ENV_OF — or else the default), starts, and drains on SIGTERM/SIGINT.
 *
 *   node services/gateway/src/main.ts --model models/small --port 8000 --workers 127.0.0.1:50051,127.0.0.1:50052
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseServiceFlags, stopWithParent } from '@switchyard/flags';
import { FETCH_MODES, KV_TRANSPORTS } from '@switchyard/kv-transfer';
import { natsAuthFromEnv, redactUrl, ROUTER_MODES, type RouterMode } from '@switchyard/cluster';
import { startTelemetry, telemetryOptionsFromEnv } from '@switchyard/telemetry';
import { DEFAULT_GATEWAY_CONFIG, GATEWAY_ROLES, Gateway, type GatewayConfig, type NatsSettings } from './gateway.ts';
import type { LoadAwareSettings } from '@switchyard/dispatch';
import { loadApiKeys } from './http/auth.ts';
import { checkTlsFiles, type ClientTls } from '@switchyard/rpc';

const env = process.env;
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
/** Each flag and the environment variable it falls back to (flags win over variables, variables over defaults). */
const ENV_OF = {
  model: 'SWITCHYARD_MODEL_DIR',
  host: 'SWITCHYARD_HOST',
  port: 'SWITCHYARD_PORT',
  workers: 'SWITCHYARD_WORKERS',
  placement: 'SWITCHYARD_PLACEMENT',
  replication: 'SWITCHYARD_REPLICATION',
  'expert-loads': 'SWITCHYARD_EXPERT_LOADS',
  'eplb-warmup-s': 'SWITCHYARD_EPLB_WARMUP_S',
  'rebalance-interval-s': 'SWITCHYARD_REBALANCE_INTERVAL_S',
  'rebalance-threshold': 'SWITCHYARD_REBALANCE_THRESHOLD',
  'redundant-experts': 'SWITCHYARD_REDUNDANT_EXPERTS',
  'max-experts-per-worker': 'SWITCHYARD_MAX_EXPERTS_PER_WORKER',
  'placement-nodes': 'SWITCHYARD_PLACEMENT_NODES',
  'expert-dtype': 'SWITCHYARD_EXPERT_DTYPE',
  dtype: 'SWITCHYARD_DENSE_DTYPE',
  'intra-op-threads': 'SWITCHYARD_INTRA_OP_THREADS',
  'micro-batches': 'SWITCHYARD_MICRO_BATCHES',
  'max-running': 'SWITCHYARD_MAX_RUNNING',
  'max-queue': 'SWITCHYARD_MAX_QUEUE',
  'dispatch-deadline-ms': 'SWITCHYARD_DISPATCH_DEADLINE_MS',
  'expert-load-window-s': 'SWITCHYARD_EXPERT_LOAD_WINDOW_S',
  'nats-url': 'SWITCHYARD_NATS_URL',
  namespace: 'SWITCHYARD_NAMESPACE',
  'ack-wait-ms': 'SWITCHYARD_ACK_WAIT_MS',
  'heartbeat-ms': 'SWITCHYARD_HEARTBEAT_MS',
  'queue-replicas': 'SWITCHYARD_QUEUE_REPLICAS',
  name: 'SWITCHYARD_INSTANCE',
  'discover-workers': 'SWITCHYARD_DISCOVER_WORKERS',
  'registry-ttl-ms': 'SWITCHYARD_REGISTRY_TTL_MS',
  'kv-index-max-entries': 'SWITCHYARD_KV_INDEX_MAX_ENTRIES',
  'router-mode': 'SWITCHYARD_ROUTER_MODE',
  'reroute-after-ms': 'SWITCHYARD_REROUTE_AFTER_MS',
  'engine-ttl-ms': 'SWITCHYARD_ENGINE_TTL_MS',
  'frontend-ttl-ms': 'SWITCHYARD_FRONTEND_TTL_MS',
  role: 'SWITCHYARD_ROLE',
  'kv-port': 'SWITCHYARD_KV_PORT',
  'kv-data-port': 'SWITCHYARD_KV_DATA_PORT',
  'kv-advertise-host': 'SWITCHYARD_KV_ADVERTISE_HOST',
  'kv-fetch': 'SWITCHYARD_KV_FETCH',
  'kv-fetch-deadline-ms': 'SWITCHYARD_KV_FETCH_DEADLINE_MS',
  'kv-transport': 'SWITCHYARD_KV_TRANSPORT',
  'kv-offload': 'SWITCHYARD_KV_OFFLOAD',
  'prefill-deadline-ms': 'SWITCHYARD_PREFILL_DEADLINE_MS',
  'kv-blocks': 'SWITCHYARD_KV_BLOCKS',
  'api-key': 'SWITCHYARD_API_KEY',
  'api-keys-file': 'SWITCHYARD_API_KEYS_FILE',
  'rate-limit': 'SWITCHYARD_RATE_LIMIT',
  'max-concurrent-per-key': 'SWITCHYARD_MAX_CONCURRENT_PER_KEY',
  'worker-tls-ca': 'SWITCHYARD_WORKER_TLS_CA',
  'worker-tls-cert': 'SWITCHYARD_WORKER_TLS_CERT',
  'worker-tls-key': 'SWITCHYARD_WORKER_TLS_KEY',
  'tokenize-inline-max-chars': 'SWITCHYARD_TOKENIZE_INLINE_MAX_CHARS',
} as const;
/** What each flag takes and does, for `--help` (its variable is added from ENV_OF). */
const FLAG_HELP: { readonly [F in keyof typeof ENV_OF]: readonly [value: string, description: string] } = {
  model: ['dir', 'model directory (required)'],
  host: ['host', 'address to listen on (default 127.0.0.1)'],
  port: ['n', 'HTTP port (default 8000)'],
  workers: ['host:port,...', 'expert workers; without them the experts run in this process'],
  placement: [
    'contiguous|round-robin|eplb',
    'how experts are placed on the workers (default contiguous); eplb: from measured loads (--expert-loads)',
  ],
  replication: ['n', 'workers holding each expert (default 1; not with eplb)'],
  'expert-loads': [
    'file',
    'eplb: JSON loads [layer][expert], or a saved GET /v1/switchyard/stats (its expertLoad) from an earlier run',
  ],
  'eplb-warmup-s': [
    'n',
    'eplb without a loads file: serve on the static placement, then after n s switch once to one placed from the pairs routed (--workers only)',
  ],
  'rebalance-interval-s': [
    'n',
    'eplb (with a workers list): re-place live every n s from the pairs routed when it gains enough (0: only on POST /v1/switchyard/rebalance)',
  ],
  'rebalance-threshold': ['x', 'eplb: the least predicted balancedness gain worth a re-placement (default 0.05)'],
  'redundant-experts': ['n', 'eplb: extra replicas per layer, given to the experts with the most load per replica'],
  'max-experts-per-worker': ['n', 'eplb: replicas a worker may hold per layer (default: the fewest that fit)'],
  'placement-nodes': ['n', 'eplb: balance over this many nodes of consecutive workers first (default 1)'],
  'expert-dtype': ['fp32|int8', 'expert weights (default fp32)'],
  dtype: ['fp32|int8', 'attention projections and LM head (default fp32)'],
  'intra-op-threads': ['n', 'onnxruntime intra-op threads per session (default: every core)'],
  'micro-batches': ['n', 'micro-batches per step, overlapping attention and experts (default 1)'],
  'max-running': ['n', 'sequences in a batch (default 64)'],
  'max-queue': ['n', 'requests queued in process before 429 (default 256)'],
  'dispatch-deadline-ms': ['n', 'deadline of one expert call (default 10000)'],
  'expert-load-window-s': [
    'n',
    'seconds of routing decisions the expert load statistics cover, on /metrics and in the stats (default 60)',
  ],
  'nats-url': ['url', 'NATS with JetStream: requests go through its work queue'],
  namespace: [
    'name',
    'the cluster’s namespace on NATS: its subjects, streams and buckets (a-z, 0-9, -; default default)',
  ],
  'ack-wait-ms': ['n', 'queue ack wait (default 30000)'],
  'heartbeat-ms': ['n', 'in-progress heartbeat (default ack wait ÷ 3)'],
  'queue-replicas': ['n', 'replicas of the request stream (default 1)'],
  name: ['instance', 'this gateway’s name in NATS and logs (default gateway-<pid>)'],
  'discover-workers': ['n', 'wait for n workers in the NATS registry and follow it'],
  'registry-ttl-ms': ['n', 'worker registry TTL (default 15000)'],
  'kv-index-max-entries': ['n', 'cluster prefix index bound (default 1000000)'],
  'router-mode': ['kv|round-robin|random', 'how the frontend picks an engine (default kv)'],
  'reroute-after-ms': ['n', 'a routed request whose engine is silent this long goes to any engine (default 5000)'],
  'engine-ttl-ms': ['n', 'an engine silent this long is gone (default 2000)'],
  'frontend-ttl-ms': ['n', 'a frontend silent this long is gone: its requests are stopped (default 1500)'],
  role: ['both|prefill|decode', 'this engine’s part: all of a request, or only prefill / decode (NATS)'],
  'kv-port': ['n', 'port this engine serves its KV pages to peers on (0: a free port)'],
  'kv-data-port': [
    'n',
    'port of this engine’s KV bulk data plane, page fetches over plain TCP (default: the KV port + 1; a free one when that is 0)',
  ],
  'kv-advertise-host': ['host', 'address peers fetch this engine’s pages at (default: the host, or the host name)'],
  'kv-fetch': [
    'auto|always|never',
    'fetch prompt prefixes peers or a page store hold (auto: when faster than recomputing)',
  ],
  'kv-fetch-deadline-ms': ['n', 'deadline of one page fetch before admission'],
  'kv-transport': [
    'tcp|grpc',
    'fetch pages over peers’ bulk data planes, gRPC when a peer has none (tcp), or always over gRPC (default tcp)',
  ],
  'kv-offload': ['on|off', 'push evicted pages to the page store'],
  'prefill-deadline-ms': ['n', 'deadline of a prefill job (decode role)'],
  'kv-blocks': ['n', 'KV cache blocks (default: enough for a full batch of full contexts, ≤ 1 GiB)'],
  'api-key': [
    'key',
    'require "Authorization: Bearer <key>" on every route but /health and /ready (tenant default; prefer the variable: flags show in ps)',
  ],
  'api-keys-file': [
    'file',
    'API keys, one "<key> <tenant>" per line (# comments); a tenant’s requests share prefix-cache blocks only with its own',
  ],
  'rate-limit': ['n', 'requests per minute per API key (429 with Retry-After above it; default: none)'],
  'max-concurrent-per-key': ['n', 'generation requests one API key may have in flight (429 above it; default: none)'],
  'worker-tls-ca': [
    'file',
    'PEM CA that signs the workers’ certificates: gRPC to workers over TLS (default: plaintext)',
  ],
  'worker-tls-cert': ['file', 'this gateway’s PEM certificate, for workers that require mutual TLS'],
  'worker-tls-key': ['file', 'the private key (PEM) of that gateway certificate'],
  'tokenize-inline-max-chars': [
    'n',
    'prompt texts longer than this are tokenized on a thread of their own, off the event loop (default 16384)',
  ],
};

const values = parseServiceFlags({
  name: 'gateway',
  version: VERSION,
  summary: 'The Switchyard gateway: HTTP API (OpenAI-compatible), the dense model part and expert dispatch.',
  flags: [
    ...Object.entries(ENV_OF).map(([name, variable]) => {
      const [value, description] = FLAG_HELP[name as keyof typeof ENV_OF];
      // NATS_URL too: the variable the NATS tools (and the Kubernetes base) use.
      return { name, env: variable, value, description, ...(name === 'nats-url' ? { alsoEnv: 'NATS_URL' } : {}) };
    }),
    {
      name: 'no-engine',
      env: 'SWITCHYARD_NO_ENGINE',
      description: 'a frontend only: queue requests for other gateways',
    },
    {
      name: 'public-metrics',
      env: 'SWITCHYARD_PUBLIC_METRICS',
      description: 'with API keys: serve /metrics, /v1/switchyard/stats and the live page without a key',
    },
  ],
  epilogue: `Flags win over environment variables, which win over the defaults. Without --nats-url the HTTP frontend
feeds this gateway's own engine; with it, requests go through the JetStream work queue and any gateway's
engine serves them, and each engine serves its KV pages to peers on --kv-port (gRPC) and --kv-data-port (plain TCP), fetching prompt prefixes
other engines or a page store hold when that beats recomputing them (--kv-fetch). With --role decode, new
prompts are computed by a --role prefill engine and their pages fetched. NATS credentials come from NATS_CREDS (a .creds file), NATS_NKEY (an NKey seed file), NATS_USER and
NATS_PASSWORD, or NATS_TOKEN, and TLS files from NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY. Telemetry: SWITCHYARD_TRACE_FILE, SWITCHYARD_TRACE_DETAIL, OTEL_*.`,
  argv: process.argv.slice(2),
  env,
}) as { readonly [F in keyof typeof ENV_OF]?: string } & {
  readonly 'no-engine'?: true;
  readonly 'public-metrics'?: true;
};

function routerMode(value: string): RouterMode {
  const mode = ROUTER_MODES.find((m) => m === value);
  if (mode === undefined) fail(`--router-mode must be one of ${ROUTER_MODES.join(', ')}, got "${value}"`);
  return mode;
}

function fail(message: string): never {
  process.stderr.write(`gateway: ${message}\n`);
  process.exit(2);
}

function int(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`${name} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value))
    fail(`${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

function port(name: string, value: string | undefined, fallback: number): number {
  const n = int(name, value, fallback, 0);
  if (n > 65535) fail(`${name} must be a port number (0–65535), got "${value}"`);
  return n;
}

/** Peers reach a wildcard-bound gateway by its host name (in a pod: set the pod IP instead). */
function advertiseHostFor(host: string): string {
  return host === '0.0.0.0' || host === '::' ? hostname() : host;
}

if (!values.model) fail('--model (or SWITCHYARD_MODEL_DIR) is required');
const apiKeys = await loadApiKeys(values['api-key'], values['api-keys-file']).catch((error: unknown) =>
  fail(error instanceof Error ? error.message : String(error)),
);
const workerTls = await workerTlsOf().catch((error: unknown) =>
  fail(error instanceof Error ? error.message : String(error)),
);
if (values['max-concurrent-per-key'] && apiKeys.size === 0)
  fail('--max-concurrent-per-key counts requests per API key: give --api-key or --api-keys-file');
if (values['rate-limit'] && apiKeys.size === 0)
  fail('--rate-limit counts requests per API key: give --api-key or --api-keys-file');

const d = DEFAULT_GATEWAY_CONFIG;
const placement = oneOf('--placement', values.placement, ['contiguous', 'round-robin', 'eplb'] as const, d.placement);
for (const flag of [
  'expert-loads',
  'eplb-warmup-s',
  'rebalance-interval-s',
  'rebalance-threshold',
  'redundant-experts',
  'max-experts-per-worker',
  'placement-nodes',
] as const)
  if (values[flag] !== undefined && placement !== 'eplb') fail(`--${flag} needs --placement eplb`);
const kvPort = port('--kv-port', values['kv-port'], d.kvPort);
if (kvPort === 65535 && !values['kv-data-port']) fail('--kv-data-port is required when --kv-port is 65535');
const config: GatewayConfig = Object.freeze({
  ...d,
  modelDir: values.model,
  host: values.host ?? d.host,
  port: int('--port', values.port, d.port),
  workers: (values.workers ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  placement: placement === 'eplb' ? d.placement : placement,
  ...(placement === 'eplb' ? eplbSettings() : {}),
  replication: int('--replication', values.replication, d.replication, 1),
  expertDtype: oneOf('--expert-dtype', values['expert-dtype'], ['fp32', 'int8'] as const, d.expertDtype),
  denseDtype: oneOf('--dtype', values.dtype, ['fp32', 'int8'] as const, d.denseDtype),
  ...(values['intra-op-threads']
    ? { intraOpThreads: int('--intra-op-threads', values['intra-op-threads'], 1, 1) }
    : {}),
  microBatches: int('--micro-batches', values['micro-batches'], d.microBatches, 1),
  maxRunningSequences: int('--max-running', values['max-running'], d.maxRunningSequences, 1),
  maxQueuedRequests: int('--max-queue', values['max-queue'], d.maxQueuedRequests, 0),
  dispatchDeadlineMs: int('--dispatch-deadline-ms', values['dispatch-deadline-ms'], d.dispatchDeadlineMs, 1),
  expertLoadWindowMs:
    1000 * int('--expert-load-window-s', values['expert-load-window-s'], d.expertLoadWindowMs / 1000, 1),
  instanceName: values.name ?? `gateway-${process.pid}`,
  serveQueue: values['no-engine'] !== true,
  discoverWorkers: int('--discover-workers', values['discover-workers'], 0, 0),
  registryTtlMs: int('--registry-ttl-ms', values['registry-ttl-ms'], d.registryTtlMs, 500),
  kvIndexMaxEntries: int('--kv-index-max-entries', values['kv-index-max-entries'], d.kvIndexMaxEntries, 1),
  routerMode: routerMode(values['router-mode'] ?? d.routerMode),
  rerouteAfterMs: int('--reroute-after-ms', values['reroute-after-ms'], d.rerouteAfterMs, 100),
  engineTtlMs: int('--engine-ttl-ms', values['engine-ttl-ms'], d.engineTtlMs, 500),
  frontendTtlMs: int('--frontend-ttl-ms', values['frontend-ttl-ms'], d.frontendTtlMs, 1_000),
  role: oneOf('--role', values.role, GATEWAY_ROLES, d.role),
  kvPort,
  kvDataPort: port('--kv-data-port', values['kv-data-port'], kvPort === 0 ? 0 : kvPort + 1),
  kvAdvertiseHost: values['kv-advertise-host'] ?? advertiseHostFor(values.host ?? d.host),
  kvFetch: oneOf('--kv-fetch', values['kv-fetch'], FETCH_MODES, d.kvFetch),
  kvFetchDeadlineMs: int('--kv-fetch-deadline-ms', values['kv-fetch-deadline-ms'], d.kvFetchDeadlineMs, 1),
  kvTransport: oneOf('--kv-transport', values['kv-transport'], KV_TRANSPORTS, d.kvTransport),
  kvOffload: oneOf('--kv-offload', values['kv-offload'], ['on', 'off'] as const, d.kvOffload ? 'on' : 'off') === 'on',
  prefillDeadlineMs: int('--prefill-deadline-ms', values['prefill-deadline-ms'], d.prefillDeadlineMs, 1),
  ...(values['kv-blocks'] ? { numKvBlocks: int('--kv-blocks', values['kv-blocks'], 0, 1) } : {}),
  ...(values['nats-url'] ? { nats: natsSettings(values['nats-url']) } : {}),
  ...(workerTls ? { workerTls } : {}),
  tokenizeInlineMaxChars: int(
    '--tokenize-inline-max-chars',
    values['tokenize-inline-max-chars'],
    d.tokenizeInlineMaxChars,
    0,
  ),
  ...(apiKeys.size > 0
    ? {
        auth: {
          keys: apiKeys,
          publicMetrics: values['public-metrics'] === true,
          ...(values['rate-limit'] ? { requestsPerMinute: int('--rate-limit', values['rate-limit'], 0, 1) } : {}),
          ...(values['max-concurrent-per-key']
            ? { maxConcurrentPerKey: int('--max-concurrent-per-key', values['max-concurrent-per-key'], 0, 1) }
            : {}),
        },
      }
    : {}),
});

/**
 * `--placement eplb`: from a loads file, or after a warm-up on the static placement; over a `--workers`
 * list without a warm-up, re-placed live (on demand, and every `--rebalance-interval-s` when given).
 */
function eplbSettings(): Pick<GatewayConfig, 'loadAware' | 'eplbWarmup' | 'rebalance'> {
  const warmup = values['eplb-warmup-s'];
  const interval = values['rebalance-interval-s'];
  if (warmup && values['expert-loads']) fail('--expert-loads and --eplb-warmup-s exclude each other');
  if (warmup && interval) fail('--eplb-warmup-s and --rebalance-interval-s exclude each other (re-placing covers it)');
  if (warmup) {
    return { eplbWarmup: { warmupMs: 1000 * int('--eplb-warmup-s', warmup, 0, 1), settings: replicaSettings() } };
  }
  const threshold = values['rebalance-threshold'] === undefined ? 0.05 : Number(values['rebalance-threshold']);
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 1)
    fail(`--rebalance-threshold must be a number from 0 to 1, got ${values['rebalance-threshold']}`);
  const rebalance = {
    intervalMs: 1000 * int('--rebalance-interval-s', interval, 0, 0),
    threshold,
    settings: replicaSettings(),
  };
  // Without a loads file the gateway starts on the static placement and re-places from what it routes.
  if (!values['expert-loads'] && !interval)
    fail(
      '--placement eplb needs --expert-loads (a JSON file of loads per layer and expert), --eplb-warmup-s or --rebalance-interval-s',
    );
  return { ...(values['expert-loads'] ? { loadAware: loadAwareSettings() } : {}), rebalance };
}

/** `--placement eplb --expert-loads`: the loads file and the replica settings (the placement checks them against the model). */
function loadAwareSettings(): LoadAwareSettings {
  const file = values['expert-loads'];
  if (!file) fail('--placement eplb needs --expert-loads (a JSON file of loads per layer and expert)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    fail(`--expert-loads ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const loads = parsed !== null && typeof parsed === 'object' && 'expertLoad' in parsed ? parsed.expertLoad : parsed;
  const isRow = (row: unknown) =>
    Array.isArray(row) && row.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0);
  if (!Array.isArray(loads) || loads.length === 0 || !loads.every(isRow))
    fail(`--expert-loads ${file} must hold loads [layer][expert] (numbers ≥ 0), or a stats document with expertLoad`);
  return { loads: loads as number[][], ...replicaSettings() };
}

function replicaSettings(): Omit<LoadAwareSettings, 'loads'> {
  const max = values['max-experts-per-worker'];
  const nodes = values['placement-nodes'];
  return {
    redundantExperts: int('--redundant-experts', values['redundant-experts'], 0, 0),
    ...(max ? { maxExpertsPerWorker: int('--max-experts-per-worker', max, 1, 1) } : {}),
    ...(nodes ? { numNodes: int('--placement-nodes', nodes, 1, 1) } : {}),
  };
}

/** TLS to the workers from --worker-tls-*; undefined when none is given. */
async function workerTlsOf(): Promise<ClientTls | undefined> {
  const caFile = values['worker-tls-ca'];
  const certFile = values['worker-tls-cert'];
  const keyFile = values['worker-tls-key'];
  if (!caFile) {
    if (certFile || keyFile) throw new Error('--worker-tls-cert and --worker-tls-key need --worker-tls-ca');
    return undefined;
  }
  if (Boolean(certFile) !== Boolean(keyFile)) throw new Error('--worker-tls-cert and --worker-tls-key go together');
  await checkTlsFiles({ '--worker-tls-ca': caFile, '--worker-tls-cert': certFile, '--worker-tls-key': keyFile });
  return { caFile, ...(certFile && keyFile ? { certFile, keyFile } : {}) };
}

function natsSettings(url: string): NatsSettings {
  const ackWaitMs = int('--ack-wait-ms', values['ack-wait-ms'], 30_000, 100);
  const heartbeatMs = int('--heartbeat-ms', values['heartbeat-ms'], Math.floor(ackWaitMs / 3), 50);
  return {
    url,
    ...(values.namespace ? { namespace: values.namespace } : {}),
    auth: natsAuthFromEnv(env),
    queue: {
      ackWaitMs,
      heartbeatIntervalMs: heartbeatMs,
      numReplicas: int('--queue-replicas', values['queue-replicas'], 1, 1),
    },
  };
}

let gateway: Gateway;
try {
  const telemetry = await startTelemetry(
    telemetryOptionsFromEnv(env, {
      serviceName: 'switchyard-gateway',
      serviceInstanceId: config.instanceName,
      prometheus: 'handler',
    }),
  );
  gateway = await Gateway.start(config, telemetry);
} catch (error) {
  const e = error as { code?: unknown; message?: string };
  if (typeof e.code === 'string') fail(e.message ?? String(error));
  throw error;
}
const rebalancing = config.rebalance
  ? config.rebalance.intervalMs > 0
    ? `, re-placed live every ${config.rebalance.intervalMs / 1000} s when it gains ≥ ${config.rebalance.threshold}`
    : ', re-placed on POST /v1/switchyard/rebalance'
  : '';
const placed = config.loadAware
  ? `eplb, ${config.loadAware.redundantExperts} redundant experts per layer${rebalancing}`
  : config.rebalance
    ? `${config.placement}, then eplb with ${config.rebalance.settings.redundantExperts} redundant experts per layer${rebalancing}`
    : config.eplbWarmup
      ? `${config.placement}, then eplb with ${config.eplbWarmup.settings.redundantExperts} redundant experts per layer after ${config.eplbWarmup.warmupMs / 1000} s`
      : `${config.placement}, replication ${config.replication}`;
const mode =
  config.discoverWorkers > 0
    ? `expert workers from the NATS registry (${placed})`
    : config.workers.length > 0
      ? `${config.workers.length} expert workers (${placed})`
      : 'experts in process';
const queue = config.nats
  ? `request queue: NATS JetStream at ${redactUrl(config.nats.url)}`
  : 'request queue: in process';
process.stdout.write(`gateway ${config.instanceName}: ${queue}\n`);
process.stdout.write(`gateway serving ${gateway.served.config.name} at ${gateway.url} with ${mode}\n`);

async function shutdown(signal: string): Promise<void> {
  process.stdout.write(`gateway: ${signal}, draining\n`);
  await gateway.stop(10_000);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
stopWithParent();
process.on('SIGINT', () => void shutdown('SIGINT'));
