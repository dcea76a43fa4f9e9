import { spawn, type ChildProcess } from 'node:child_process';

/** The repository root: service entry points are started by their path below it. */
export const REPO_ROOT = new URL('../../../', import.meta.url).pathname;

/** Output kept per process (the tail), for readiness checks and error messages. */
const MAX_OUTPUT_CHARS = 1 << 20;

export class ProcessStartError extends Error {
  override readonly name = 'ProcessStartError';
  readonly code = 'process_start' as const;
}

/** A child process we started, with its output (stdout and stderr interleaved) and a bounded stop. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (null after a signal) when the process exits, for whatever reason. */
  readonly exited: Promise<number | null>;
  output(): string;
  /** Sends `signal` (default SIGKILL) unless the process has exited, and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited within `deadlineMs`. */
  stop(deadlineMs?: number): Promise<void>;
}

export interface StartProcessOptions {
  /** Shown in errors (default: the script's path). */
  readonly name?: string;
  readonly env?: Readonly<Record<string, string>>;
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Starts `node <script> ...args` from the repository root (on this process's Node, so type stripping
 * works) and resolves once its output contains `readyText`. Rejects with its output if it exits first
 * or is not ready within `timeoutMs` (it is then killed).
 */
export function startProcess(
  script: string,
  args: readonly string[],
  readyText: string,
  timeoutMs = 60_000,
  options: StartProcessOptions = {},
): Promise<ManagedProcess> {
  const name = options.name ?? script;
  const child = spawn(process.execPath, [script, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // The child stops by itself if this process dies without stopping it (services call stopWithParent).
    env: { ...process.env, SWITCHYARD_PARENT_PID: String(process.pid), ...options.env },
  });
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (out.length > MAX_OUTPUT_CHARS) out = out.slice(-MAX_OUTPUT_CHARS / 2);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (isRunning(child)) child.kill(signal);
    await exited;
  };
  const managed: ManagedProcess = {
    name,
    child,
    exited,
    output: () => out,
    kill,
    async stop(deadlineMs = 15_000) {
      if (isRunning(child)) child.kill('SIGTERM');
      const timer = setTimeout(() => isRunning(child) && child.kill('SIGKILL'), deadlineMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      cleanup();
      child.kill('SIGKILL');
      reject(new ProcessStartError(`${name} was not ready within ${timeoutMs} ms. Its output:\n${out}`));
    }, timeoutMs);
    const onData = (): void => {
      if (!out.includes(readyText)) return;
      cleanup();
      resolve(managed);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new ProcessStartError(`${name} exited (code ${code}) before it was ready. Its output:\n${out}`));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Stops processes together: SIGTERM to all, SIGKILL to those still running after `deadlineMs`. */
export async function stopProcesses(processes: readonly ManagedProcess[], deadlineMs: number): Promise<void> {
  await Promise.all(processes.map((p) => p.stop(deadlineMs)));
}
