import { describe, expect, it } from 'vitest';
import { expertCapacity, route, scoreLogits, sigmoid } from '../src/index.ts';
import type { RouterConfig, TokenRoutes } from '../src/index.ts';

const softmax4: RouterConfig = {
  numExperts: 4,
  topK: 2,
  scoring: 'softmax',
  normTopKProb: false,
  routedScalingFactor: 1,
};
const sigmoid4: RouterConfig = { ...softmax4, scoring: 'sigmoid' };
const ln = Math.log;

/** Token t's pairs as [expertId, weight] with weights rounded to 6 decimals. */
function pairs(routes: TokenRoutes, t: number): [number, number][] {
  const out: [number, number][] = [];
  for (let p = routes.offsets[t] ?? 0; p < (routes.offsets[t + 1] ?? 0); p++) {
    out.push([routes.expertIds[p] ?? -1, Math.round((routes.weights[p] ?? NaN) * 1e6) / 1e6]);
  }
  return out;
}

describe('scoring', () => {
  it('softmax scores are probabilities over all experts', () => {
    const scores = scoreLogits(new Float32Array([ln(1), ln(2), ln(3), ln(4)]), 1, 4, 'softmax');
    expect(Array.from(scores, (s) => Math.round(s * 1e6) / 1e6)).toEqual([0.1, 0.2, 0.3, 0.4]);
  });

  it('softmax is stable for large logits', () => {
    const scores = scoreLogits(new Float32Array([1000, 1000, -1000, 1000]), 1, 4, 'softmax');
    expect(Array.from(scores, (s) => Math.round(s * 1e6) / 1e6)).toEqual([0.333333, 0.333333, 0, 0.333333]);
  });

  it('sigmoid scores each expert independently', () => {
    expect(sigmoid(0)).toBe(0.5);
    const scores = scoreLogits(new Float32Array([0, ln(3), -ln(3), 40]), 1, 4, 'sigmoid');
    expect(Array.from(scores, (s) => Math.round(s * 1e6) / 1e6)).toEqual([0.5, 0.75, 0.25, 1]);
  });
});

describe('route', () => {
  it('picks the top-k softmax scores, best first, without renormalising by default', () => {
    const routes = route(new Float32Array([ln(1), ln(2), ln(3), ln(4)]), 1, softmax4);
    expect(pairs(routes, 0)).toEqual([
      [3, 0.4],
      [2, 0.3],
    ]);
  });

  it('renormalises the chosen weights to sum 1 when normTopKProb is set', () => {
    const routes = route(new Float32Array([ln(1), ln(2), ln(3), ln(4)]), 1, { ...softmax4, normTopKProb: true });
    expect(pairs(routes, 0)).toEqual([
      [3, 0.571429],
      [2, 0.428571],
    ]);
  });

  it('uses unnormalised sigmoid scores as weights, renormalised and scaled when configured', () => {
    const logits = new Float32Array([0, ln(3), -ln(3), -ln(9)]);
    expect(pairs(route(logits, 1, sigmoid4), 0)).toEqual([
      [1, 0.75],
      [0, 0.5],
    ]);
    expect(pairs(route(logits, 1, { ...sigmoid4, normTopKProb: true }), 0)).toEqual([
      [1, 0.6],
      [0, 0.4],
    ]);
    const scaled = route(logits, 1, { ...sigmoid4, normTopKProb: true, routedScalingFactor: 2.5 });
    expect(pairs(scaled, 0)).toEqual([
      [1, 1.5],
      [0, 1],
    ]);
  });

  it('applies the scaling factor without renormalisation too', () => {
    const routes = route(new Float32Array([0, ln(3), -ln(3), -ln(9)]), 1, { ...sigmoid4, routedScalingFactor: 2 });
    expect(pairs(routes, 0)).toEqual([
      [1, 1.5],
      [0, 1],
    ]);
  });

  it('breaks ties by choosing the lower expert id first', () => {
    expect(pairs(route(new Float32Array([0, 0, 0, 0]), 1, softmax4), 0)).toEqual([
      [0, 0.25],
      [1, 0.25],
    ]);
    const routes = route(new Float32Array([1, 3, 3, 1]), 1, { ...sigmoid4, topK: 3 });
    expect(Array.from(routes.expertIds)).toEqual([1, 2, 0]);
  });

  it('lets the selection bias change the choice but not the weights', () => {
    const logits = new Float32Array([ln(3), 0, -ln(3), -ln(9)]);
    expect(Array.from(route(logits, 1, sigmoid4).expertIds)).toEqual([0, 1]);
    const biased = route(logits, 1, sigmoid4, new Float32Array([0, 0, 1, 0]));
    expect(pairs(biased, 0)).toEqual([
      [2, 0.25],
      [0, 0.75],
    ]);
  });

  it('gives every token exactly topK pairs when dropless', () => {
    const logits = new Float32Array([4, 3, 2, 1, 1, 2, 3, 4, 0, 9, 0, 8]);
    const routes = route(logits, 3, softmax4);
    expect(Array.from(routes.offsets)).toEqual([0, 2, 4, 6]);
    expect(Array.from(routes.expertIds)).toEqual([0, 1, 3, 2, 1, 3]);
  });

  it('rejects a topK larger than the number of experts and mis-sized inputs', () => {
    expect(() => route(new Float32Array(4), 1, { ...softmax4, topK: 5 })).toThrow(RangeError);
    expect(() => route(new Float32Array(5), 1, softmax4)).toThrow(RangeError);
    expect(() => route(new Float32Array(4), 1, softmax4, new Float32Array(3))).toThrow(RangeError);
  });
});

describe('capacity', () => {
  it('computes capacity as ceil(factor · tokens · topK / experts)', () => {
    expect(expertCapacity(1, 4, 1, 2)).toBe(2);
    expect(expertCapacity(1.25, 5, 2, 4)).toBe(4);
    expect(() => expertCapacity(0, 4, 1, 2)).toThrow(RangeError);
  });

  it('drops pairs beyond an expert capacity in token order', () => {
    const config: RouterConfig = {
      numExperts: 2,
      topK: 1,
      scoring: 'softmax',
      normTopKProb: true,
      routedScalingFactor: 1,
      capacityFactor: 1,
    };
    const routes = route(new Float32Array([5, 0, 0, 5, 5, 0, 0, 5]), 4, config);
    expect(Array.from(routes.offsets)).toEqual([0, 1, 2, 3, 4]);
    const crowded = route(new Float32Array([5, 0, 5, 0, 5, 0, 0, 5]), 4, config);
    expect(Array.from(crowded.offsets)).toEqual([0, 1, 2, 2, 3]);
    expect(Array.from(crowded.expertIds)).toEqual([0, 0, 1]);
  });

  it('does not renormalise the weights a token keeps after a drop', () => {
    const config: RouterConfig = {
      numExperts: 3,
      topK: 2,
      scoring: 'softmax',
      normTopKProb: true,
      routedScalingFactor: 1,
      capacityFactor: 0.75,
    };
    const logits = new Float32Array([ln(3), ln(2), ln(1), ln(2), ln(1), ln(6)]);
    const routes = route(logits, 2, config);
    expect(pairs(routes, 0)).toEqual([
      [0, 0.6],
      [1, 0.4],
    ]);
    expect(pairs(routes, 1)).toEqual([[2, 0.75]]);
  });
});
