/**
 * Chaos, a worker without replicas (issue 13 item 4): a gateway on NATS with two expert workers and
 * no replication, on a model whose routing the test controls — experts 4–7 (all of worker 1's) are
 * chosen only at a marker token, so requests without it never need worker 1. Each run streams requests
 * without the marker, kills worker 1 with SIGKILL mid-stream, then sends requests with the marker: the
 * affected ones must end with a clear error event (never hang, never a broken connection), the others
 * must finish exact. Worker 1 is then restarted and a marked request must be served again. `npm run
 * chaos` makes 5 runs, `npm test` 1.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeModelDir } from '@switchyard/model';
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
import { routingControlledModel } from '../helpers/routing-model.ts';
import { chaosRuns, quantile, reportChaos } from '../helpers/chaos-report.ts';
import { streamOutcome, type StreamOutcome } from '../helpers/stream-outcome.ts';

const RUNS = chaosRuns(5, 1);
const MARKER = 200;
const MAX_TOKENS = 64;
const DEADLINE_MS = 60_000;
const { config, weights } = routingControlledModel(MARKER, [4, 5, 6, 7]);
const MODEL = config.name;
const tokenizer = createByteTokenizer();
const PROMPTS = ['unaffected one', 'unaffected two', 'unaffected three'];
const MARKED = [104, MARKER, 105];
let root = '';
let modelDir = '';
let nats: NatsServer;
let gateway: ManagedProcess & { url: string };
const workers: (ManagedProcess & { port: number; address: string })[] = [];
const dead: ManagedProcess[] = [];
let expected: string[] = [];
let expectedMarked = '';

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-chaos-worker-'));
  modelDir = join(root, 'routed');
  await writeModelDir(modelDir, config, weights);
  nats = await startNatsServer();
  workers.push(...(await Promise.all([startWorker(modelDir, 'kw0'), startWorker(modelDir, 'kw1')])));
  gateway = await startGateway(modelDir, [
    '--workers',
    workers.map((w) => w.address).join(','),
    '--nats-url',
    nats.url,
    '--name',
    'worker-kill-gateway',
  ]);
  const oracle = await monolithicGreedy(modelDir, [...PROMPTS, MARKED], MAX_TOKENS);
  [expectedMarked = '', ...expected] = oracle
    .map((events) => tokenizer.decode(events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId)))
    .reverse();
  expected.reverse();
}, 180_000);

afterAll(async () => {
  await Promise.all([gateway, ...workers, ...dead].map((p) => p?.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

function markedBody(): Record<string, unknown> {
  return { model: MODEL, prompt: MARKED, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true };
}

const body = (i: number) => ({
  model: MODEL,
  prompt: PROMPTS[i],
  max_tokens: MAX_TOKENS,
  temperature: 0,
  ignore_eos: true,
});

describe(`chaos: kill -9 a worker without replicas (${RUNS} run(s))`, () => {
  it(
    'ends the requests that need it with a clear error, finishes the others exactly, and serves again after a restart',
    async () => {
      // Before any kill the marked request is served exactly.
      expect((await streamOutcome(gateway.url, markedBody(), expectedMarked, DEADLINE_MS)).kind).toBe('exact');
      const rows: (string | number)[][] = [];
      const unaffected: StreamOutcome[] = [];
      const affected: StreamOutcome[] = [];
      const recovered: StreamOutcome[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const victim = workers[1];
        if (!victim) throw new Error('no worker 1');
        let killing: Promise<void> | undefined;
        let marked: Promise<StreamOutcome[]> | undefined;
        const others = Promise.all(
          PROMPTS.map((_, i) =>
            streamOutcome(gateway.url, body(i), expected[i], DEADLINE_MS, () => {
              killing ??= victim.kill('SIGKILL').then(() => void dead.push(victim));
              // Requests that need the dead worker, sent once it is dead.
              marked ??= killing.then(() =>
                Promise.all([0, 1].map(() => streamOutcome(gateway.url, markedBody(), expectedMarked, DEADLINE_MS))),
              );
            }),
          ),
        );
        const runOthers = await others;
        const runMarked = (await marked) ?? [];
        unaffected.push(...runOthers);
        affected.push(...runMarked);
        workers[1] = await startWorkerOn(victim.port, modelDir, 'kw1');
        const again = await streamOutcome(gateway.url, markedBody(), expectedMarked, DEADLINE_MS);
        recovered.push(again);
        const errors = [...new Set(runMarked.map((r) => r.error ?? r.kind))];
        rows.push([
          run,
          `${runOthers.filter((r) => r.kind === 'exact').length}/${runOthers.length}`,
          `${runMarked.filter((r) => r.kind === 'error').length}/${runMarked.length}`,
          Math.round(
            quantile(
              runMarked.map((r) => r.ms),
              1,
            ),
          ),
          errors.join('; '),
          `${again.kind} ${again.error ?? ''}`.trim(),
        ]);
      }
      reportChaos(
        'worker-kill',
        `kill -9 the only worker of some experts, ${RUNS} run(s)`,
        ['run', 'unaffected exact', 'affected ended with an error', 'error after (ms)', 'error', 'after restart'],
        rows,
        `unaffected exact ${unaffected.filter((r) => r.kind === 'exact').length}/${unaffected.length}; ` +
          `affected with a clear error ${affected.filter((r) => r.kind === 'error').length}/${affected.length}; ` +
          `exact after restart ${recovered.filter((r) => r.kind === 'exact').length}/${recovered.length}`,
      );
      expect(unaffected.map((r) => r.kind)).toEqual(unaffected.map(() => 'exact'));
      expect(affected.map((r) => r.kind)).toEqual(affected.map(() => 'error'));
      expect(affected.filter((r) => !/no live worker|unavailable|retry/i.test(r.error ?? ''))).toEqual([]);
      expect(recovered.map((r) => r.kind)).toEqual(recovered.map(() => 'exact'));
    },
    60_000 + RUNS * 120_000,
  );
});
