/**
 * `npm run bench:spinning`: time per call of many small two-thread sessions in one process, with the
 * thread pools' spinning off (the default of every session we open) and on. Prints one JSON document;
 * the ratio is what the default is for (measured once ≈ 0.5 ms vs ≈ 6 ms per call on a 2-core VM).
 *
 *   npm run bench:spinning -- [--sessions 12] [--rounds 10]
 */
import { parseArgs } from 'node:util';
import { buildSwiGluGraph, createSession, type SwiGluWeights } from '@switchyard/onnx';
import { benchArgs, positiveIntArg } from './args.ts';

const USAGE = 'usage: npm run bench:spinning -- [--sessions 12] [--rounds 10]\n';
const values = benchArgs('bench:spinning', USAGE, () =>
  parseArgs({
    options: {
      sessions: { type: 'string', default: '12' },
      rounds: { type: 'string', default: '10' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const numSessions = positiveIntArg('bench:spinning', '--sessions', values.sessions);
const numRounds = positiveIntArg('bench:spinning', '--rounds', values.rounds);

function expert(h: number, f: number): SwiGluWeights {
  const mk = (rows: number, cols: number) => ({
    shape: [rows, cols],
    data: Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i) * 0.05),
  });
  return { gate: mk(f, h), up: mk(f, h), down: mk(h, f) };
}

async function msPerCall(spinning: boolean): Promise<number> {
  const bytes = buildSwiGluGraph(expert(256, 512));
  const x = { x: { data: new Float32Array(8 * 256).fill(0.1), dims: [8, 256] } };
  const sessions = await Promise.all(
    Array.from({ length: numSessions }, () => createSession(bytes, { intraOpThreads: 2, spinning })),
  );
  try {
    for (const s of sessions) await s.run(x);
    const start = performance.now();
    for (let round = 0; round < numRounds; round++) for (const s of sessions) await s.run(x);
    return (performance.now() - start) / (numRounds * sessions.length);
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
}

process.stderr.write(
  `[bench:spinning] ${numSessions} two-thread sessions × ${numRounds} rounds, spinning off then on\n`,
);
const off = await msPerCall(false);
const on = await msPerCall(true);
process.stdout.write(
  `${JSON.stringify({ numSessions, numRounds, msPerCallSpinningOff: off, msPerCallSpinningOn: on, onOverOff: on / off }, null, 2)}\n`,
);
