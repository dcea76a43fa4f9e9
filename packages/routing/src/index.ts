/**
 * @switchyard/routing — the pure gating math of an MoE layer: scoring, top-k, renormalisation, scaling,
 * the capacity policy, dispatch plans, the per-worker wire split and the combine. No I/O, clocks or
 * randomness; same inputs give the same outputs on every node.
 *
 * NOTE: typed-array reads are written `a[i] ?? 0` because `noUncheckedIndexedAccess` types them as
 * `number | undefined`, only where indices are in range by construction (checked up front, as `checkRows`
 * does), so the fallback never fires. Where an index comes from elsewhere, `at` throws instead.
 */
export type { DispatchPlan, ExpertRows, RouterConfig, Scoring, TokenRoutes, WorkerShard } from './types.ts';
export { route } from './route.ts';
export { scoreLogits, scoreRow, sigmoid, sigmoidRow, softmaxRow } from './scoring.ts';
export { selectTopKRow } from './top-k.ts';
export { applyCapacity, expertCapacity } from './capacity.ts';
export { fixedRoutes, routesFromPairs } from './fixed-routes.ts';
export { countTokensPerExpert, planDispatch } from './dispatch-plan.ts';
export { splitByWorker, splitByPairWorker } from './worker-split.ts';
export { routesRotation, shareAmongReplicas } from './replica-share.ts';
export { addRows, gatherRows, scatterAddWeighted } from './combine.ts';
export { at } from './at.ts';
export {
  computePlacement,
  expertsOfWorker,
  chooseWorkers,
  usableReplicas,
  PlacementError,
  type PlacementStrategy,
  type Placement,
} from './placement.ts';
export {
  computeLoadAwarePlacement,
  workerLoads,
  balancedness,
  type LoadAwarePlacementRequest,
} from './load-aware-placement.ts';
