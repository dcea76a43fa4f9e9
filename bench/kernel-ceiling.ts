/**
 * `npm run bench:kernels`: how fast onnxruntime's own kernels read a weight at decode's few rows, beside
 * the read bandwidth measured in the same run. One linear layer [M×K]·[K×N] per weight format the engine
 * can run (fp32 MatMul, int8-rows MatMulInteger, int8 MatMulNBits), timed round-robin over enough distinct
 * weights that every call reads its weight from memory, not from cache. The effective read rate
 * (weight bytes ÷ time per call) against the ReduceSum bound is the ceiling a small-batch decode step
 * built from these kernels can reach: the engine's decode cannot read faster than the kernels it calls.
 * One JSON document on stdout, a table and progress on stderr; formats and row counts alternate within
 * each round and the medians over rounds are reported (a shared machine moves from minute to minute).
 *
 *   npm run bench:kernels -- [--formats fp32,int8-rows,int8] [--rows 1,2,8] [--k 2048] [--n 2048] [--weights 24] [--rounds 5] [--calls 120]
 */
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import {
  createSession,
  GraphBuilder,
  linear,
  measureReadBandwidth,
  type OnnxSession,
  type PhysicalBound,
  type WeightFormat,
} from '@switchyard/onnx';
import { median } from './median.ts';
import { benchArgs, benchFail, positiveIntArg } from './args.ts';

const USAGE =
  'usage: npm run bench:kernels -- [--formats fp32,int8-rows,int8] [--rows 1,2,8] [--k 2048] [--n 2048] ' +
  '[--weights 24] [--rounds 5] [--calls 120] [--intra-op-threads n (default: every core)] [--bandwidth-gib 1]\n';

