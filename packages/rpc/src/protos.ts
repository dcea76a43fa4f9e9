/**
 * Loads `protos/switchyard/v1` once (lazily, on first use) and hands out typed method definitions.
 * The casts to the wire interfaces here are the one unchecked step: they hold as long as
 * `wire-types.ts` matches the .proto files and the loader options below.
 */
import { fileURLToPath } from 'node:url';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { PackageDefinition } from '@grpc/proto-loader';
import { serializeRunRequest, serializeRunResponse } from './run-codec.ts';
import type {
  WireDescribeRequest,
  WireDescribeResponse,
  WireFetchPagesRequest,
  WireKvPageChunk,
  WirePlacementChangeRequest,
  WirePlacementChangeResponse,
  WirePushPagesResponse,
  WireRunRequest,
  WireRunResponse,
} from './wire-types.ts';

/** The repository's `protos/` directory, found relative to this file (packages/rpc/src). */
export const PROTO_DIR = fileURLToPath(new URL('../../../protos', import.meta.url));

export const EXPERT_SERVICE_NAME = 'switchyard.v1.ExpertService';
export const KV_PAGE_SERVICE_NAME = 'switchyard.v1.KvPageService';

export interface ExpertServiceMethods {
  readonly service: ServiceDefinition;
  readonly run: MethodDefinition<WireRunRequest, WireRunResponse>;
  readonly loadExperts: MethodDefinition<WirePlacementChangeRequest, WirePlacementChangeResponse>;
  readonly unloadExperts: MethodDefinition<WirePlacementChangeRequest, WirePlacementChangeResponse>;
  readonly describe: MethodDefinition<WireDescribeRequest, WireDescribeResponse>;
}

export interface KvPageServiceMethods {
  readonly service: ServiceDefinition;
  readonly fetchPages: MethodDefinition<WireFetchPagesRequest, WireKvPageChunk>;
  readonly pushPages: MethodDefinition<WireKvPageChunk, WirePushPagesResponse>;
}

export interface SwitchyardProtos {
  readonly expert: ExpertServiceMethods;
  readonly kv: KvPageServiceMethods;
}

let loaded: SwitchyardProtos | undefined;

/** The loaded services. NOTE: memoised — proto parsing takes tens of milliseconds and never changes. */
export function switchyardProtos(): SwitchyardProtos {
  loaded ??= loadProtos();
  return loaded;
}

function loadProtos(): SwitchyardProtos {
  const definition = loadSync(['switchyard/v1/expert.proto', 'switchyard/v1/kv.proto'], {
    includeDirs: [PROTO_DIR],
    keepCase: false,
    longs: Number,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  const expert = withRunCodec(serviceOf(definition, EXPERT_SERVICE_NAME));
  const kv = serviceOf(definition, KV_PAGE_SERVICE_NAME);
  return {
    expert: {
      service: expert,
      run: methodOf(expert, 'Run'),
      loadExperts: methodOf(expert, 'LoadExperts'),
      unloadExperts: methodOf(expert, 'UnloadExperts'),
      describe: methodOf(expert, 'Describe'),
    },
    kv: {
      service: kv,
      fetchPages: methodOf(kv, 'FetchPages'),
      pushPages: methodOf(kv, 'PushPages'),
    },
  };
}

/** The Run method with the aligned hand-written encoders (decoding stays protobuf.js). */
function withRunCodec(service: ServiceDefinition): ServiceDefinition {
  const run = methodOf<WireRunRequest, WireRunResponse>(service, 'Run');
  const aligned: MethodDefinition<WireRunRequest, WireRunResponse> = {
    ...run,
    requestSerialize: serializeRunRequest,
    // NOTE: a frame that fails to decode must not end a long-lived stream: it becomes a message that
    // is answered with INVALID_ARGUMENT (RunStreamSession), and the next frames are served.
    requestDeserialize: (bytes: Buffer): WireRunRequest => {
      try {
        return run.requestDeserialize(bytes);
      } catch (err) {
        return undecodableRunRequest(bytes, err);
      }
    },
    responseSerialize: serializeRunResponse,
  };
  return { ...service, Run: aligned };
}

/** A stand-in for a Run frame that did not decode: its correlation id if the frame starts with one. */
function undecodableRunRequest(bytes: Buffer, err: unknown): WireRunRequest {
  let correlationId = 0;
  // Field 1 (correlation_id), wire type 0 (varint): tag byte 0x08.
  if (bytes[0] === 0x08) {
    let shift = 0;
    for (let i = 1; i < Math.min(bytes.length, 9); i++) {
      const b = bytes[i] ?? 0;
      correlationId += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
  }
  return {
    correlationId,
    layer: 0,
    hidden: null,
    routes: null,
    outputDtype: 'DTYPE_F32',
    traceparent: '',
    undecodable: err instanceof Error ? err.message : String(err),
  };
}

function serviceOf(definition: PackageDefinition, name: string): ServiceDefinition {
  const service = definition[name];
  if (service === undefined || 'format' in service || 'type' in service) {
    throw new Error(`${name} is not a service in ${PROTO_DIR}`);
  }
  return service as unknown as ServiceDefinition;
}

function methodOf<Request, Response>(service: ServiceDefinition, name: string): MethodDefinition<Request, Response> {
  const method = service[name];
  if (method === undefined) throw new Error(`method ${name} missing from the loaded protos`);
  return method as MethodDefinition<Request, Response>;
}
