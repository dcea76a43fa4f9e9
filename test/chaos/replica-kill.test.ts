/**
 * Chaos, replicas (issue 13 item 4, second case; acceptance 2): a gateway on NATS with two expert workers
 * holding every expert (`--replication 2`). Each run kills one worker with SIGKILL mid-stream, restarts
 * it on its address, and at once — without waiting for its reload — kills the other one mid-stream too,
 * then restarts that. Both streams of a run must equal the monolithic engine's tokens: the first is
 * carried by the surviving replica, the second by the restarted one (reloaded by the gateway's health
 * probe, or waited for within the dispatch deadline). `npm run chaos` makes 10 runs, `npm test` 1.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { createByteTokenizer } from '@switchyard/engine';
import {
  startGateway,
  startNatsServer,
  startWorker,
  startWorkerOn,
  type ManagedProcess,
  type NatsServer,
} from '@switchyard/launcher';
import { monolithicGreedy } from '../helpers/oracle.ts';
import { streamThroughKill } from '../helpers/stream-kill.ts';
import { chaosRuns, quantile, reportChaos } from '../helpers/chaos-report.ts';

const RUNS = chaosRuns(10, 1);
const MAX_TOKENS = 48;
const PROMPTS = ['replicas hold the line', 'when one falls the other serves'];
const tokenizer = createByteTokenizer();
let root = '';
let modelDir = '';
let nats: NatsServer;
let gateway: ManagedProcess & { url: string };
const workers: (ManagedProcess & { port: number; address: string })[] = [];
const dead: ManagedProcess[] = [];
let expected: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-chaos-replica-'));
  modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 23);
  nats = await startNatsServer();
  workers.push(...(await Promise.all([startWorker(modelDir, 'rw0'), startWorker(modelDir, 'rw1')])));
  gateway = await startGateway(modelDir, [
    '--workers',
    workers.map((w) => w.address).join(','),
    '--replication',
    '2',
    '--nats-url',
    nats.url,
    '--name',
    'replica-gateway',
  ]);
  const oracle = await monolithicGreedy(modelDir, PROMPTS, MAX_TOKENS);
  expected = oracle.map((events) => tokenizer.decode(events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId)));
}, 180_000);

afterAll(async () => {
  await Promise.all([gateway, ...workers, ...dead].map((p) => p?.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

/** Streams prompt `i`, kills worker `w` after a few chunks; whether the stream was exact, and its stall. */
async function streamKillingWorker(i: number, w: number): Promise<{ exact: boolean; stallMs: number; error: string }> {
  const victim = workers[w];
  if (!victim) throw new Error(`no worker ${w}`);
  const { events, text, stallMs, error } = await streamThroughKill(
    gateway.url,
    { model: 'tiny', prompt: PROMPTS[i], max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true },
    async () => {
      await victim.kill('SIGKILL');
      dead.push(victim);
      return victim.address;
    },
  );
  return {
    exact: events.at(-1) === '[DONE]' && error === undefined && text === expected[i],
    stallMs: Math.round(stallMs),
    error: error ?? '',
  };
}

/** Starts worker `w` again on its address (what a supervisor does); resolves once it listens, empty. */
async function restart(w: number): Promise<void> {
  const old = workers[w];
  if (!old) throw new Error(`no worker ${w}`);
  workers[w] = await startWorkerOn(old.port, modelDir, `rw${w}`);
}

describe(`chaos: replication 2 — kill a worker, restart it, kill the other at once (${RUNS} run(s))`, () => {
  it(
    'keeps every stream exact through both kills of every run',
    async () => {
      const rows: (string | number)[][] = [];
      const outcomes: boolean[] = [];
      const stalls: number[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const first = run % 2; // alternate which worker dies first
        const second = 1 - first;
        const a = await streamKillingWorker(0, first);
        await restart(first);
        // No wait for the reload: the other replica dies while the restarted one is still empty.
        const b = await streamKillingWorker(1, second);
        await restart(second);
        outcomes.push(a.exact && b.exact);
        stalls.push(a.stallMs, b.stallMs);
        const outcome = (r: { exact: boolean; error: string }) => (r.exact ? 'yes' : `NO ${r.error}`);
        rows.push([run, `rw${first}`, a.stallMs, outcome(a), `rw${second}`, b.stallMs, outcome(b)]);
      }
      const exact = outcomes.filter(Boolean).length;
      reportChaos(
        'replica-kill',
        `replication 2, kill → restart → kill the other, ${RUNS} run(s)`,
        ['run', 'first killed', 'stall (ms)', 'exact', 'then killed', 'stall (ms)', 'exact'],
        rows,
        `runs exact ${exact}/${RUNS}; stall p50 ${quantile(stalls, 0.5)} ms, max ${quantile(stalls, 1)} ms`,
      );
      expect(outcomes).toEqual(outcomes.map(() => true));
    },
    60_000 + RUNS * 60_000,
  );
});
