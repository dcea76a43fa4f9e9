import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRequests } from '../src/datasets/dataset.ts';
import { lengthRange, randomRequests } from '../src/datasets/random.ts';
import { sharedPrefixRequests } from '../src/datasets/shared-prefix.ts';
import {
  acceptTrace,
  parseTrace,
  TraceLineError,
  traceRequests,
  type TraceDatasetSpec,
} from '../src/datasets/trace.ts';
import { SeededRandom } from '../src/seeded-random.ts';

const rng = (key: string) => new SeededRandom(3, key);

describe('random dataset (vLLM RandomDataset)', () => {
  it('samples lengths in [⌊len(1 − r)⌋, ⌈len(1 + r)⌉], outputs at least 1', () => {
    expect(lengthRange(100, 0.25, 0)).toEqual({ low: 75, high: 125 });
    expect(lengthRange(3, 0.5, 1)).toEqual({ low: 1, high: 5 });
    const requests = randomRequests(
      { kind: 'random', inputLen: 40, outputLen: 8, rangeRatio: 0.5, prefixLen: 0 },
      300,
      256,
      rng('r'),
    );
    const inputs = requests.map((r) => r.promptIds.length);
    const outputs = requests.map((r) => r.outputLen);
    expect(Math.min(...inputs)).toBe(20);
    expect(Math.max(...inputs)).toBe(60);
    expect(Math.min(...outputs)).toBe(4);
    expect(Math.max(...outputs)).toBe(12);
  });

  it('builds prompt i from consecutive ids (offset + i + j) mod vocab after the shared prefix', () => {
    const requests = randomRequests(
      { kind: 'random', inputLen: 6, outputLen: 2, rangeRatio: 0, prefixLen: 3 },
      5,
      10,
      rng('p'),
    );
    const prefix = requests[0]?.promptIds.slice(0, 3);
    for (const [i, r] of requests.entries()) {
      expect(r.promptIds).toHaveLength(9);
      expect(r.promptIds.slice(0, 3)).toEqual(prefix);
      const inner = r.promptIds.slice(3);
      const offset = ((inner[0] ?? 0) - i + 100) % 10;
      expect(inner).toEqual(Array.from({ length: 6 }, (_, j) => (offset + i + j) % 10));
    }
  });

  it('is deterministic per seed', async () => {
    const spec = { kind: 'random', inputLen: 16, outputLen: 4, rangeRatio: 0.5, prefixLen: 0 } as const;
    const a = await buildRequests(spec, 10, 256, 1, () => {});
    expect(await buildRequests(spec, 10, 256, 1, () => {})).toEqual(a);
    expect(await buildRequests(spec, 10, 256, 2, () => {})).not.toEqual(a);
  });
});

describe('shared-prefix dataset', () => {
  it('gives every request one of the group prefixes plus its own suffix, groups interleaved', () => {
    const requests = sharedPrefixRequests(
      { kind: 'shared-prefix', numPrefixes: 3, prefixLen: 20, suffixLen: 5, outputLen: 7 },
      12,
      256,
      rng('s'),
    );
    expect(requests).toHaveLength(12);
    const prefixes = new Map<string, number>();
    for (const r of requests) {
      expect(r.promptIds).toHaveLength(25);
      expect(r.outputLen).toBe(7);
      const key = r.promptIds.slice(0, 20).join(',');
      prefixes.set(key, (prefixes.get(key) ?? 0) + 1);
    }
    expect([...prefixes.values()]).toEqual([4, 4, 4]);
    const suffixes = new Set(requests.map((r) => r.promptIds.slice(20).join(',')));
    expect(suffixes.size).toBe(12);
  });
});

