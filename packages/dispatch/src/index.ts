export { RemoteExpertExecutor } from './remote-expert-executor.ts';
export { connectExpertCluster } from './expert-cluster.ts';
export { PlacementController } from './placement-controller.ts';
