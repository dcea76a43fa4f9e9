/**
 * `switchyard up` supervises its children: killing any single one (kill -9) of `up --gateways 2
 * --workers 2` does not take the cluster down — the child is restarted on the same port and the cluster
 * serves again within 10 s — its state is printed on SIGUSR2, and SIGTERM stops everything, leaving no
 * process behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { freePort, REPO_ROOT, startNatsServer, type NatsServer } from '@switchyard/launcher';

let root = '';
let nats: NatsServer;
let up: ChildProcess;
let out = '';
let port = 0;

const childrenOf = (pid: number): { pid: number; args: string }[] => {
  let text: string;
  try {
    text = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => ({ pid: Number(l.split(/\s+/)[0]), args: l.slice(l.indexOf(' ') + 1) }));
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}; up said:\n${out.slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function serves(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'still there?', max_tokens: 2, temperature: 0 }),
      signal: AbortSignal.timeout(3_000),
    });
    return res.status === 200;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-up-'));
  await initModelDir(join(root, 'tiny'), 'tiny', 3);
  nats = await startNatsServer();
  port = await freePort();
  up = spawn(
    process.execPath,
    [
      'services/cli/src/main.ts',
      'up',
      '--model',
      join(root, 'tiny'),
      '--gateways',
      '2',
      '--workers',
      '2',
      '--port',
      String(port),
    ],
    { cwd: REPO_ROOT, env: { ...process.env, NATS_URL: nats.url }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  up.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  up.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await until('up to be ready', 120_000, () => (out.includes('Press Ctrl-C') ? true : undefined));
}, 180_000);

afterAll(async () => {
  if (up && up.exitCode === null) up.kill('SIGKILL');
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('switchyard up supervises its children', () => {
  const gateways = () => [`http://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`];

  it.each([
    ['an expert worker', (args: string) => args.includes('expert-worker') && args.includes('worker-0')],
    ['a gateway', (args: string) => args.includes('gateway/src/main.ts') && args.includes('gateway-1')],
  ])(
    'restarts %s killed with SIGKILL, and the cluster serves again within 10 s',
    async (_what, isVictim) => {
      const pid = up.pid ?? 0;
      const victim = childrenOf(pid).find((c) => isVictim(c.args));
      expect(victim).toBeDefined();
      const before = out.length;
      const killedAt = Date.now();
      process.kill(victim?.pid ?? 0, 'SIGKILL');
      await until('the restart line', 10_000, () => (/restarting it in/.test(out.slice(before)) ? true : undefined));
      await until('the child to be back', 10_000, () =>
        / is back \(pid \d+\)/.test(out.slice(before)) ? true : undefined,
      );
      await until('both gateways to serve', 10_000, async () =>
        (await Promise.all(gateways().map(serves))).every(Boolean) ? true : undefined,
      );
      const servedAfterMs = Date.now() - killedAt;
      process.stderr.write(`${_what} killed: the cluster served on both gateways again after ${servedAfterMs} ms\n`);
      expect(servedAfterMs).toBeLessThan(10_000);
      expect(up.exitCode).toBeNull();
      expect(childrenOf(pid).some((c) => isVictim(c.args) && c.pid !== victim?.pid)).toBe(true);
    },
    60_000,
  );

  it('prints the state of every child on SIGUSR2, then stops everything on SIGTERM', async () => {
    const before = out.length;
    process.kill(up.pid ?? 0, 'SIGUSR2');
    const state = await until('the state table', 5_000, () => {
      const text = out.slice(before);
      return text.includes('gateway-1') && text.includes('worker-1') ? text : undefined;
    });
    expect(state).toMatch(/worker-0\s+pid \d+\s+up \d+ s\s+restarts 1/);
    expect(state).toMatch(/gateway-1\s+pid \d+\s+up \d+ s\s+restarts 1/);
    const children = childrenOf(up.pid ?? 0).map((c) => c.pid);
    expect(children).toHaveLength(4);
    const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
    up.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise((resolve) => setTimeout(() => resolve('still running'), 30_000)),
    ]);
    expect(code, out.slice(-3000)).toBe(0);
    // `up` stops its children before it exits (they would also stop by themselves, but later).
    expect(children.filter(alive)).toEqual([]);
  }, 60_000);
});
