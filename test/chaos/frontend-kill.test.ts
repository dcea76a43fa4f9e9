/**
 * Chaos, frontend death (issue 13 item 4): a frontend killed with SIGKILL while its client streams a
 * long completion leaves a request nobody reads. The engine must stop it within 2 s (it notices the
 * frontend's heartbeats stopped: every 250 ms, gone after `--frontend-ttl-ms` 1.5 s) and ack it, so it
 * is not replayed later. The frontend is restarted under the same name each run, as a supervisor
 * would: its new life must not make the old one's request look read. `npm run chaos` makes 10 runs,
 * `npm test` 2.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { startGateway, startNatsServer, type ManagedProcess, type NatsServer } from '@switchyard/launcher';
import { chaosRuns, quantile, reportChaos } from '../helpers/chaos-report.ts';

const RUNS = chaosRuns(10, 2);
let root = '';
let modelDir = '';
let nats: NatsServer;
let engine: ManagedProcess & { url: string };
let frontend: ManagedProcess & { url: string };
const dead: ManagedProcess[] = [];
let frontendArgs: string[] = [];

interface Stats {
  serving: number;
  orphansStopped: number;
}
const stats = async (url: string) => (await (await fetch(`${url}/v1/switchyard/stats`)).json()) as Stats;

async function poll<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-chaos-frontend-'));
  modelDir = join(root, 'small');
  await initModelDir(modelDir, 'small', 29);
  nats = await startNatsServer();
  const common = ['--nats-url', nats.url, '--ack-wait-ms', '5000'];
  engine = await startGateway(modelDir, [...common, '--name', 'engine-0']);
  frontendArgs = [...common, '--name', 'frontend-0', '--no-engine'];
  frontend = await startGateway(modelDir, frontendArgs);
}, 180_000);

afterAll(async () => {
  await Promise.all([engine, frontend, ...dead].map((p) => p?.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

describe(`chaos: kill -9 the frontend mid-stream (${RUNS} run(s))`, () => {
  it(
    'has the engine stop each orphaned request within 2 s, and never replay it',
    async () => {
      const rows: (string | number)[][] = [];
      const stops: number[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const before = await stats(engine.url);
        const res = await fetch(`${frontend.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          // Runs for tens of seconds on `small` unless stopped.
          body: JSON.stringify({
            model: 'small',
            prompt: `orphan ${run}`,
            max_tokens: 1500,
            ignore_eos: true,
            stream: true,
          }),
        });
        const reader = res.body?.getReader();
        await reader?.read();
        await poll('the engine to serve the request', 10_000, async () =>
          (await stats(engine.url)).serving > 0 ? true : undefined,
        );
        await frontend.kill('SIGKILL');
        dead.push(frontend);
        const killedAt = performance.now();
        await poll('the engine to stop the orphaned request', 10_000, async () =>
          (await stats(engine.url)).serving === 0 ? true : undefined,
        );
        const stopMs = Math.round(performance.now() - killedAt);
        stops.push(stopMs);
        const after = await stats(engine.url);
        // Back under the same name, as a supervisor restarts it.
        frontend = await startGateway(modelDir, frontendArgs);
        rows.push([run, stopMs, after.orphansStopped - before.orphansStopped]);
      }
      // Past the ack wait (5 s): an orphan acked is not delivered again.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      const final = await stats(engine.url);
      reportChaos(
        'frontend-kill',
        `kill -9 the frontend mid-stream, ${RUNS} run(s)`,
        ['run', 'engine stopped the orphan after (ms)', 'orphans stopped'],
        rows,
        `stop p50 ${quantile(stops, 0.5)} ms, max ${quantile(stops, 1)} ms; replayed afterwards: ${final.serving}`,
      );
      expect(rows.map((r) => r[2])).toEqual(rows.map(() => 1));
      expect(final.serving).toBe(0);
      expect(final.orphansStopped).toBe(RUNS);
      // The bound: stopped within 2 s of the kill.
      expect(quantile(stops, 1)).toBeLessThanOrEqual(2_000);
    },
    60_000 + RUNS * 30_000,
  );
});
