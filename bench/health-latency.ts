/**
 * `npm run bench:health`: how long /health takes to answer while hostile clients send huge prompt texts,
 * with long prompts tokenized off the event loop (the default) and in place
 * (`--tokenize-inline-max-chars` past the body limit), measured in one run against a real gateway
 * process whose model directory has a tokenizer.json (so prompt length cannot be refused unread).
 * One JSON document on stdout, progress on stderr.
 *
 *   npm run bench:health -- [--clients 5] [--prompt-chars 1000000] [--seconds 8]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { byteLevelBpeTokenizerJson } from '@switchyard/engine';
import { initModelDir } from '@switchyard/model';
import { startGateway } from '@switchyard/launcher';
import { benchArgs, positiveIntArg } from './args.ts';

const USAGE = 'usage: npm run bench:health -- [--clients 5] [--prompt-chars 1000000] [--seconds 8]\n';
const values = benchArgs('bench:health', USAGE, () =>
  parseArgs({
    options: {
      clients: { type: 'string', default: '5' },
      'prompt-chars': { type: 'string', default: '1000000' },
      seconds: { type: 'string', default: '8' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const clients = positiveIntArg('bench:health', '--clients', values.clients);
const promptChars = positiveIntArg('bench:health', '--prompt-chars', values['prompt-chars']);
const seconds = positiveIntArg('bench:health', '--seconds', values.seconds);
const log = (line: string) => process.stderr.write(`[bench:health] ${line}\n`);

const quantile = (sorted: readonly number[], q: number) =>
  sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN);

async function measure(modelDir: string, inline: boolean) {
  const gateway = await startGateway(modelDir, inline ? ['--tokenize-inline-max-chars', String(16 * 2 ** 20)] : []);
  const body = JSON.stringify({ model: 'tiny', prompt: 'hello there '.repeat(promptChars / 12), max_tokens: 1 });
  const until = Date.now() + seconds * 1000;
  let hostile = 0;
  const statuses = new Map<number, number>();
  const attack = async () => {
    while (Date.now() < until) {
      const res = await fetch(`${gateway.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      }).catch(() => undefined);
      if (res) {
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        await res.arrayBuffer();
      }
      hostile++;
    }
  };
  const latencies: number[] = [];
  const probe = async () => {
    while (Date.now() < until) {
      const t0 = performance.now();
      const res = await fetch(`${gateway.url}/health`);
      await res.arrayBuffer();
      latencies.push(performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  try {
    await Promise.all([...Array.from({ length: clients }, attack), probe()]);
  } finally {
    await gateway.kill();
  }
  latencies.sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    tokenizing: inline ? 'in place (event loop)' : 'off the event loop (tokenizer thread)',
    healthChecks: latencies.length,
    healthMs: {
      p50: round(quantile(latencies, 0.5)),
      p99: round(quantile(latencies, 0.99)),
      max: round(latencies.at(-1) ?? NaN),
    },
    hostileRequests: hostile,
    hostileStatuses: Object.fromEntries(statuses),
  };
}

const root = await mkdtemp(join(tmpdir(), 'switchyard-bench-health-'));
try {
  const modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 1);
  await writeFile(join(modelDir, 'tokenizer.json'), byteLevelBpeTokenizerJson());
  log(
    `${clients} clients sending ${promptChars.toLocaleString()}-character prompts for ${seconds} s, /health every 20 ms`,
  );
  const offThread = await measure(modelDir, false);
  log(
    `off the event loop: /health p50 ${offThread.healthMs.p50} ms, p99 ${offThread.healthMs.p99} ms, max ${offThread.healthMs.max} ms`,
  );
  const inPlace = await measure(modelDir, true);
  log(
    `in place: /health p50 ${inPlace.healthMs.p50} ms, p99 ${inPlace.healthMs.p99} ms, max ${inPlace.healthMs.max} ms`,
  );
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'health-latency',
        clients,
        promptChars,
        seconds,
        offThread,
        inPlace,
        p99Ratio: Math.round((inPlace.healthMs.p99 / offThread.healthMs.p99) * 10) / 10,
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
