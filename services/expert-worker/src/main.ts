/**
 * The expert worker process: serves ExpertService (and grpc.health.v1) over the experts the gateway
 * asks it to load. Configuration is read here, once.
 *
 *   node services/expert-worker/src/main.ts --model models/small --port 50051 [--expert-dtype int8]
 */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { parseServiceFlags, stopWithParent } from '@switchyard/flags';
import { checkTlsFiles, createExpertServer, type ServerTls } from '@switchyard/rpc';
import { ExpertWorker } from './expert-worker.ts';
import { modelDirExpertSource } from './expert-source.ts';
import { OffThreadGraphBuilder } from './graph-thread.ts';
import { startTelemetry, telemetryOptionsFromEnv } from '@switchyard/telemetry';
import { ClusterConnection, natsAuthFromEnv, WorkerRegistry } from '@switchyard/cluster';

/** Each flag and the environment variable it falls back to (flags win over variables, variables over defaults). */
const ENV_OF = {
  model: 'SWITCHYARD_MODEL_DIR',
  host: 'SWITCHYARD_WORKER_HOST',
  port: 'SWITCHYARD_WORKER_PORT',
  'worker-id': 'SWITCHYARD_WORKER_ID',
  'expert-dtype': 'SWITCHYARD_EXPERT_DTYPE',
  'execution-provider': 'SWITCHYARD_EXECUTION_PROVIDER',
  'intra-op-threads': 'SWITCHYARD_INTRA_OP_THREADS',
  'max-tokens-per-run': 'SWITCHYARD_WORKER_MAX_TOKENS_PER_RUN',
  'metrics-port': 'SWITCHYARD_WORKER_METRICS_PORT',
  'nats-url': 'SWITCHYARD_NATS_URL',
  namespace: 'SWITCHYARD_NAMESPACE',
  advertise: 'SWITCHYARD_WORKER_ADVERTISE',
  'registry-ttl-ms': 'SWITCHYARD_REGISTRY_TTL_MS',
  'tls-cert': 'SWITCHYARD_WORKER_TLS_CERT',
  'tls-key': 'SWITCHYARD_WORKER_TLS_KEY',
  'tls-client-ca': 'SWITCHYARD_WORKER_TLS_CLIENT_CA',
} as const;
/** What each flag takes and does, for `--help`. */
const FLAG_HELP: { readonly [F in keyof typeof ENV_OF]: readonly [value: string, description: string] } = {
  model: ['dir', 'model directory (required)'],
  host: ['host', 'address to listen on (default 127.0.0.1)'],
  port: ['n', 'gRPC port (default 50051)'],
  'worker-id': ['id', 'this worker’s id (default <hostname>-<pid>)'],
  'expert-dtype': ['fp32|int8', 'expert weights (default fp32)'],
  'execution-provider': ['cpu|cuda', 'onnxruntime execution provider (default cpu)'],
  'intra-op-threads': ['n', 'onnxruntime intra-op threads per session (default: every core)'],
  'max-tokens-per-run': ['n', 'largest Run message, in tokens (default 65536)'],
  'metrics-port': ['n', 'serve Prometheus GET /metrics on this port'],
  'nats-url': ['url', 'register in the NATS worker registry and heartbeat'],
  namespace: [
    'name',
    'the cluster’s namespace on NATS: its subjects, streams and buckets (a-z, 0-9, -; default default)',
  ],
  advertise: ['host:port', 'address gateways reach this worker at (default host:port)'],
  'registry-ttl-ms': ['n', 'worker registry TTL (default 15000)'],
  'tls-cert': ['file', 'PEM certificate: serve gRPC over TLS (default: plaintext); reloaded when the file changes'],
  'tls-key': ['file', 'the private key (PEM) of that certificate'],
  'tls-client-ca': [
    'file',
    'PEM CA of the gateways’ certificates: mutual TLS, a gateway without a certificate it signed is refused',
  ],
};

