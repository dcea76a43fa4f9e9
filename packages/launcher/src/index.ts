/**
 * Public entry of @switchyard/launcher: starting Switchyard's service processes and nats-server on this
 * machine — the one process launcher (and `freePort`) used by `switchyard up`, `switchyard bench`, the
 * benches and the process-level tests.
 */
export { freePort } from './free-port.ts';
export {
  REPO_ROOT,
  ProcessStartError,
  startProcess,
  stopProcesses,
  type ManagedProcess,
  type StartProcessOptions,
} from './process.ts';
export {
  GATEWAY_MAIN,
  GATEWAY_READY,
  KV_STORE_MAIN,
  KV_STORE_READY,
  WORKER_MAIN,
  WORKER_READY,
  startGateway,
  startKvStore,
  startWorker,
  startWorkerOn,
  type ServiceProcess,
} from './services.ts';
export {
  ClusterStartError,
  colocatedWorkerThreads,
  startExpertWorkers,
  startLocalCluster,
  type ExpertWorkerOptions,
  type ExpertWorkerProcesses,
  type LocalCluster,
  type LocalClusterOptions,
} from './local-cluster.ts';
export { CpuBudgetError, cpuBudgetSupport, limitCpu, type CpuBudget } from './cpu-budget.ts';
export { JobThread } from './job-thread.ts';
export { startNatsServer, type NatsServer, type NatsServerOptions } from './nats-server.ts';
