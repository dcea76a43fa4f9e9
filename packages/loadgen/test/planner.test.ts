import { describe, expect, it } from 'vitest';
import { getRealModel } from '@switchyard/model';
import {
  distinctExpertsHit,
  expectedNodesHit,
  expertsPerNode,
  planCapacity,
  PlannerInputError,
  probabilityMissed,
  type PlannerInput,
} from '../src/planner.ts';

const H100_NODES = {
  attentionNodes: 4,
  expertNodes: 8,
  linkGbps: 400,
  deviceTflops: 990,
  deviceMemGBps: 3350,
  batchTokens: 4096,
  dtypeBytes: 2,
  weightBytes: 2,
  sharedMachine: false,
};

describe('capacity planner formulas, against hand computations', () => {
  it('Mixtral-8x7B on 8 expert nodes: one expert per node, so a token hits exactly its top-2 nodes', () => {
    const r = planCapacity({ ...H100_NODES, shape: getRealModel('mixtral-8x7b').shape });
    expect(r.numMoeLayers).toBe(32);
    expect(r.expertsPerNode).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    // 8 × (1 − C(7,2)/C(8,2)) = 8 × (1 − 21/28) = 2 nodes.
    expect(r.expectedNodesHit).toBeCloseTo(2, 12);
    // Dispatch: hidden 4096 × 2 bytes × 2 nodes = 16 KiB per token per layer; combine the same.
    expect(r.dispatchBytesPerTokenPerLayer).toBeCloseTo(16384, 9);
    expect(r.combineBytesPerTokenPerLayer).toBeCloseTo(16384, 9);
    expect(r.wireBytesPerTokenEachWay).toBeCloseTo(32 * 16384, 6);
    // Links: min(4, 8) × 400 Gb/s ÷ 8 = 200 GB/s over 524,288 B per token.
    expect(r.linkBoundTokensPerS).toBeCloseTo(2e11 / 524288, 6);
    // Compute: 2 × 32 layers × top-2 × 3 × 4096 × 14336 = 22,548,578,304 FLOPs per token over 8 × 990 TFLOP/s.
    expect(r.expertFlopsPerToken).toBe(22_548_578_304);
    expect(r.computeBoundTokensPerS).toBeCloseTo(7.92e15 / 22_548_578_304, 6);
    // Memory: 4096 tokens hit all 8 experts; 32 × 8 × 176,160,768 params × 2 B per step over 8 × 3.35 TB/s.
    expect(r.distinctExpertsPerLayerPerStep).toBeCloseTo(8, 12);
    expect(r.expertBytesPerStep).toBeCloseTo(90_194_313_216, 0);
    expect(r.memoryBoundTokensPerS).toBeCloseTo(4096 / (90_194_313_216 / 2.68e13), 4);
    expect(r.binding).toBe('expert compute');
    expect(r.boundTokensPerS).toBe(r.computeBoundTokensPerS);
  });

  it('Mixtral-8x7B decoding one token per step is bound by expert memory traffic', () => {
    const r = planCapacity({ ...H100_NODES, batchTokens: 1, shape: getRealModel('mixtral-8x7b').shape });
    // One token reads its 2 experts per layer: 32 × 2 × 176,160,768 × 2 B = 22.5 GB per step.
    expect(r.distinctExpertsPerLayerPerStep).toBeCloseTo(2, 12);
    expect(r.memoryBoundTokensPerS).toBeCloseTo(2.68e13 / (32 * 2 * 176_160_768 * 2), 6);
    expect(r.binding).toBe('expert memory');
  });

  it('DeepSeek-V3 on 4 attention + 8 expert nodes: 58 MoE layers, 32 experts per node, ≈ 5.29 nodes hit', () => {
    const r = planCapacity({ ...H100_NODES, shape: getRealModel('deepseek-v3').shape });
    expect(r.numMoeLayers).toBe(58);
    expect(r.expertsPerNode).toEqual(new Array(8).fill(32));
    // P(node missed) = C(224, 8) / C(256, 8) = 0.33816849995219006 (Python's math.comb).
    expect(probabilityMissed(256, 32, 8)).toBeCloseTo(0.33816849995219006, 14);
    expect(r.expectedNodesHit).toBeCloseTo(5.294652000382479, 12);
    expect(r.dispatchBytesPerTokenPerLayer).toBeCloseTo(75904.13107748322, 6);
    expect(r.wireBytesPerTokenEachWay).toBeCloseTo(4402439.6024940265, 4);
    expect(r.linkBoundTokensPerS).toBeCloseTo(45429.3569153562, 6);
    // 2 × 58 × 8 × 3 × 7168 × 2048 FLOPs per token; shared experts and dense layers run on attention nodes.
    expect(r.expertFlopsPerToken).toBe(40_869_298_176);
    expect(r.computeBoundTokensPerS).toBeCloseTo(193788.5002549646, 6);
    expect(r.distinctExpertsPerLayerPerStep).toBeCloseTo(256, 9);
    expect(r.expertBytesPerStep).toBeCloseTo(1307817541632, -1);
    expect(r.memoryBoundTokensPerS).toBeCloseTo(83935.86758518062, 4);
    expect(r.binding).toBe('links');
    expect(r.maxNodesHit).toBe(8);
  });

  it('splits experts over nodes contiguously and counts expected distinct experts per step', () => {
    expect(expertsPerNode(10, 4)).toEqual([3, 3, 2, 2]);
    expect(expectedNodesHit(8, 2, [8])).toBe(1);
    expect(distinctExpertsHit(256, 8, 1)).toBeCloseTo(8, 12);
    expect(distinctExpertsHit(16, 2, 2)).toBeCloseTo(16 * (1 - (14 / 16) ** 2), 12);
  });

  it('on one machine, shares the link, FLOP/s and bandwidth instead of summing them over nodes', () => {
    const shape = getRealModel('mixtral-8x7b').shape;
    const spread = planCapacity({ ...H100_NODES, shape });
    const shared = planCapacity({ ...H100_NODES, shape, sharedMachine: true });
    expect(shared.computeBoundTokensPerS * 8).toBeCloseTo(spread.computeBoundTokensPerS, 6);
    expect(shared.linkBoundTokensPerS * 4).toBeCloseTo(spread.linkBoundTokensPerS, 6);
  });

  it('rejects a non-positive figure naming its flag', () => {
    const input: PlannerInput = { ...H100_NODES, linkGbps: 0, shape: getRealModel('mixtral-8x7b').shape };
    expect(() => planCapacity(input)).toThrow(PlannerInputError);
    expect(() => planCapacity(input)).toThrow('--link-gbps');
  });
});