const values = parseServiceFlags({
  name: 'expert-worker',
  version: (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
    .version,
  summary: 'A Switchyard expert worker: serves ExpertService (gRPC) over the experts gateways ask it to load.',
  flags: Object.entries(ENV_OF).map(([name, variable]) => {
    const [value, description] = FLAG_HELP[name as keyof typeof ENV_OF];
    // NATS_URL too: the variable the NATS tools (and the Kubernetes base) use.
    return { name, env: variable, value, description, ...(name === 'nats-url' ? { alsoEnv: 'NATS_URL' } : {}) };
  }),
  epilogue: `Flags win over environment variables, which win over the defaults. With --nats-url (credentials
NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD or NATS_TOKEN; TLS from NATS_TLS_*) the worker registers in the switchyard_workers bucket under
--advertise and heartbeats until it stops. Telemetry: SWITCHYARD_TRACE_FILE, SWITCHYARD_TRACE_DETAIL, OTEL_*.`,
  argv: process.argv.slice(2),
  env: process.env,
}) as { readonly [F in keyof typeof ENV_OF]?: string };

function fail(message: string): never {
  process.stderr.write(`expert-worker: ${message}\n`);
  process.exit(2);
}

if (!values.model) fail('--model (or SWITCHYARD_MODEL_DIR) is required');
const host = values.host ?? '127.0.0.1';
const port = Number(values.port ?? '50051');
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number, got ${values.port}`);
const dtype = values['expert-dtype'] ?? 'fp32';
if (dtype !== 'fp32' && dtype !== 'int8') fail(`--expert-dtype must be fp32 or int8, got ${dtype}`);
const provider = values['execution-provider'] ?? 'cpu';
if (provider !== 'cpu' && provider !== 'cuda') fail(`--execution-provider must be cpu or cuda, got ${provider}`);
const threads = values['intra-op-threads'] === undefined ? undefined : Number(values['intra-op-threads']);
if (threads !== undefined && (!Number.isInteger(threads) || threads < 1))
  fail(`--intra-op-threads must be an integer ≥ 1, got ${values['intra-op-threads']}`);
const maxTokensPerRun = Number(values['max-tokens-per-run'] ?? '65536');
if (!Number.isInteger(maxTokensPerRun) || maxTokensPerRun < 1)
  fail(`--max-tokens-per-run must be a positive integer, got ${values['max-tokens-per-run']}`);
const metricsPort = values['metrics-port'] === undefined ? undefined : Number(values['metrics-port']);
if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0))
  fail(`--metrics-port must be a port number, got ${values['metrics-port']}`);
const workerId = values['worker-id'] ?? `${hostname()}-${process.pid}`;
const tls = await serverTlsOf().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));

/** TLS from --tls-*; undefined when none is given (plaintext). */
async function serverTlsOf(): Promise<ServerTls | undefined> {
  const certFile = values['tls-cert'];
  const keyFile = values['tls-key'];
  const clientCaFile = values['tls-client-ca'];
  if (!certFile && !keyFile) {
    if (clientCaFile) throw new Error('--tls-client-ca needs --tls-cert and --tls-key');
    return undefined;
  }
  if (!certFile || !keyFile) throw new Error('--tls-cert and --tls-key go together');
  await checkTlsFiles({ '--tls-cert': certFile, '--tls-key': keyFile, '--tls-client-ca': clientCaFile });
  return { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}) };
}
const telemetry = await startTelemetry(
  telemetryOptionsFromEnv(process.env, {
    serviceName: 'switchyard-expert-worker',
    serviceInstanceId: workerId,
    ...(metricsPort !== undefined ? { prometheus: { port: metricsPort, host } } : {}),
  }),
);

let source;
try {
  source = await modelDirExpertSource(values.model);
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
const worker = new ExpertWorker({
  workerId,
  source,
  graphs: new OffThreadGraphBuilder({ modelDir: values.model, dtype }),
  tracer: telemetry.tracer,
  dtype,
  session: { executionProvider: provider, ...(threads ? { intraOpThreads: threads } : {}) },
  maxTokensPerRun,
});
const server = await createExpertServer({ handler: worker, host, port, ...(tls ? { tls } : {}) });
const advertised = values.advertise ?? `${host}:${server.port}`;
let registration: { stop(): Promise<void> } | undefined;
let conn: ClusterConnection | undefined;
if (values['nats-url']) {
  try {
    const env = process.env;
    conn = await ClusterConnection.open({
      url: values['nats-url'],
      name: `worker-${workerId}`,
      ...(values.namespace ? { namespace: values.namespace } : {}),
      ...natsAuthFromEnv(env),
    });
    const ttl = values['registry-ttl-ms'] === undefined ? undefined : Number(values['registry-ttl-ms']);
    const registry = await WorkerRegistry.open(
      conn,
      ttl !== undefined && Number.isInteger(ttl) && ttl > 0 ? { ttlMs: ttl } : {},
    );
    const record = () => ({
      id: workerId,
      address: advertised,
      model: source.modelName,
      ...(source.weightsDigest !== undefined ? { weightsDigest: source.weightsDigest } : {}),
      experts: worker.hosted().map((r) => [r.layer, r.expertId] as const),
      executionProvider: provider,
      load: { numInFlight: 0 },
    });
    await registry.register(record());
    registration = registry.keepAlive(record);
  } catch (error) {
    await server.close(0);
    fail(error instanceof Error ? error.message : String(error));
  }
}
process.stdout.write(
  `expert-worker ${workerId} serving ${source.modelName} on ${host}:${server.port} (${dtype} experts, ${provider}, ${tls ? (tls.clientCaFile ? 'mutual TLS' : 'TLS') : 'plaintext'})\n`,
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`expert-worker: ${signal}, draining\n`);
  server.setServingStatus('NOT_SERVING');
  // Leave the registry first, so gateways stop choosing this worker before it stops answering.
  await registration?.stop().catch(() => undefined);
  await server.close(5000);
  await conn?.close(2000);
  await worker.close();
  await telemetry.shutdown();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
stopWithParent();
process.on('SIGINT', () => void shutdown('SIGINT'));
