import { describe, expect, it } from 'vitest';
import { countTokensPerExpert, fixedRoutes, planDispatch, routesFromPairs } from '../src/index.ts';

describe('planDispatch', () => {
  it('groups rows by ascending expert id, rows ascending, and omits idle experts', () => {
    const routes = fixedRoutes(3, [3, 0, 0, 3, 3, 1], [0.5, 0.25, 0.75, 0.125, 1, 2], 2);
    const plan = planDispatch(routes, 5);
    expect(plan.numTokens).toBe(3);
    expect(plan.experts.map((x) => [x.expertId, Array.from(x.rows), Array.from(x.weights)])).toEqual([
      [0, [0, 1], [0.25, 0.75]],
      [1, [2], [2]],
      [3, [0, 1, 2], [0.5, 0.125, 1]],
    ]);
  });

  it('handles tokens with no pairs (dropped by capacity)', () => {
    const plan = planDispatch(routesFromPairs([[], [[1, 0.5]], []]), 2);
    expect(plan.experts.map((x) => [x.expertId, Array.from(x.rows)])).toEqual([[1, [1]]]);
  });

  it('rejects an expert id outside the layer', () => {
    expect(() => planDispatch(fixedRoutes(1, [4], [1], 1), 4)).toThrow(RangeError);
  });
});

describe('countTokensPerExpert', () => {
  it('counts the pairs each expert receives', () => {
    const routes = fixedRoutes(3, [3, 0, 0, 3, 3, 1], [1, 1, 1, 1, 1, 1], 2);
    expect(Array.from(countTokensPerExpert(routes, 4))).toEqual([2, 1, 0, 3]);
  });
});
