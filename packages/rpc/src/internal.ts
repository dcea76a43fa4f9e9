/**
 * The `./internal` entry of @switchyard/rpc: the raw wire layer (loaded protos, wire message types), for
 * tests that write malformed messages byte by byte. Production code uses the typed clients and servers.
 */
export { switchyardProtos } from './protos.ts';
export type { DType, Tensor, WireRunRequest, WireRunResponse, WireTokenRoutes, WireErrorStatus } from './wire-types.ts';
