/**
 * A CPU budget for a process: a cgroup with a CPU quota (`cores` of CPU time per wall-clock second,
 * kernel-enforced), so that several services on one machine each get a fixed share of it, as each would
 * have on its own node. Used by `switchyard bench --scenario eplb` to give every expert worker the same
 * compute: without it, the worker holding a hot expert borrows the idle workers' cores and no placement
 * can show what balance buys on a real cluster.
 *
 * Works with cgroup v2 (`cpu.max`) and v1 (`cpu/cpu.cfs_quota_us`); needs the right to create cgroups
 * (root, or a delegated subtree). `cpuBudgetSupport()` says whether it can, and why not.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class CpuBudgetError extends Error {
  override readonly name = 'CpuBudgetError';
}

/**
 * The period the quotas are written against, µs: 10 ms, a tenth of the kernel's default, so that a
 * process over its quota is held back for at most a few ms at a time rather than up to 100 ms (which
 * would show as latency spikes no real node has).
 */
const PERIOD_US = 10_000;

export interface CpuBudget {
  /** The cgroup folder the process was moved into. */
  readonly path: string;
  /**
   * Removes the cgroup once its processes have exited (a cgroup with a live process cannot be removed;
   * the kernel empties it a moment after the exit, so this tries for up to a second).
   */
  release(): Promise<void>;
}

interface Layout {
  readonly version: 1 | 2;
  /** Where new cgroups are created: `<root>` (v2) or `<root>/cpu` (v1). */
  readonly parent: string;
}

function layoutOf(root: string): Layout | string {
  const v2 = join(root, 'cgroup.controllers');
  if (existsSync(v2)) {
    const controllers = readFileSync(v2, 'utf8').split(/\s+/);
    if (!controllers.includes('cpu')) return `the cgroup v2 hierarchy at ${root} has no cpu controller`;
    return { version: 2, parent: root };
  }
  const v1 = join(root, 'cpu');
  if (existsSync(join(v1, 'cpu.cfs_quota_us'))) return { version: 1, parent: v1 };
  return `no cgroup cpu controller found under ${root}`;
}

/** Whether budgets can be set here: `{ ok: true }`, or the reason they cannot. */
export function cpuBudgetSupport(root = '/sys/fs/cgroup'): { ok: true } | { ok: false; reason: string } {
  const layout = layoutOf(root);
  if (typeof layout === 'string') return { ok: false, reason: layout };
  const probe = join(layout.parent, `switchyard-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return { ok: true };
  } catch (error) {
    return {
      ok: false,
      reason: `cannot create a cgroup under ${layout.parent} (${(error as Error).message}); run as root`,
    };
  }
}

/**
 * Moves process `pid` (all its threads, and the ones it starts later) into a new cgroup named
 * `switchyard-<name>-<pid>` whose CPU time is limited to `cores` per second.
 */
export function limitCpu(pid: number, cores: number, name: string, root = '/sys/fs/cgroup'): CpuBudget {
  if (!(cores > 0) || !Number.isFinite(cores)) throw new CpuBudgetError(`a CPU budget must be > 0 cores, got ${cores}`);
  if (!/^[A-Za-z0-9_.-]+$/.test(name))
    throw new CpuBudgetError(`cgroup name "${name}" has characters other than A-Z a-z 0-9 _ . -`);
  const layout = layoutOf(root);
  if (typeof layout === 'string') throw new CpuBudgetError(`cannot limit CPU: ${layout}`);
  const path = join(layout.parent, `switchyard-${name}-${pid}`);
  const quotaUs = Math.round(cores * PERIOD_US);
  // The kernel takes quotas of 1 ms and up.
  if (quotaUs < 1000) throw new CpuBudgetError(`a CPU budget must be ≥ ${1000 / PERIOD_US} cores, got ${cores}`);
  try {
    mkdirSync(path, { recursive: true });
    if (layout.version === 2) {
      writeFileSync(join(path, 'cpu.max'), `${quotaUs} ${PERIOD_US}`);
    } else {
      writeFileSync(join(path, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(join(path, 'cpu.cfs_quota_us'), String(quotaUs));
    }
    writeFileSync(join(path, 'cgroup.procs'), String(pid));
  } catch (error) {
    throw new CpuBudgetError(`cannot limit process ${pid} to ${cores} cores in ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return {
    path,
    async release() {
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          rmdirSync(path);
          return;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      // Still holds a process: the kernel keeps the cgroup, harmlessly, until someone removes it.
    },
  };
}
