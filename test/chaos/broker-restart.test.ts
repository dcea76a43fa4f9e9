/**
 * Chaos, broker restart (issue 13 item 4): 20 streaming requests through a frontend and an engine (two
 * processes) on their own nats-server; once tokens flow the broker is killed with SIGKILL and started
 * again on the same port and JetStream store a second later. Every request must either complete with
 * the monolithic engine's text or end with a clear error event, within its deadline — none may hang.
 * `npm run chaos` makes 3 rounds, `npm test` 1.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { createByteTokenizer } from '@switchyard/engine';
import { startGateway, startNatsServer, type ManagedProcess, type NatsServer } from '@switchyard/launcher';
import { monolithicGreedy } from '../helpers/oracle.ts';
import { chaosRuns, quantile, reportChaos } from '../helpers/chaos-report.ts';
import { streamOutcome, type StreamOutcome } from '../helpers/stream-outcome.ts';

const ROUNDS = chaosRuns(3, 1);
const REQUESTS = 20;
const MAX_TOKENS = 160;
/** A request not finished this long after it was sent counts as hung. */
const DEADLINE_MS = 90_000;
const DOWN_MS = 1_000;
const tokenizer = createByteTokenizer();
const PROMPTS = Array.from({ length: REQUESTS }, (_, i) => `request ${i} rides out the broker`);
let root = '';
let nats: NatsServer;
let engine: ManagedProcess & { url: string };
let frontend: ManagedProcess & { url: string };
let expected: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-chaos-broker-'));
  const modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 31);
  nats = await startNatsServer();
  const common = ['--nats-url', nats.url];
  engine = await startGateway(modelDir, [...common, '--name', 'engine-0', '--max-running', '8']);
  frontend = await startGateway(modelDir, [...common, '--name', 'frontend-0', '--no-engine']);
  const oracle = await monolithicGreedy(modelDir, PROMPTS, MAX_TOKENS);
  expected = oracle.map((events) => tokenizer.decode(events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId)));
}, 180_000);

afterAll(async () => {
  await Promise.all([engine, frontend].map((p) => p?.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

/** One streaming request to its end (or its deadline): what it came to. */
const stream = (i: number, firstChunk: () => void): Promise<StreamOutcome> =>
  streamOutcome(
    frontend.url,
    { model: 'tiny', prompt: PROMPTS[i], max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true },
    expected[i],
    DEADLINE_MS,
    firstChunk,
  );

describe(`chaos: stop and restart the broker during ${REQUESTS} streaming requests (${ROUNDS} round(s))`, () => {
  it(
    'has every request complete exactly or end with a clear error within its deadline, none hanging',
    async () => {
      const rows: (string | number)[][] = [];
      const all: StreamOutcome[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        let flowing!: () => void;
        const tokensFlow = new Promise<void>((resolve) => (flowing = resolve));
        let finished = 0;
        const outcomes = Promise.all(
          PROMPTS.map((_, i) =>
            stream(i, flowing).then((outcome) => {
              finished++;
              return outcome;
            }),
          ),
        );
        await tokensFlow;
        const finishedBeforeKill = finished;
        await nats.kill();
        await new Promise((resolve) => setTimeout(resolve, DOWN_MS));
        await nats.start();
        const results = await outcomes;
        all.push(...results);
        const count = (kind: StreamOutcome['kind']) => results.filter((r) => r.kind === kind).length;
        const times = results.map((r) => Math.round(r.ms));
        const errors = [...new Set(results.flatMap((r) => (r.error !== undefined ? [r.error] : [])))];
        rows.push([
          round,
          REQUESTS - finishedBeforeKill,
          count('exact'),
          count('error'),
          count('wrong'),
          count('hung'),
          quantile(times, 0.5),
          quantile(times, 1),
          errors.join('; ') || '—',
        ]);
      }
      reportChaos(
        'broker-restart',
        `kill -9 nats-server during ${REQUESTS} streams, restart after ${DOWN_MS} ms, ${ROUNDS} round(s)`,
        [
          'round',
          'in flight at the kill',
          'exact',
          'clear error',
          'wrong text',
          'hung',
          'time p50 (ms)',
          'time max (ms)',
          'errors seen',
        ],
        rows,
        `${all.filter((r) => r.kind === 'exact').length}/${all.length} exact, ` +
          `${all.filter((r) => r.kind === 'error').length} ended with an error event, ` +
          `${all.filter((r) => r.kind === 'hung').length} hung (deadline ${DEADLINE_MS / 1000} s)`,
      );
      expect(all.filter((r) => r.kind === 'hung' || r.kind === 'wrong')).toEqual([]);
      // The kill must land while requests stream, or the round proves nothing.
      expect(rows.every((r) => Number(r[1]) > 0)).toBe(true);
      // An error must say what happened (an event with a message), not be a bare socket reset.
      expect(all.filter((r) => r.kind === 'error' && (r.error ?? '').startsWith('client:'))).toEqual([]);
    },
    120_000 + ROUNDS * (DEADLINE_MS + 30_000),
  );
});
