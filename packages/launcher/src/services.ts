import { freePort } from './free-port.ts';
import { startProcess, type ManagedProcess } from './process.ts';

/** Entry points of the services, relative to the repository root. */
export const GATEWAY_MAIN = 'services/gateway/src/main.ts';
export const WORKER_MAIN = 'services/expert-worker/src/main.ts';
export const KV_STORE_MAIN = 'services/kv-store/src/main.ts';

/** What a service prints once it serves. */
export const WORKER_READY = 'serving';
export const GATEWAY_READY = 'gateway serving';
export const KV_STORE_READY = 'kv-store serving';

export type ServiceProcess = ManagedProcess & { readonly port: number };

/**
 * Starts a process on a free port, again on another one (up to 3 tries) when it could not listen: a
 * port found free can be taken by someone else's ephemeral listener before the child binds it.
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !err.message.includes('EADDRINUSE')) throw err;
    }
  }
}

/** Starts an expert worker process for a model directory on a free loopback port. */
export async function startWorker(
  modelDir: string,
  workerId: string,
  extraArgs: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 60_000,
): Promise<ServiceProcess & { readonly address: string }> {
  return onFreePort((port) => startWorkerOn(port, modelDir, workerId, extraArgs, env, timeoutMs));
}

/** Starts an expert worker process on a given loopback port (a supervised restart keeps its address). */
export async function startWorkerOn(
  port: number,
  modelDir: string,
  workerId: string,
  extraArgs: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 60_000,
): Promise<ServiceProcess & { readonly address: string }> {
  const args = [
    '--model',
    modelDir,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--worker-id',
    workerId,
    ...extraArgs,
  ];
  const proc = await startProcess(WORKER_MAIN, args, WORKER_READY, timeoutMs, {
    name: `expert worker ${workerId}`,
    env,
  });
  return Object.assign(proc, { port, address: `127.0.0.1:${port}` });
}

/** Starts a gateway process on a free loopback port; resolves with its base URL once it serves. */
export async function startGateway(
  modelDir: string,
  extraArgs: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 120_000,
): Promise<ServiceProcess & { readonly url: string }> {
  return onFreePort(async (port) => {
    const proc = await startProcess(
      GATEWAY_MAIN,
      ['--model', modelDir, '--port', String(port), ...extraArgs],
      GATEWAY_READY,
      timeoutMs,
      { name: 'gateway', env },
    );
    return Object.assign(proc, { port, url: `http://127.0.0.1:${port}` });
  });
}

/** Starts a KV page store process on a free loopback port; resolves once it serves. */
export async function startKvStore(
  natsUrl: string,
  extraArgs: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 30_000,
): Promise<ServiceProcess & { readonly address: string; readonly dataAddress: string }> {
  return onFreePort((port) => startKvStoreOn(port, natsUrl, extraArgs, env, timeoutMs));
}

/** Starts a KV page store process on a given loopback port (its data port is a free one). */
export async function startKvStoreOn(
  port: number,
  natsUrl: string,
  extraArgs: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 30_000,
): Promise<ServiceProcess & { readonly address: string; readonly dataAddress: string }> {
  // NOTE: the data port is a free one too (port + 1, the store's default, may be taken).
  const proc = await startProcess(
    KV_STORE_MAIN,
    ['--nats-url', natsUrl, '--host', '127.0.0.1', '--port', String(port), '--kv-data-port', '0', ...extraArgs],
    KV_STORE_READY,
    timeoutMs,
    { name: 'kv-store', env },
  );
  const dataAddress = /pages over TCP at (\S+) /.exec(proc.output())?.[1];
  if (dataAddress === undefined) {
    await proc.stop(2_000);
    throw new Error('the KV page store did not say where it serves pages over TCP');
  }
  return Object.assign(proc, { port, address: `127.0.0.1:${port}`, dataAddress });
}
