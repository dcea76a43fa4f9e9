/** The gateway as a library (tests and benches compose it in process); `main.ts` is the process. */
export * from './gateway.ts';
export * from './backend.ts';
export * from './local-backend.ts';
export * from './remote-expert-executor.ts';
export * from './expert-cluster.ts';
export * from './dense-weights.ts';
export * from './placement-controller.ts';
export { createHttpServer, type HttpServerOptions } from './http/server.ts';