describe('trace replay (Mooncake format)', () => {
  const spec: TraceDatasetSpec = {
    kind: 'trace',
    path: 'trace.jsonl',
    onBadLine: 'fail',
    blockTokens: 4,
    lengthScale: 1,
  };
  const GOOD = [
    '{"timestamp": 1000, "input_length": 10, "output_length": 3, "hash_ids": [0, 1, 2]}',
    '{"timestamp": 1250, "input_length": 6, "output_length": 1, "hash_ids": [0, 1]}',
    '{"timestamp": 1100, "input_length": 5, "output_length": 2}',
  ];

  it('turns timestamps into arrivals from the earliest, in arrival order, with exact lengths', () => {
    const { records, problems } = parseTrace(GOOD.join('\n'));
    expect(problems).toEqual([]);
    const requests = traceRequests(records, spec, 256, 0);
    expect(requests.map((r) => [r.arrivalMs, r.promptIds.length, r.outputLen])).toEqual([
      [0, 10, 3],
      [100, 5, 2],
      [250, 6, 1],
    ]);
  });

  it('maps equal hash ids to equal blocks, so shared ids mean a shared prompt prefix', () => {
    const requests = traceRequests(parseTrace(GOOD.join('\n')).records, spec, 256, 0);
    const [first, , third] = requests;
    expect(first?.promptIds.slice(0, 6)).toEqual(third?.promptIds.slice(0, 6));
    expect(first?.promptIds.slice(4, 8)).not.toEqual(first?.promptIds.slice(0, 4));
  });

  it('scales input, output and block lengths with the length scale', () => {
    const requests = traceRequests(parseTrace(GOOD[0] ?? '').records, { ...spec, lengthScale: 0.5 }, 256, 0);
    expect([requests[0]?.promptIds.length, requests[0]?.outputLen]).toEqual([5, 2]);
  });

  const BAD = [
    GOOD[0],
    '{"timestamp": 1300, "input_length": "ten", "output_length": 3}',
    '',
    'not json at all',
    '{"timestamp": 1400, "input_length": 4, "output_length": 2, "hash_ids": [1, -2]}',
    GOOD[1],
  ].join('\n');

  it('reports each bad line with its line number (blank lines are not counted as bad)', () => {
    const { records, problems } = parseTrace(BAD);
    expect(records.map((r) => r.line)).toEqual([1, 6]);
    expect(problems.map((p) => p.line)).toEqual([2, 4, 5]);
    expect(problems[0]?.message).toBe('input_length must be a positive integer, got "ten"');
    expect(problems[1]?.message).toMatch(/^not JSON/);
    expect(problems[2]?.message).toBe('hash_ids must be an array of non-negative integers');
  });

  it('fails on the first bad line under the fail policy, naming file and line', () => {
    const error = (() => {
      try {
        acceptTrace(parseTrace(BAD), 'fail', 'trace.jsonl', () => {});
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(TraceLineError);
    expect((error as TraceLineError).line).toBe(2);
    expect((error as TraceLineError).message).toMatch(/^trace\.jsonl:2: input_length must be a positive integer/);
  });

  it('skips bad lines under the skip policy, warning once per line', () => {
    const warnings: string[] = [];
    const records = acceptTrace(parseTrace(BAD), 'skip', 'trace.jsonl', (w) => warnings.push(w));
    expect(records).toHaveLength(2);
    expect(warnings.map((w) => w.split(':').slice(0, 2).join(':'))).toEqual([
      'trace.jsonl:2',
      'trace.jsonl:4',
      'trace.jsonl:5',
    ]);
  });

  describe('from a file', () => {
    let dir = '';
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'bench-trace-'));
      await writeFile(join(dir, 'bad.jsonl'), BAD);
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('replays the good lines with skip, and stops with fail', async () => {
      const path = join(dir, 'bad.jsonl');
      const warnings: string[] = [];
      const requests = await buildRequests({ ...spec, path, onBadLine: 'skip' }, 100, 256, 0, (w) => warnings.push(w));
      expect(requests).toHaveLength(2);
      expect(warnings).toHaveLength(3);
      await expect(buildRequests({ ...spec, path }, 100, 256, 0, () => {})).rejects.toThrow(`${path}:2:`);
    });
  });
});
