export { RemoteExpertExecutor } from './remote-expert-executor.ts';
export { connectExpertCluster } from './expert-cluster.ts';
export { PlacementController } from './placement-controller.ts';
export { placeExperts, type LoadAwareSettings, type PlacementSettings } from './expert-placement.ts';
export { WarmupPlacement, type PlacementTarget, type WarmupPlacementOptions } from './warmup-placement.ts';
export {
  LocalPlacementStore,
  Rebalancer,
  predictedBalancedness,
  type PlacementStoreLike,
  type RebalanceResult,
  type RebalanceTarget,
  type RebalancerOptions,
} from './rebalancer.ts';
