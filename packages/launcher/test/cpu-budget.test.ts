import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CpuBudgetError, cpuBudgetSupport, limitCpu } from '../src/cpu-budget.ts';

/** A folder laid out like a cgroup hierarchy (files only: the kernel is not involved). */
function fakeRoot(version: 1 | 2, controllers = 'cpuset cpu io memory pids'): string {
  const root = mkdtempSync(join(tmpdir(), 'cgroup-'));
  if (version === 2) writeFileSync(join(root, 'cgroup.controllers'), `${controllers}\n`);
  else {
    mkdirSync(join(root, 'cpu'));
    writeFileSync(join(root, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
  }
  return root;
}

describe('limitCpu', () => {
  it('writes a cgroup v2 quota (cpu.max) and moves the process in', () => {
    const root = fakeRoot(2);
    const budget = limitCpu(4242, 0.25, 'eplb-worker-0', root);
    expect(budget.path).toBe(join(root, 'switchyard-eplb-worker-0-4242'));
    expect(readFileSync(join(budget.path, 'cpu.max'), 'utf8')).toBe('2500 10000');
    expect(readFileSync(join(budget.path, 'cgroup.procs'), 'utf8')).toBe('4242');
  });

  it('writes a cgroup v1 quota (cpu.cfs_quota_us over cpu.cfs_period_us)', () => {
    const root = fakeRoot(1);
    const budget = limitCpu(7, 1.5, 'w', root);
    expect(budget.path).toBe(join(root, 'cpu', 'switchyard-w-7'));
    expect(readFileSync(join(budget.path, 'cpu.cfs_period_us'), 'utf8')).toBe('10000');
    expect(readFileSync(join(budget.path, 'cpu.cfs_quota_us'), 'utf8')).toBe('15000');
    expect(readFileSync(join(budget.path, 'cgroup.procs'), 'utf8')).toBe('7');
  });

  it('refuses a budget that is not > 0, an unsafe name, and a hierarchy without a cpu controller', () => {
    const root = fakeRoot(2);
    expect(() => limitCpu(1, 0, 'w', root)).toThrow(CpuBudgetError);
    expect(() => limitCpu(1, Number.NaN, 'w', root)).toThrow(/must be > 0 cores/);
    expect(() => limitCpu(1, 0.05, 'w', root)).toThrow(/must be ≥ 0.1 cores/);
    expect(() => limitCpu(1, 0.5, '../x', root)).toThrow(/characters other than/);
    expect(() => limitCpu(1, 0.5, 'w', fakeRoot(2, 'memory pids'))).toThrow(/no cpu controller/);
    expect(() => limitCpu(1, 0.5, 'w', mkdtempSync(join(tmpdir(), 'none-')))).toThrow(/no cgroup cpu controller/);
    expect(cpuBudgetSupport(mkdtempSync(join(tmpdir(), 'none-')))).toMatchObject({ ok: false });
    expect(cpuBudgetSupport(root)).toEqual({ ok: true });
  });

  it('puts a real process under a kernel quota where this machine allows it, and removes the cgroup after', async () => {
    const support = cpuBudgetSupport();
    // Where cgroups cannot be created (not root), the refusal must say why; the kernel path is then
    // covered only by the cases above.
    if (!support.ok) {
      expect(support.reason).toMatch(/cgroup/);
      return;
    }
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const pid = child.pid ?? -1;
    const budget = limitCpu(pid, 0.2, 'test', '/sys/fs/cgroup');
    const procs = readFileSync(join(budget.path, 'cgroup.procs'), 'utf8').split('\n');
    expect(procs).toContain(String(pid));
    const quota = existsSync(join(budget.path, 'cpu.max'))
      ? readFileSync(join(budget.path, 'cpu.max'), 'utf8').trim()
      : readFileSync(join(budget.path, 'cpu.cfs_quota_us'), 'utf8').trim();
    expect(quota.split(' ')[0]).toBe('2000');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    await budget.release();
    expect(existsSync(budget.path)).toBe(false);
  });
});
