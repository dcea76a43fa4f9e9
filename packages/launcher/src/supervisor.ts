/**
 * Supervision for the processes of a local cluster (`switchyard up`): a child that exits on its own is
 * started again after a backoff (0.5 s, 1 s, 2 s, … up to 8 s), with a line saying so, within a restart
 * budget (5 restarts of one child within 60 s); a child past its budget breaks the cluster. The state
 * of every child is there to print on demand.
 */
import type { ManagedProcess } from './process.ts';

export interface SupervisorOptions {
  readonly log: (line: string) => void;
  /** Restarts one child may use within `budgetWindowMs` before the cluster is broken. Default 5. */
  readonly maxRestarts?: number;
  readonly budgetWindowMs?: number;
  /** Backoff before the n-th restart in a row: `backoffMs[min(n, len) - 1]`. */
  readonly backoffMs?: readonly number[];
}

export interface ChildState {
  readonly name: string;
  readonly pid: number | undefined;
  readonly state: 'running' | 'restarting' | 'failed' | 'stopped';
  readonly restarts: number;
  readonly upSinceMs: number;
}

interface Child {
  readonly name: string;
  readonly start: () => Promise<ManagedProcess>;
  process: ManagedProcess | undefined;
  state: ChildState['state'];
  restarts: number;
  /** Times of recent restarts (for the budget). */
  readonly recent: number[];
  upSinceMs: number;
}

export class Supervisor {
  readonly #opts: Required<SupervisorOptions>;
  readonly #children: Child[] = [];
  #stopping = false;
  #resolveBroken: (reason: string) => void = () => undefined;
  /** Resolves (with why) when a child could not be kept running within its budget. */
  readonly broken: Promise<string>;

  constructor(options: SupervisorOptions) {
    this.#opts = { maxRestarts: 5, budgetWindowMs: 60_000, backoffMs: [500, 1_000, 2_000, 4_000, 8_000], ...options };
    this.broken = new Promise((resolve) => {
      this.#resolveBroken = resolve;
    });
  }

  /** Watches `process` (already started by `start`), and restarts it with `start` when it exits. */
  add(name: string, process: ManagedProcess, start: () => Promise<ManagedProcess>): void {
    const child: Child = { name, start, process, state: 'running', restarts: 0, recent: [], upSinceMs: Date.now() };
    this.#children.push(child);
    this.#watch(child, process);
  }

  /** The latest process of every child (running, or exited and not restarted yet). */
  processes(): ManagedProcess[] {
    return this.#children.flatMap((c) => (c.process ? [c.process] : []));
  }

  states(): ChildState[] {
    return this.#children.map((c) => ({
      name: c.name,
      pid: c.state === 'running' ? c.process?.child.pid : undefined,
      state: c.state,
      restarts: c.restarts,
      upSinceMs: c.upSinceMs,
    }));
  }

  /** A table of the children, one line each. */
  describe(now = Date.now()): string {
    return this.states()
      .map((s) => {
        const up = s.state === 'running' ? `up ${Math.round((now - s.upSinceMs) / 1000)} s` : s.state;
        return `  ${s.name.padEnd(20)} pid ${String(s.pid ?? '-').padEnd(8)} ${up.padEnd(12)} restarts ${s.restarts}`;
      })
      .join('\n');
  }

  /** No more restarts (the caller stops the processes). */
  stop(): void {
    this.#stopping = true;
    for (const c of this.#children) if (c.state !== 'failed') c.state = 'stopped';
  }

  #watch(child: Child, process: ManagedProcess): void {
    void process.exited.then((code) => {
      if (this.#stopping || child.process !== process) return;
      void this.#restart(child, `exited (code ${code})`);
    });
  }

  async #restart(child: Child, why: string): Promise<void> {
    const { log, maxRestarts, budgetWindowMs, backoffMs } = this.#opts;
    const now = Date.now();
    while (child.recent.length > 0 && (child.recent[0] ?? 0) < now - budgetWindowMs) child.recent.shift();
    if (child.recent.length >= maxRestarts) {
      child.state = 'failed';
      const tail = child.process?.output().slice(-4096) ?? '';
      this.#resolveBroken(
        `${child.name} ${why} and was restarted ${maxRestarts} times within ${budgetWindowMs / 1000} s; giving up. Its output:\n${tail}`,
      );
      return;
    }
    child.recent.push(now);
    child.restarts++;
    child.state = 'restarting';
    const delay = backoffMs[Math.min(child.recent.length, backoffMs.length) - 1] ?? 1_000;
    log(`${child.name} ${why}; restarting it in ${delay} ms (restart ${child.restarts})`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (this.#stopping) return;
    try {
      const process = await child.start();
      if (this.#stopping) {
        await process.stop(5_000);
        return;
      }
      child.process = process;
      child.state = 'running';
      child.upSinceMs = Date.now();
      log(`${child.name} is back (pid ${process.child.pid})`);
      this.#watch(child, process);
    } catch (err) {
      await this.#restart(
        child,
        `failed to start again (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
      );
    }
  }
}
