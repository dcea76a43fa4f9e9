/**
 * Chaos, soak (issue 13 item 4): mixed load for a while — streams read to the end, streams the client
 * abandons after a few chunks, plain completions — through a frontend, two engines and two expert
 * workers on their own nats-server, with one engine killed with SIGKILL (and restarted under its
 * name, as a supervisor would) once a minute. Afterwards the cluster must return to idle: nothing
 * serving, running or waiting, every engine's KV blocks free again, the frontend's live JS heap (a heap
 * snapshot after a full GC) and the workers' RSS back near where they were after a warm-up; the
 * frontend's RSS is reported at every kill. Every request read to its end must be the monolithic engine's
 * text. `npm run chaos`: 10 minutes (SWITCHYARD_CHAOS_RUNS scales it); `npm test`: 30 s with one kill.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir, Prng } from '@switchyard/model';
import { createByteTokenizer } from '@switchyard/engine';
import { startGateway, startNatsServer, startWorker, type ManagedProcess, type NatsServer } from '@switchyard/launcher';
import { monolithicGreedy } from '../helpers/oracle.ts';
import { chaosRuns, reportChaos } from '../helpers/chaos-report.ts';
import { streamOutcome, type StreamOutcome } from '../helpers/stream-outcome.ts';

const SOAK_S = chaosRuns(600, 30);
const KILL_EVERY_MS = Math.min(60_000, (SOAK_S * 1000) / 2);
const WARMUP_MS = Math.min(20_000, (SOAK_S * 1000) / 3);
const CLIENTS = 4;
const MAX_TOKENS = 40;
const DEADLINE_MS = 120_000;
/** Growth allowed in a long-lived process's RSS from after the warm-up to the end (allocator slack). */
const RSS_SLACK_MB = 48;
/** Growth allowed in the frontend's live JS heap (a heap snapshot after a full GC) over the soak. */
const HEAP_SLACK_MB = 16;
/** How long the cluster is left alone before RSS is read. */
const QUIET_MS = 10_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tokenizer = createByteTokenizer();
// Prompts share prefixes, so the prefix cache and KV routing take part.
const PROMPTS = Array.from(
  { length: 12 },
  (_, i) => `${i % 3 === 0 ? 'a shared system preamble for soak clients; ' : ''}soak request ${i}`,
);
let root = '';
let modelDir = '';
let nats: NatsServer;
let common: string[] = [];
let frontend: ManagedProcess & { url: string };
const workers: ManagedProcess[] = [];
const engines = new Map<string, ManagedProcess & { url: string }>();
const dead: ManagedProcess[] = [];
let expected: string[] = [];

interface Stats {
  serving: number;
  running: number;
  waiting: number;
  kvFreeBlocks: number;
}
const stats = async (url: string) => (await (await fetch(`${url}/v1/switchyard/stats`)).json()) as Stats;
const rssMb = (p: ManagedProcess) => {
  const line = readFileSync(`/proc/${p.child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Math.round(Number(line?.[1] ?? 'NaN') / 1024);
};
/** Has the frontend write a heap snapshot (a full GC first) and returns its size in MB: the live JS heap. */
async function liveHeapMb(): Promise<number> {
  const dir = join(root, 'heap');
  const before = new Set(await readdir(dir));
  frontend.child.kill('SIGUSR2');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const added = (await readdir(dir)).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    const file = added[0];
    if (file !== undefined) {
      // Written when its size stops changing.
      let size = -1;
      for (;;) {
        await sleep(500);
        const now = (await stat(join(dir, file))).size;
        if (now === size && now > 0) break;
        size = now;
      }
      await rm(join(dir, file));
      return Math.round(size / 1e6);
    }
    if (Date.now() > deadline) throw new Error('the frontend wrote no heap snapshot within 60 s');
    await sleep(200);
  }
}

const startEngine = (name: string) => startGateway(modelDir, [...common, '--name', name]);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-chaos-soak-'));
  modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 37);
  nats = await startNatsServer();
  const ws = await Promise.all([startWorker(modelDir, 'sw0'), startWorker(modelDir, 'sw1')]);
  workers.push(...ws);
  common = ['--workers', ws.map((w) => w.address).join(','), '--nats-url', nats.url, '--kv-blocks', '256'];
  for (const name of ['engine-a', 'engine-b']) engines.set(name, await startEngine(name));
  // SIGUSR2 makes the frontend write a heap snapshot (after a full GC): its size is the live JS heap.
  await mkdir(join(root, 'heap'));
  frontend = await startGateway(modelDir, [...common, '--name', 'frontend', '--no-engine'], {
    NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${join(root, 'heap')}`,
  });
  const oracle = await monolithicGreedy(modelDir, PROMPTS, MAX_TOKENS);
  expected = oracle.map((events) => tokenizer.decode(events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId)));
}, 180_000);

