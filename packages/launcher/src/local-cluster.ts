import { startProcess, stopProcesses, type ManagedProcess } from './process.ts';
import { GATEWAY_MAIN, GATEWAY_READY, startWorker } from './services.ts';

export interface LocalClusterOptions {
  readonly modelDir: string;
  readonly workers: number;
  readonly host: string;
  readonly port: number;
  readonly expertDtype: 'fp32' | 'int8';
  readonly placement: 'contiguous' | 'round-robin';
  readonly replication: number;
  readonly microBatches: number;
  /** How NATS gateways choose the engine for a request (`kv`, `round-robin`, `random`); the gateway's default when absent. */
  readonly routerMode?: string;
  /** Gateway replicas (each needs the NATS queue when more than one); ports port, port+1, … */
  readonly gateways?: number;
  /** The NATS server of the request queue; absent = each gateway's in-process queue. */
  readonly natsUrl?: string;
  /** Extra environment for every process (e.g. NATS_URL, SWITCHYARD_TRACE_FILE). */
  readonly env?: Readonly<Record<string, string>>;
  readonly startTimeoutMs: number;
  readonly log: (line: string) => void;
}

export class ClusterStartError extends Error {
  override readonly name = 'ClusterStartError';
  readonly code = 'cluster_start' as const;
}

export interface LocalCluster {
  /** The first gateway's URL. */
  readonly url: string;
  readonly gatewayUrls: readonly string[];
  readonly workerAddresses: readonly string[];
  /** Resolves when any process exits on its own (the cluster is then broken). */
  readonly unexpectedExit: Promise<string>;
  stop(deadlineMs?: number): Promise<void>;
}

export interface ExpertWorkerProcesses {
  readonly addresses: readonly string[];
  stop(deadlineMs?: number): Promise<void>;
}

export interface ExpertWorkerOptions {
  readonly expertDtype: 'fp32' | 'int8';
  /** `--intra-op-threads` of each worker; absent = the worker's default (onnxruntime's, one per core). */
  readonly intraOpThreads?: number;
  readonly env?: Readonly<Record<string, string>>;
  readonly startTimeoutMs: number;
}

/** Starts all, waits for all; if any fails, stops the ones that started and rethrows the first error. */
async function startAll<T extends ManagedProcess>(starts: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(starts);
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stopProcesses(started, 5000);
    throw failed.reason;
  }
  return started;
}

async function startWorkers(modelDir: string, count: number, options: ExpertWorkerOptions) {
  const args = [
    '--expert-dtype',
    options.expertDtype,
    ...(options.intraOpThreads === undefined ? [] : ['--intra-op-threads', String(options.intraOpThreads)]),
  ];
  return startAll(
    Array.from({ length: count }, (_, i) =>
      startWorker(modelDir, `worker-${i}`, args, options.env ?? {}, options.startTimeoutMs),
    ),
  );
}

/** Starts N expert worker processes on free loopback ports and waits until each is serving. */
export async function startExpertWorkers(
  modelDir: string,
  count: number,
  options: ExpertWorkerOptions,
): Promise<ExpertWorkerProcesses> {
  const workers = await startWorkers(modelDir, count, options);
  return {
    addresses: workers.map((w) => w.address),
    stop: (deadlineMs = 15_000) => stopProcesses(workers, deadlineMs),
  };
}

/**
 * Starts N expert workers and a gateway (or several) on this machine, waits until each says it is
 * serving, and returns a handle that stops them all (gateways first, so in-flight requests drain, then
 * workers).
 */
export async function startLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  const env = opts.env ?? {};
  const numGateways = opts.gateways ?? 1;
  if (numGateways > 1 && !opts.natsUrl)
    throw new ClusterStartError('more than one gateway needs the NATS request queue (set NATS_URL or run nats-server)');
  const workers = await startWorkers(opts.modelDir, opts.workers, {
    expertDtype: opts.expertDtype,
    env,
    startTimeoutMs: opts.startTimeoutMs,
  });
  const addresses = workers.map((w) => w.address);
  if (workers.length > 0) opts.log(`${workers.length} expert worker(s) serving at ${addresses.join(', ')}`);
  const gatewayArgs = [
    '--model',
    opts.modelDir,
    '--host',
    opts.host,
    '--expert-dtype',
    opts.expertDtype,
    '--placement',
    opts.placement,
    '--replication',
    String(opts.replication),
    '--micro-batches',
    String(opts.microBatches),
    ...(opts.routerMode !== undefined ? ['--router-mode', opts.routerMode] : []),
    ...(addresses.length > 0 ? ['--workers', addresses.join(',')] : []),
  ];
  let gateways: ManagedProcess[];
  try {
    gateways = await startAll(
      Array.from({ length: numGateways }, (_, g) => {
        const args = [
          ...gatewayArgs,
          '--port',
          String(opts.port + g),
          '--name',
          `gateway-${g}`,
          ...(opts.natsUrl ? ['--nats-url', opts.natsUrl] : []),
        ];
        return startProcess(GATEWAY_MAIN, args, GATEWAY_READY, opts.startTimeoutMs, { name: `gateway ${g}`, env });
      }),
    );
  } catch (error) {
    await stopProcesses(workers, 5000);
    throw error;
  }
  const gatewayUrls = gateways.map(
    (gw, g) => /serving \S+ at (http:\/\/\S+)/.exec(gw.output())?.[1] ?? `http://${opts.host}:${opts.port + g}`,
  );
  let stopping = false;
  const unexpectedExit = new Promise<string>((resolve) => {
    for (const p of [...gateways, ...workers]) {
      void p.exited.then((code) => {
        if (!stopping) resolve(`${p.name} exited (code ${code}). Its output:\n${p.output().slice(-8192)}`);
      });
    }
  });
  return {
    url: gatewayUrls[0] ?? `http://${opts.host}:${opts.port}`,
    gatewayUrls,
    workerAddresses: addresses,
    unexpectedExit,
    async stop(deadlineMs = 15_000) {
      stopping = true;
      await stopProcesses(gateways, deadlineMs);
      await stopProcesses(workers, deadlineMs);
    },
  };
}
