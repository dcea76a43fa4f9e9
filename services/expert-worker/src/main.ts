/**
 * The expert worker process: serves ExpertService (and grpc.health.v1) over the experts the gateway
 * asks it to load. Configuration is read here, once.
 *
 *   node services/expert-worker/src/main.ts --model models/small --port 50051 [--expert-dtype int8]
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { createExpertServer } from '@switchyard/rpc';
import { ExpertWorker } from './expert-worker.ts';
import { modelDirExpertSource } from './expert-source.ts';
import { startTelemetry, telemetryOptionsFromEnv } from '@switchyard/telemetry';
import { ClusterConnection, WorkerRegistry } from '@switchyard/cluster';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: process.env['SWITCHYARD_MODEL_DIR'] },
    host: { type: 'string', default: process.env['SWITCHYARD_WORKER_HOST'] ?? '127.0.0.1' },
    port: { type: 'string', default: process.env['SWITCHYARD_WORKER_PORT'] ?? '50051' },
    'worker-id': { type: 'string', default: process.env['SWITCHYARD_WORKER_ID'] ?? `${hostname()}-${process.pid}` },
    'expert-dtype': { type: 'string', default: process.env['SWITCHYARD_EXPERT_DTYPE'] ?? 'fp32' },
    'execution-provider': { type: 'string', default: process.env['SWITCHYARD_EXECUTION_PROVIDER'] ?? 'cpu' },
    'intra-op-threads': { type: 'string', default: process.env['SWITCHYARD_INTRA_OP_THREADS'] },
    'max-tokens-per-run': { type: 'string', default: '65536' },
    'metrics-port': { type: 'string', default: process.env['SWITCHYARD_WORKER_METRICS_PORT'] },
    'nats-url': { type: 'string', default: process.env['NATS_URL'] },
    advertise: { type: 'string', default: process.env['SWITCHYARD_WORKER_ADVERTISE'] },
    'registry-ttl-ms': { type: 'string', default: process.env['SWITCHYARD_REGISTRY_TTL_MS'] },
    help: { type: 'boolean', short: 'h' },
  },
});

function fail(message: string): never {
  process.stderr.write(`expert-worker: ${message}\n`);
  process.exit(2);
}

if (values.help) {
  process.stdout.write(
    'usage: expert-worker --model <dir> [--host 127.0.0.1] [--port 50051] [--worker-id id] [--expert-dtype fp32|int8]\n' +
      '                     [--execution-provider cpu|cuda] [--intra-op-threads n (default: onnxruntime default)] [--max-tokens-per-run n] [--metrics-port n]\n' +
      'Environment: SWITCHYARD_MODEL_DIR, SWITCHYARD_WORKER_HOST, SWITCHYARD_WORKER_PORT, SWITCHYARD_WORKER_ID,\n' +
      '             SWITCHYARD_EXPERT_DTYPE, SWITCHYARD_EXECUTION_PROVIDER, SWITCHYARD_INTRA_OP_THREADS,\n' +
      '             SWITCHYARD_WORKER_METRICS_PORT (Prometheus /metrics), SWITCHYARD_TRACE_FILE, SWITCHYARD_TRACE_DETAIL, OTEL_*\n' +
      'With --nats-url (NATS_URL; credentials NATS_USER/NATS_PASSWORD or NATS_TOKEN) the worker registers in the\n' +
      'switchyard_workers bucket under --advertise host:port (default host:port) and heartbeats until it stops.\n',
  );
  process.exit(0);
}
if (!values.model) fail('--model (or SWITCHYARD_MODEL_DIR) is required');
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number, got ${values.port}`);
const dtype = values['expert-dtype'];
if (dtype !== 'fp32' && dtype !== 'int8') fail(`--expert-dtype must be fp32 or int8, got ${dtype}`);
const provider = values['execution-provider'];
if (provider !== 'cpu' && provider !== 'cuda') fail(`--execution-provider must be cpu or cuda, got ${provider}`);
const threads = values['intra-op-threads'] === undefined ? undefined : Number(values['intra-op-threads']);
if (threads !== undefined && (!Number.isInteger(threads) || threads < 1))
  fail(`--intra-op-threads must be an integer ≥ 1, got ${values['intra-op-threads']}`);
const maxTokensPerRun = Number(values['max-tokens-per-run']);
const metricsPort = values['metrics-port'] === undefined ? undefined : Number(values['metrics-port']);
if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0))
  fail(`--metrics-port must be a port number, got ${values['metrics-port']}`);
const workerId = values['worker-id'] ?? 'worker';
const telemetry = await startTelemetry(
  telemetryOptionsFromEnv(process.env, {
    serviceName: 'switchyard-expert-worker',
    serviceInstanceId: workerId,
    ...(metricsPort !== undefined ? { prometheus: { port: metricsPort, host: values.host ?? '127.0.0.1' } } : {}),
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
  tracer: telemetry.tracer,
  dtype,
  session: { executionProvider: provider, ...(threads ? { intraOpThreads: threads } : {}) },
  maxTokensPerRun,
});
const server = await createExpertServer({ handler: worker, host: values.host ?? '127.0.0.1', port });
const advertised = values.advertise ?? `${values.host}:${server.port}`;
let registration: { stop(): Promise<void> } | undefined;
let conn: ClusterConnection | undefined;
if (values['nats-url']) {
  try {
    const env = process.env;
    conn = await ClusterConnection.open({
      url: values['nats-url'],
      name: `worker-${workerId}`,
      ...(env['NATS_USER'] ? { user: env['NATS_USER'] } : {}),
      ...(env['NATS_PASSWORD'] ? { pass: env['NATS_PASSWORD'] } : {}),
      ...(env['NATS_TOKEN'] ? { token: env['NATS_TOKEN'] } : {}),
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
  `expert-worker ${values['worker-id']} serving ${source.modelName} on ${values.host}:${server.port} (${dtype} experts, ${provider})\n`,
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
process.on('SIGINT', () => void shutdown('SIGINT'));