afterAll(async () => {
  await Promise.all([frontend, ...workers, ...engines.values(), ...dead].map((p) => p?.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

type Kind = 'full' | 'abandoned' | 'plain';
interface Done {
  readonly kind: Kind;
  readonly outcome: StreamOutcome | { kind: 'exact' | 'wrong' | 'error'; ms: number; error?: string };
}

/** One request of the mix: what it was and what came of it. */
async function oneRequest(random: Prng): Promise<Done> {
  const i = Math.floor(random.nextFloat() * PROMPTS.length);
  const r = random.nextFloat();
  const body = { model: 'tiny', prompt: PROMPTS[i], max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true };
  if (r < 0.5) return { kind: 'full', outcome: await streamOutcome(frontend.url, body, expected[i], DEADLINE_MS) };
  if (r < 0.75) {
    // The client leaves after a few chunks.
    const controller = new AbortController();
    let chunks = 0;
    const leaveAfter = 1 + Math.floor(random.nextFloat() * 6);
    const res = await fetch(`${frontend.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body?.getReader();
    try {
      while (chunks < leaveAfter && !(await reader?.read())?.done) chunks++;
    } finally {
      controller.abort();
    }
    return { kind: 'abandoned', outcome: { kind: 'exact', ms: 0 } };
  }
  const started = performance.now();
  const res = await fetch(`${frontend.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(DEADLINE_MS),
  });
  const json = (await res.json()) as { choices?: { text: string }[]; error?: { message: string } };
  const ms = performance.now() - started;
  if (!res.ok || json.error) return { kind: 'plain', outcome: { kind: 'error', ms, error: json.error?.message ?? '' } };
  return { kind: 'plain', outcome: { kind: json.choices?.[0]?.text === expected[i] ? 'exact' : 'wrong', ms } };
}

/** CLIENTS loops of the mix until `untilMs` (performance.now()). */
async function load(untilMs: number, seed: number): Promise<Done[]> {
  const done: Done[] = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const random = new Prng(seed, `client-${c}`);
      while (performance.now() < untilMs) done.push(await oneRequest(random));
    }),
  );
  return done;
}

async function idle(): Promise<{ engines: Record<string, Stats>; settledMs: number }> {
  const started = performance.now();
  for (;;) {
    const all = Object.fromEntries(
      await Promise.all([...engines].map(async ([name, p]) => [name, await stats(p.url)] as const)),
    );
    const busy = Object.values(all).some((s) => s.serving + s.running + s.waiting > 0);
    if (!busy || performance.now() - started > 30_000) return { engines: all, settledMs: performance.now() - started };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe(`chaos: soak — ${SOAK_S} s of mixed load with aborts and an engine kill every ${KILL_EVERY_MS / 1000} s`, () => {
  it(
    'returns to idle (KV free, nothing running, no heap or worker memory kept) with every completed request exact',
    async () => {
      const freshFree = Object.fromEntries(
        await Promise.all([...engines].map(async ([n, p]) => [n, (await stats(p.url)).kvFreeBlocks] as const)),
      );
      // Warm-up: the same mix, so lazily allocated buffers and caches exist before RSS is taken.
      const warm = await load(performance.now() + WARMUP_MS, 1);
      await idle();
      // RSS is taken after a quiet spell both times, so V8's heap has been trimmed alike (its memory
      // reducer runs a few seconds after allocation stops), and what remains is what the work left.
      await sleep(QUIET_MS);
      const longLived = { frontend, sw0: workers[0], sw1: workers[1] } as Record<string, ManagedProcess>;
      const rssBefore = Object.fromEntries(Object.entries(longLived).map(([n, p]) => [n, rssMb(p)]));
      const heapBefore = await liveHeapMb();

      const until = performance.now() + SOAK_S * 1000;
      const kills: string[] = [];
      const rssTrend: number[] = [];
      const killer = (async () => {
        let next = performance.now() + KILL_EVERY_MS;
        while (next < until) {
          await new Promise((resolve) => setTimeout(resolve, next - performance.now()));
          rssTrend.push(rssMb(frontend));
          const name = kills.length % 2 === 0 ? 'engine-a' : 'engine-b';
          const victim = engines.get(name);
          if (victim) {
            await victim.kill('SIGKILL');
            dead.push(victim);
            kills.push(`${name}@${Math.round((performance.now() - (until - SOAK_S * 1000)) / 1000)}s`);
            engines.set(name, await startEngine(name));
          }
          next += KILL_EVERY_MS;
        }
      })();
      const done = await load(until, 2);
      await killer;
      const after = await idle();
      await sleep(QUIET_MS);
      const rssAfter = Object.fromEntries(Object.entries(longLived).map(([n, p]) => [n, rssMb(p)]));
      const heapAfter = await liveHeapMb();

      const count = (kind: Kind, outcome?: string) =>
        done.filter((d) => d.kind === kind && (outcome === undefined || d.outcome.kind === outcome)).length;
      const errors = [...new Set(done.flatMap((d) => (d.outcome.error !== undefined ? [d.outcome.error] : [])))];
      const rows: (string | number)[][] = [
        ['requests read to the end (stream)', count('full'), `${count('full', 'exact')} exact`],
        ['requests abandoned by the client', count('abandoned'), '—'],
        ['plain completions', count('plain'), `${count('plain', 'exact')} exact`],
        ['ended with an error', done.filter((d) => d.outcome.kind === 'error').length, errors.join('; ') || '—'],
        ['engine kills', kills.length, kills.join(', ') || '—'],
        ['settled to idle after the load (ms)', Math.round(after.settledMs), '—'],
        ...Object.entries(after.engines).map(([n, s]) => [
          `${n} KV free blocks (fresh → after)`,
          `${freshFree[n]} → ${s.kvFreeBlocks}`,
          `serving ${s.serving}, running ${s.running}, waiting ${s.waiting}`,
        ]),
        ['frontend RSS MB at each kill', rssTrend.length, rssTrend.join(' → ') || '—'],
        [
          'frontend live JS heap MB (heap snapshot after a full GC)',
          `${heapBefore} → ${heapAfter}`,
          `Δ ${heapAfter - heapBefore} MB`,
        ],
        ...Object.keys(longLived).map((n) => [
          `${n} RSS MB (quiet after warm-up → quiet after soak)`,
          `${rssBefore[n]} → ${rssAfter[n]}`,
          `Δ ${(rssAfter[n] ?? 0) - (rssBefore[n] ?? 0)} MB`,
        ]),
      ];
      reportChaos(
        'soak',
        `${SOAK_S} s, ${CLIENTS} clients, warm-up ${WARMUP_MS / 1000} s (${warm.length} requests)`,
        ['what', 'count', 'detail'],
        rows,
        `${done.length} requests in ${SOAK_S} s`,
      );
      const bad = done.filter((d) => d.outcome.kind !== 'exact');
      if (bad.length > 0) {
        // What the processes said about each request that did not come back exact.
        const logs = [frontend, ...engines.values(), ...dead].map((p) => `--- ${p.name}\n${p.output()}`).join('\n');
        for (const d of bad) {
          const o = d.outcome as StreamOutcome;
          const lines = o.requestId ? logs.split('\n').filter((l) => l.includes(o.requestId ?? '')) : [];
          process.stderr.write(
            `\nsoak: ${d.kind} request ${o.requestId ?? '?'} ended ${o.kind} after ${Math.round(o.ms)} ms: ` +
              `${o.error ?? ''}${o.text !== undefined ? ` text ${JSON.stringify(o.text)}` : ''}\n${lines.join('\n')}\n`,
          );
        }
      }
      expect(kills.length).toBeGreaterThanOrEqual(1);
      expect(done.filter((d) => d.outcome.kind === 'wrong' || d.outcome.kind === 'hung')).toEqual([]);
      expect(done.filter((d) => d.outcome.kind === 'error')).toEqual([]);
      for (const [n, s] of Object.entries(after.engines)) {
        expect({ n, serving: s.serving, running: s.running, waiting: s.waiting }).toEqual({
          n,
          serving: 0,
          running: 0,
          waiting: 0,
        });
        expect({ n, free: s.kvFreeBlocks }).toEqual({ n, free: freshFree[n] });
      }
      // Nothing retained: the frontend's live heap is back where it was. Its RSS is reported, not bounded:
      // V8 keeps freed heap pages for a while, so it saws between GCs (see the trend at each kill). The
      // workers' memory is native and steady, so their RSS is bounded.
      expect(heapAfter).toBeLessThanOrEqual(heapBefore + HEAP_SLACK_MB);
      for (const n of ['sw0', 'sw1'])
        expect(rssAfter[n] ?? Infinity).toBeLessThanOrEqual((rssBefore[n] ?? 0) + RSS_SLACK_MB);
    },
    240_000 + SOAK_S * 2_000,
  );
});
