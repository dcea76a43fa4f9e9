import { describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import type { ManagedProcess } from '../src/process.ts';
import { Supervisor } from '../src/supervisor.ts';

/** A stand-in child whose exit the test decides. */
function fakeProcess(pid: number): ManagedProcess & { exit(code: number): void } {
  let exit: (code: number) => void = () => undefined;
  const exited = new Promise<number | null>((resolve) => (exit = resolve));
  return {
    name: `fake ${pid}`,
    child: { pid } as ChildProcess,
    exited,
    output: () => `output of ${pid}`,
    kill: async () => exit(137),
    stop: async () => exit(0),
    exit: (code) => exit(code),
  };
}

describe('Supervisor', () => {
  it('restarts a child that exits, says so, and gives up past its restart budget', async () => {
    const lines: string[] = [];
    const supervisor = new Supervisor({ log: (l) => lines.push(l), maxRestarts: 2, backoffMs: [1, 1] });
    let nextPid = 100;
    const started: ReturnType<typeof fakeProcess>[] = [];
    const start = async () => {
      const p = fakeProcess(++nextPid);
      started.push(p);
      return p;
    };
    const first = fakeProcess(100);
    supervisor.add('worker-0', first, start);
    expect(supervisor.states()).toMatchObject([{ name: 'worker-0', pid: 100, state: 'running', restarts: 0 }]);
    first.exit(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(supervisor.states()).toMatchObject([{ pid: 101, state: 'running', restarts: 1 }]);
    expect(lines.join('\n')).toMatch(/worker-0 exited \(code 1\); restarting it in 1 ms \(restart 1\)/);
    expect(lines.join('\n')).toMatch(/worker-0 is back \(pid 101\)/);
    started[0]?.exit(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    started[1]?.exit(1);
    const reason = await supervisor.broken;
    expect(reason).toMatch(/worker-0 exited \(code 1\) and was restarted 2 times within 60 s; giving up/);
    expect(supervisor.states()[0]?.state).toBe('failed');
  });

  it('restarts nothing once stopped', async () => {
    const lines: string[] = [];
    const supervisor = new Supervisor({ log: (l) => lines.push(l), backoffMs: [1] });
    const p = fakeProcess(7);
    supervisor.add('gateway-0', p, async () => fakeProcess(8));
    supervisor.stop();
    p.exit(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(lines).toEqual([]);
    expect(supervisor.states()[0]?.state).toBe('stopped');
  });
});