const values = benchArgs('bench:kernels', USAGE, () =>
  parseArgs({
    options: {
      formats: { type: 'string', default: 'fp32,int8-rows,int8' },
      rows: { type: 'string', default: '1,2,8' },
      k: { type: 'string', default: '2048' },
      n: { type: 'string', default: '2048' },
      weights: { type: 'string', default: '24' },
      rounds: { type: 'string', default: '5' },
      calls: { type: 'string', default: '120' },
      'intra-op-threads': { type: 'string' },
      'bandwidth-gib': { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const log = (msg: string) => process.stderr.write(`[bench:kernels] ${msg}\n`);
const fail: (msg: string) => never = (msg) => benchFail('bench:kernels', msg);
const positiveInt = (flag: string, raw: string): number => positiveIntArg('bench:kernels', flag, raw);
const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** The formats this bench knows, with the bytes one weight element occupies. */
const BYTES_PER_WEIGHT: Partial<Record<WeightFormat, number>> = { fp32: 4, 'int8-rows': 1, int8: 1 };
const formats = list(values.formats).map((f) => {
  if (!(f in BYTES_PER_WEIGHT)) fail(`--formats: unknown format ${JSON.stringify(f)} (fp32, int8-rows, int8)`);
  return f as WeightFormat;
});
if (formats.length === 0) fail('--formats is empty');
const rowCounts = list(values.rows).map((r) => positiveInt('--rows', r));
if (rowCounts.length === 0) fail('--rows is empty');
const K = positiveInt('--k', values.k);
const N = positiveInt('--n', values.n);
const numWeights = positiveInt('--weights', values.weights);
const rounds = positiveInt('--rounds', values.rounds);
const calls = positiveInt('--calls', values.calls);
const threads =
  values['intra-op-threads'] === undefined
    ? availableParallelism()
    : positiveInt('--intra-op-threads', values['intra-op-threads']);
const bandwidthGib = Number(values['bandwidth-gib']);
if (!(bandwidthGib > 0)) fail(`--bandwidth-gib must be > 0, got ${JSON.stringify(values['bandwidth-gib'])}`);

/** A deterministic weight [N, K] in the HF layout `linear` takes; distinct per seed. */
function weight(seed: number): { shape: number[]; data: Float32Array } {
  const data = new Float32Array(N * K);
  let s = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  return { shape: [N, K], data };
}

async function linearSession(format: WeightFormat, seed: number): Promise<OnnxSession> {
  const g = new GraphBuilder('linear');
  const x = g.input('x', 'float', ['M', K]);
  g.output(linear(g, x, weight(seed), 'w', { format }), 'y', 'float', ['M', N]);
  return createSession(g.toModelBytes(), { intraOpThreads: threads });
}

async function bandwidth(): Promise<PhysicalBound> {
  return measureReadBandwidth(Math.round(bandwidthGib * 2 ** 30), { threads });
}

log(`read bandwidth at the start (onnxruntime ReduceSum over ${bandwidthGib} GiB, ${threads} threads)…`);
const startBound = await bandwidth();
log(`  ${(startBound.value / 1e9).toFixed(2)} GB/s`);

const sessions = new Map<WeightFormat, OnnxSession[]>();
for (const format of formats) {
  const list: OnnxSession[] = [];
  for (let i = 0; i < numWeights; i++) {
    list.push(await linearSession(format, i));
    process.stderr.write(`\r[bench:kernels] ${format}: ${i + 1}/${numWeights} weights [${N}×${K}] built`);
  }
  process.stderr.write('\n');
  sessions.set(format, list);
}

/** µs per call of `format` at `m` rows, one timed pass round-robin over every weight. */
async function usPerCall(format: WeightFormat, m: number): Promise<number> {
  const list = sessions.get(format) ?? [];
  const feeds = { x: { data: new Float32Array(m * K).fill(0.25), dims: [m, K] } };
  for (const s of list) await s.run(feeds);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await list[i % list.length]?.run(feeds);
  return ((performance.now() - t0) / calls) * 1000;
}

const samples = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const m of rowCounts) {
    for (const format of formats) {
      const key = `${format}@${m}`;
      const us = await usPerCall(format, m);
      samples.set(key, [...(samples.get(key) ?? []), us]);
    }
  }
  log(`round ${r + 1}/${rounds} done`);
}

log('read bandwidth at the end…');
const endBound = await bandwidth();
log(`  ${(endBound.value / 1e9).toFixed(2)} GB/s`);
const bound = startBound.value >= endBound.value ? startBound : endBound;

const results = rowCounts.flatMap((m) =>
  formats.map((format) => {
    const perCall = samples.get(`${format}@${m}`) ?? [];
    const us = median(perCall);
    const weightBytes = N * K * (BYTES_PER_WEIGHT[format] ?? 4);
    const readBytesPerSecond = weightBytes / (us / 1e6);
    return {
      format,
      rows: m,
      usPerCall: us,
      usPerCallByRound: perCall,
      weightBytes,
      readBytesPerSecond,
      fractionOfBandwidth: readBytesPerSecond / bound.value,
    };
  }),
);

process.stderr.write(`\nlinear [M×${K}]·[${K}×${N}], ${numWeights} weights round-robin, medians of ${rounds} rounds\n`);
process.stderr.write(`bound: ${(bound.value / 1e9).toFixed(2)} GB/s (${bound.method}; the higher of start and end)\n`);
for (const row of results) {
  process.stderr.write(
    `  ${row.format.padEnd(10)} M=${String(row.rows).padEnd(3)} ${row.usPerCall.toFixed(0).padStart(6)} µs/call ` +
      `${(row.readBytesPerSecond / 1e9).toFixed(1).padStart(6)} GB/s  ${(row.fractionOfBandwidth * 100).toFixed(0).padStart(3)}% of bound\n`,
  );
}
process.stdout.write(
  `${JSON.stringify(
    {
      shape: { k: K, n: N },
      weights: numWeights,
      rounds,
      callsPerRound: calls,
      intraOpThreads: threads,
      bandwidth: {
        start: startBound.value,
        end: endBound.value,
        used: bound.value,
        method: bound.method,
      },
      results,
    },
    null,
    2,
  )}\n`,
);
for (const list of sessions.values()) for (const s of list) await s.release();
