import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

const ROOT = new URL('../../../', import.meta.url).pathname;
const WORKER_MAIN = 'services/expert-worker/src/main.ts';
const GATEWAY_MAIN = 'services/gateway/src/main.ts';

export interface LocalClusterOptions {
  readonly modelDir: string;
  readonly workers: number;
  readonly host: string;
  readonly port: number;
  readonly expertDtype: 'fp32' | 'int8';
  readonly placement: 'contiguous' | 'round-robin';
  readonly replication: number;
  readonly microBatches: number;
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

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  output: string;
  readonly exited: Promise<number | null>;
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

/** A free TCP port on the given host (bound and released; the child binds it right after). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function startChild(name: string, script: string, args: readonly string[], env: Readonly<Record<string, string>>): Child {
  const proc = spawn(process.execPath, [script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const child: Child = { name, proc, output: '', exited: new Promise((resolve) => proc.once('exit', (code) => resolve(code))) };
  const keep = (d: Buffer) => {
    child.output = (child.output + d.toString()).slice(-8192);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  return child;
}

function waitFor(child: Child, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new ClusterStartError(`${child.name} was not ready within ${timeoutMs} ms. Its output:\n${child.output}`));
    }, timeoutMs);
    const onData = () => {
      if (child.output.includes(text)) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new ClusterStartError(`${child.name} exited (code ${code}) while starting. Its output:\n${child.output}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.proc.stdout?.off('data', onData);
      child.proc.off('exit', onExit);
    };
    child.proc.stdout?.on('data', onData);
    child.proc.once('exit', onExit);
    onData();
  });
}

async function stopChildren(children: readonly Child[], deadlineMs: number): Promise<void> {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), deadlineMs).unref());
  const all = Promise.all(children.map((c) => c.exited));
  if ((await Promise.race([all, timeout])) === 'timeout') {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await all;
  }
}

export interface ExpertWorkerProcesses {
  readonly addresses: readonly string[];
  stop(deadlineMs?: number): Promise<void>;
}

/** Starts N expert worker processes on free loopback ports and waits until each is serving. */
export async function startExpertWorkers(
  modelDir: string,
  count: number,
  options: { expertDtype: 'fp32' | 'int8'; env?: Readonly<Record<string, string>>; startTimeoutMs: number },
): Promise<ExpertWorkerProcesses> {
  const workers: Child[] = [];
  const addresses: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const args = ['--model', modelDir, '--host', '127.0.0.1', '--port', String(port), '--worker-id', `worker-${i}`, '--expert-dtype', options.expertDtype];
      workers.push(startChild(`expert worker ${i}`, WORKER_MAIN, args, options.env ?? {}));
      addresses.push(`127.0.0.1:${port}`);
    }
    await Promise.all(workers.map((w) => waitFor(w, 'serving', options.startTimeoutMs)));
  } catch (error) {
    await stopChildren(workers, 5000);
    throw error;
  }
  return { addresses, stop: (deadlineMs = 15_000) => stopChildren(workers, deadlineMs) };
}

/**
 * Starts N expert workers and a gateway on this machine, waits until each says it is serving, and
 * returns a handle that stops them all (gateway first, so in-flight requests drain, then workers).
 */
export async function startLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  const env = opts.env ?? {};
  const workers: Child[] = [];
  const addresses: string[] = [];
  const gateways: Child[] = [];
  const all = () => [...gateways, ...workers];
  const numGateways = opts.gateways ?? 1;
  if (numGateways > 1 && !opts.natsUrl) throw new ClusterStartError('more than one gateway needs the NATS request queue (set NATS_URL or run nats-server)');
  try {
    for (let i = 0; i < opts.workers; i++) {
      const port = await freePort();
      const args = ['--model', opts.modelDir, '--host', '127.0.0.1', '--port', String(port), '--worker-id', `worker-${i}`, '--expert-dtype', opts.expertDtype];
      workers.push(startChild(`expert worker ${i}`, WORKER_MAIN, args, env));
      addresses.push(`127.0.0.1:${port}`);
    }
    await Promise.all(workers.map((w) => waitFor(w, 'serving', opts.startTimeoutMs)));
    opts.log(`${workers.length} expert worker(s) serving at ${addresses.join(', ')}`);
    const gatewayArgs = [
      '--model', opts.modelDir,
      '--host', opts.host,
      '--expert-dtype', opts.expertDtype,
      '--placement', opts.placement,
      '--replication', String(opts.replication),
      '--micro-batches', String(opts.microBatches),
      ...(addresses.length > 0 ? ['--workers', addresses.join(',')] : []),
    ];
    for (let g = 0; g < numGateways; g++) {
      const args = [...gatewayArgs, '--port', String(opts.port + g), '--name', `gateway-${g}`, ...(opts.natsUrl ? ['--nats-url', opts.natsUrl] : [])];
      gateways.push(startChild(`gateway ${g}`, GATEWAY_MAIN, args, env));
    }
    await Promise.all(gateways.map((gw) => waitFor(gw, 'gateway serving', opts.startTimeoutMs)));
  } catch (error) {
    await stopChildren(all(), 5000);
    throw error;
  }
  const started = all();
  const gatewayUrls = gateways.map((gw, g) => /serving \S+ at (http:\/\/\S+)/.exec(gw.output)?.[1] ?? `http://${opts.host}:${opts.port + g}`);
  const url = gatewayUrls[0] ?? `http://${opts.host}:${opts.port}`;
  let stopping = false;
  const unexpectedExit = new Promise<string>((resolve) => {
    for (const c of started) {
      void c.exited.then((code) => {
        if (!stopping) resolve(`${c.name} exited (code ${code}). Its output:\n${c.output}`);
      });
    }
  });
  return {
    url,
    gatewayUrls,
    workerAddresses: addresses,
    unexpectedExit,
    async stop(deadlineMs = 15_000) {
      stopping = true;
      await stopChildren(gateways, deadlineMs);
      await stopChildren(workers, deadlineMs);
    },
  };
}
