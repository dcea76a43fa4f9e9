/**
 * `npm run bench:kernels`: the read rate of onnxruntime's linear kernels at decode's few rows beside the
 * bandwidth bound of the same run. Run here on a tiny shape: one result per format and row count, each
 * rate consistent with its own time per call and bound, and the command keeps its manners.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = (args: string[]) =>
  spawnSync(process.execPath, ['bench/kernel-ceiling.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });

interface Row {
  format: string;
  rows: number;
  usPerCall: number;
  usPerCallByRound: number[];
  weightBytes: number;
  readBytesPerSecond: number;
  fractionOfBandwidth: number;
}

describe('bench:kernels', () => {
  it('times every format at every row count and reads each rate against the same run’s bound', () => {
    const res = run([
      ...['--formats', 'fp32,int8-rows,int8', '--rows', '1,3', '--k', '64', '--n', '32'],
      ...['--weights', '2', '--rounds', '2', '--calls', '4', '--bandwidth-gib', '0.01'],
    ]);
    expect(res.status, res.stderr).toBe(0);
    const doc = JSON.parse(res.stdout) as {
      shape: { k: number; n: number };
      rounds: number;
      bandwidth: { start: number; end: number; used: number; method: string };
      results: Row[];
    };
    expect(doc.shape).toEqual({ k: 64, n: 32 });
    expect(doc.bandwidth.used).toBe(Math.max(doc.bandwidth.start, doc.bandwidth.end));
    expect(doc.bandwidth.method).toMatch(/ReduceSum/);
    expect(doc.results.map((r) => `${r.format}@${r.rows}`)).toEqual([
      'fp32@1',
      'int8-rows@1',
      'int8@1',
      'fp32@3',
      'int8-rows@3',
      'int8@3',
    ]);
    for (const r of doc.results) {
      expect(r.usPerCallByRound).toHaveLength(2);
      expect(r.usPerCall).toBeGreaterThan(0);
      expect(r.weightBytes).toBe(64 * 32 * (r.format === 'fp32' ? 4 : 1));
      expect(r.readBytesPerSecond).toBeCloseTo(r.weightBytes / (r.usPerCall / 1e6), 3);
      expect(r.fractionOfBandwidth).toBeCloseTo(r.readBytesPerSecond / doc.bandwidth.used, 9);
    }
    expect(res.stderr).toMatch(/% of bound/);
  });

  it('has --help, and answers a mistake with one line and exit code 2', () => {
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run bench:kernels/);
    expect(run(['--formats', 'fp16'])).toMatchObject({
      status: 2,
      stderr: 'bench:kernels: --formats: unknown format "fp16" (fp32, int8-rows, int8) (--help for usage)\n',
    });
    expect(run(['--rows', '0'])).toMatchObject({
      status: 2,
      stderr: 'bench:kernels: --rows must be an integer ≥ 1, got "0" (--help for usage)\n',
    });
  });
});
