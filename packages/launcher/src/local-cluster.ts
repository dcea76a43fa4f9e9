import { availableParallelism } from 'node:os';
import { startProcess, stopProcesses, type ManagedProcess } from './process.ts';
import { GATEWAY_MAIN, GATEWAY_READY, startKvStore, startKvStoreOn, startWorker, startWorkerOn } from './services.ts';
import { Supervisor } from './supervisor.ts';

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
  /** The cluster's namespace on NATS, given to every child as SWITCHYARD_NAMESPACE (default: theirs, `default`). */
  readonly namespace?: string;
  /** Start a KV page store the engines offload evicted pages to and fetch from (needs NATS). */
  readonly kvStore?: boolean;
  /** --capacity-bytes of the page store (default: the store's own). */
  readonly kvStoreCapacity?: string;
  /**
   * Disaggregated prefill and decode: this many `--role prefill` engines are started after the gateways,
   * and the gateways run as `--role decode` (needs NATS). 0 = every gateway prefills its own requests.
   */
  readonly prefillEngines?: number;
  /**
   * `--intra-op-threads` of each expert worker; absent = `colocatedWorkerThreads(workers)`: the workers
   * share this machine's cores instead of each taking all of them.
   */
  readonly workerThreads?: number;
  /** Extra environment for every process (e.g. NATS_URL, SWITCHYARD_TRACE_FILE). */
  readonly env?: Readonly<Record<string, string>>;
  readonly startTimeoutMs: number;
  readonly log: (line: string) => void;
}

/**
 * Intra-op threads for each of `workers` expert workers that run on one machine: its cores divided among
 * them (at least one each). A step sends work to every worker at once, so workers that each took every
 * core would run 2× (or more) the threads the machine has. Measured on the 2-core development VM with
 * `npm run bench:dispatch -- --models olmoe-slice --batches 1,8,32 --payload-tokens 1 --repeats 5
 * --rounds 3` (three runs each, alternating, 9 rounds): distributed ÷ monolithic decode with 1 thread per
 * worker against every core per worker, medians, b1 0.88 / 0.85, b8 0.97 / 0.91, b32 0.89 / 0.85.
 */
export function colocatedWorkerThreads(workers: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, workers)));
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
  /** The page store's KvPageService address, when one was started. */
  readonly kvStoreAddress: string | undefined;
  /**
   * Resolves when a process could not be kept running: every child that exits on its own is restarted
   * (with a backoff, within a budget), and only one past its budget breaks the cluster.
   */
  readonly unexpectedExit: Promise<string>;
  /** One line per process: name, pid, up for how long (or restarting), restarts so far. */
  describe(): string;
  stop(deadlineMs?: number): Promise<void>;
}

export interface ExpertWorkerProcesses {
  readonly addresses: readonly string[];
  /** Process id of each worker, in address order. */
  readonly pids: readonly number[];
  stop(deadlineMs?: number): Promise<void>;
}

export interface ExpertWorkerOptions {
  readonly expertDtype: 'fp32' | 'int8';
  /** `--intra-op-threads` of each worker; absent = the worker's default (every core). */
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
    pids: workers.map((w) => w.child.pid ?? -1),
    stop: (deadlineMs = 15_000) => stopProcesses(workers, deadlineMs),
  };
}

/**
 * Starts N expert workers and a gateway (or several) on this machine, waits until each says it is
 * serving, and returns a handle that stops them all (gateways first, so in-flight requests drain, then
 * workers).
 */
