import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

const ROOT = new URL('../../', import.meta.url).pathname;

/** A free TCP port on loopback (bound and released; the caller binds it right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `node <script> ...args` from the repository root and resolves once its stdout contains
 * `readyText`; rejects (with its output) if it exits first or takes longer than timeoutMs.
 */
export function startProcess(
  script: string,
  args: readonly string[],
  readyText: string,
  timeoutMs = 60_000,
  env: Readonly<Record<string, string>> = {},
): Promise<ManagedProcess> {
  const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const managed: ManagedProcess = {
    child,
    output: () => out,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} not ready within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = () => {
      if (out.includes(readyText)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(managed);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before it was ready:\n${out}`));
    });
  });
}

/** Starts an expert worker process for a model directory on a free port. */
export async function startWorker(
  modelDir: string,
  workerId: string,
  extra: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
): Promise<ManagedProcess & { address: string }> {
  const port = await freePort();
  const proc = await startProcess('services/expert-worker/src/main.ts', ['--model', modelDir, '--port', String(port), '--worker-id', workerId, ...extra], 'serving', 60_000, env);
  return { ...proc, address: `127.0.0.1:${port}` };
}

/** Starts a gateway process on a free port; resolves with its base URL once it serves. */
export async function startGateway(
  modelDir: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<ManagedProcess & { url: string }> {
  const port = await freePort();
  const proc = await startProcess('services/gateway/src/main.ts', ['--model', modelDir, '--port', String(port), ...args], 'gateway serving', 120_000, env);
  return { ...proc, url: `http://127.0.0.1:${port}` };
}
