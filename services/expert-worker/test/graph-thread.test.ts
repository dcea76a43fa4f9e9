import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import { buildExpertGraph, weightFormatOf } from '@switchyard/onnx';
import { ExpertWorker } from '../src/expert-worker.ts';
import { modelDirExpertSource } from '../src/expert-source.ts';
import { OffThreadGraphBuilder } from '../src/graph-thread.ts';

let root: string;
let dir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'graph-thread-'));
  dir = join(root, 'tiny');
  await initModelDir(dir, 'tiny', 5);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('OffThreadGraphBuilder', () => {
  it('builds the same graph bytes on its thread as buildExpertGraph in place, fp32 and int8', async () => {
    const source = await modelDirExpertSource(dir);
    for (const dtype of ['fp32', 'int8'] as const) {
      const builder = new OffThreadGraphBuilder({ modelDir: dir, dtype });
      try {
        for (const [layer, expert] of [
          [0, 0],
          [1, 7],
        ] as const) {
          const inline = buildExpertGraph(source.config, await source.readExpert(layer, expert), layer, expert, {
            format: weightFormatOf(dtype),
          });
          expect(Buffer.from(await builder.build(layer, expert)).equals(Buffer.from(inline))).toBe(true);
        }
      } finally {
        await builder.close();
      }
    }
    await source.close();
  });

  it('rejects an expert the model does not have with the reason, and goes on building', async () => {
    const builder = new OffThreadGraphBuilder({ modelDir: dir, dtype: 'fp32' });
    try {
      await expect(builder.build(0, 99)).rejects.toThrow(/expert|tensor|99/);
      expect((await builder.build(0, 1)).byteLength).toBeGreaterThan(0);
    } finally {
      await builder.close();
    }
  });

  it('gives a worker that loads through it the same outputs as one that builds in place', async () => {
    const make = async (graphs?: OffThreadGraphBuilder) =>
      new ExpertWorker({
        workerId: graphs ? 'threaded' : 'inline',
        source: await modelDirExpertSource(dir),
        dtype: 'fp32',
        maxTokensPerRun: 4,
        session: { intraOpThreads: 1 },
        ...(graphs ? { graphs } : {}),
      });
    const threaded = await make(new OffThreadGraphBuilder({ modelDir: dir, dtype: 'fp32' }));
    const inline = await make();
    try {
      const experts = [
        { layer: 1, expertId: 2 },
        { layer: 1, expertId: 6 },
      ];
      for (const w of [threaded, inline]) await w.load({ experts, placementRevision: 1 });
      const H = 64;
      const request = {
        layer: 1,
        hiddenSize: H,
        hidden: Float32Array.from({ length: 2 * H }, (_, i) => Math.sin(i * 0.37)),
        routes: {
          numTokens: 2,
          offsets: Int32Array.from([0, 2, 3]),
          expertIds: Int32Array.from([2, 6, 6]),
          weights: Float32Array.from([0.6, 0.4, 1]),
        },
      };
      const [a, b] = await Promise.all([threaded.run(request), inline.run(request)]);
      expect(Array.from(a.output)).toEqual(Array.from(b.output));
      expect(threaded.hosted()).toEqual(experts);
    } finally {
      await threaded.close();
      await inline.close();
    }
  });
});
