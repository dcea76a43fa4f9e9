import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

const BINARY = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';

export interface NatsServerOptions {
  readonly user?: string;
  readonly pass?: string;
  /** Default true: JetStream on, with a temporary store directory. */
  readonly jetstream?: boolean;
  /** nats-server configuration text (e.g. an `authorization` block), given with `-c`; the flags win. */
  readonly config?: string;
  readonly readyTimeoutMs?: number;
}

/** A test's own nats-server on a free loopback port, with its own store; `stop` removes the store. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly output: () => string;
  /** Kills the server (SIGKILL: the broker dies, it does not drain) and waits for it to exit; the store stays. */
  kill(): Promise<void>;
  /** Starts it again on the same port and store (after `kill`). */
  start(): Promise<void>;
  /** Stops it for good and removes the store. */
  stop(): Promise<void>;
}

/** Starts `nats-server -js -sd <tmp> -p <free port> -a 127.0.0.1` and resolves once it is ready. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'switchyard-nats-'));
  const args = [
    '-p',
    String(port),
    '-a',
    '127.0.0.1',
    ...(options.jetstream === false ? [] : ['-js', '-sd', storeDir]),
  ];
  if (options.config !== undefined) {
    const file = join(storeDir, 'nats-server.conf');
    writeFileSync(file, options.config);
    args.push('-c', file);
  }
  if (options.user !== undefined) args.push('--user', options.user);
  if (options.pass !== undefined) args.push('--pass', options.pass);
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let out = '';

  const launch = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const proc = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      // A test process that dies (or forgets `stop`) must not leave its broker running.
      const reap = (): void => void proc.kill('SIGKILL');
      process.once('exit', reap);
      proc.once('exit', () => process.off('exit', reap));
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`nats-server not ready within ${readyTimeoutMs} ms:\n${out}`));
      }, readyTimeoutMs);
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (out.includes('Server is ready')) {
          clearTimeout(timer);
          proc.stderr?.off('data', onData);
          proc.stderr?.on('data', (more: Buffer) => (out += more.toString()));
          resolve();
        }
      };
      proc.stderr?.on('data', onData);
      proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      proc.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code} before it was ready:\n${out}`));
      });
    });

  const kill = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
  };

  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    output: () => out,
    kill,
    start: launch,
    async stop() {
      await kill();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