export async function startLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  const env = { ...opts.env, ...(opts.namespace !== undefined ? { SWITCHYARD_NAMESPACE: opts.namespace } : {}) };
  const numGateways = opts.gateways ?? 1;
  if (numGateways > 1 && !opts.natsUrl)
    throw new ClusterStartError('more than one gateway needs the NATS request queue (set NATS_URL or run nats-server)');
  const numPrefill = opts.prefillEngines ?? 0;
  if ((opts.kvStore === true || numPrefill > 0) && !opts.natsUrl)
    throw new ClusterStartError('a KV page store and prefill engines need NATS (set NATS_URL or run nats-server)');
  const workerThreads = opts.workerThreads ?? colocatedWorkerThreads(opts.workers);
  const workerArgs = ['--expert-dtype', opts.expertDtype, '--intra-op-threads', String(workerThreads)];
  const workers = await startWorkers(opts.modelDir, opts.workers, {
    expertDtype: opts.expertDtype,
    intraOpThreads: workerThreads,
    env,
    startTimeoutMs: opts.startTimeoutMs,
  });
  const addresses = workers.map((w) => w.address);
  if (workers.length > 0) {
    const threads = `${workerThreads} intra-op thread${workerThreads === 1 ? '' : 's'} each`;
    opts.log(`${workers.length} expert worker(s) serving at ${addresses.join(', ')} (${threads})`);
  }
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
  const natsArgs = opts.natsUrl ? ['--nats-url', opts.natsUrl] : [];
  let store: (ManagedProcess & { readonly port: number }) | undefined;
  let kvStoreAddress: string | undefined;
  let gateways: ManagedProcess[];
  const storeArgs = [
    '--name',
    'kv-store-0',
    ...(opts.kvStoreCapacity !== undefined ? ['--capacity-bytes', opts.kvStoreCapacity] : []),
  ];
  const roleArgs = numPrefill > 0 ? ['--role', 'decode'] : [];
  const gatewaySpecs = [
    ...Array.from({ length: numGateways }, (_, g) => ({
      id: `gateway-${g}`,
      name: `gateway ${g}`,
      args: [...gatewayArgs, '--port', String(opts.port + g), '--name', `gateway-${g}`, ...natsArgs, ...roleArgs],
    })),
    // A prefill engine's HTTP port is not advertised: requests reach it only through decode engines.
    ...Array.from({ length: numPrefill }, (_, p) => ({
      id: `prefill-${p}`,
      name: `prefill engine ${p}`,
      args: [
        ...gatewayArgs,
        '--port',
        String(opts.port + numGateways + p),
        '--name',
        `prefill-${p}`,
        ...natsArgs,
        '--role',
        'prefill',
      ],
    })),
  ];
  try {
    if (opts.kvStore === true && opts.natsUrl) {
      const started = await startKvStore(opts.natsUrl, storeArgs, env, opts.startTimeoutMs);
      store = started;
      kvStoreAddress = started.address;
      opts.log(`KV page store serving at ${started.address}`);
    }
    gateways = await startAll(
      gatewaySpecs.map((spec) =>
        startProcess(GATEWAY_MAIN, spec.args, GATEWAY_READY, opts.startTimeoutMs, { name: spec.name, env }),
      ),
    );
  } catch (error) {
    await stopProcesses([...workers, ...(store ? [store] : [])], 5000);
    throw error;
  }
  const gatewayUrls = gateways
    .slice(0, numGateways)
    .map((gw, g) => /serving \S+ at (http:\/\/\S+)/.exec(gw.output())?.[1] ?? `http://${opts.host}:${opts.port + g}`);
  // Every child is restarted when it exits on its own: with the same arguments, port and name, so
  // gateways find a restarted worker at its address, and clients a restarted gateway at its URL.
  const supervisor = new Supervisor({ log: opts.log });
  workers.forEach((w, i) =>
    supervisor.add(`worker-${i}`, w, () =>
      startWorkerOn(w.port, opts.modelDir, `worker-${i}`, workerArgs, env, opts.startTimeoutMs),
    ),
  );
  if (store && opts.natsUrl) {
    const { natsUrl } = opts;
    const port = store.port;
    supervisor.add('kv-store-0', store, () => startKvStoreOn(port, natsUrl, storeArgs, env, opts.startTimeoutMs));
  }
  gateways.forEach((gw, i) => {
    const spec = gatewaySpecs[i];
    if (spec)
      supervisor.add(spec.id, gw, () =>
        startProcess(GATEWAY_MAIN, spec.args, GATEWAY_READY, opts.startTimeoutMs, { name: spec.name, env }),
      );
  });
  return {
    url: gatewayUrls[0] ?? `http://${opts.host}:${opts.port}`,
    gatewayUrls,
    workerAddresses: addresses,
    kvStoreAddress,
    unexpectedExit: supervisor.broken,
    describe: () => supervisor.describe(),
    async stop(deadlineMs = 15_000) {
      supervisor.stop();
      // Stopping one that has exited already returns at once.
      const running = supervisor.processes();
      const isGateway = (p: ManagedProcess) => p.name.startsWith('gateway') || p.name.startsWith('prefill');
      await stopProcesses(running.filter(isGateway), deadlineMs);
      await stopProcesses(
        running.filter((p) => !isGateway(p)),
        deadlineMs,
      );
    },
  };
}
