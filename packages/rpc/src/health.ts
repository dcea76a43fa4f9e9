/**
 * grpc.health.v1 on every server (via grpc-health-check) and a typed Check client.
 */
import { Client, credentials } from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/grpc-js';
import { HealthImplementation, service as healthService } from 'grpc-health-check';
import { DEFAULT_MAX_MESSAGE_BYTES, clientChannelOptions } from './channel-options.ts';
import { unaryCall } from './unary-call.ts';
import { NotFoundError } from './errors.ts';

/** The overall health of a server, as opposed to one named service. */
export const OVERALL_SERVICE = '';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';
export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/**
 * The health states one server reports: the overall service "" and each named service it hosts.
 * Invariant: every name in `services` has a status from construction on (never "unknown").
 */
export class HealthReporter {
  readonly services: readonly string[];
  readonly #implementation: HealthImplementation;

  constructor(namedServices: readonly string[], initial: ServingStatus) {
    this.services = [OVERALL_SERVICE, ...namedServices];
    this.#implementation = new HealthImplementation(Object.fromEntries(this.services.map((name) => [name, initial])));
  }

  /** Sets one service's status, or every service's (the overall one included) when none is named. */
  setStatus(status: ServingStatus, service?: string): void {
    const targets = service === undefined ? this.services : [service];
    for (const name of targets) this.#implementation.setStatus(name, status);
  }

  /** Registers grpc.health.v1.Health on a server. */
  addTo(server: Parameters<HealthImplementation['addToServer']>[0]): void {
    this.#implementation.addToServer(server);
  }
}

interface HealthCheckRequest {
  readonly service: string;
}
interface HealthCheckResponse {
  readonly status: HealthStatus;
}

function checkMethod(): MethodDefinition<HealthCheckRequest, HealthCheckResponse> {
  const method = healthService['Check'];
  if (method === undefined) throw new Error('grpc-health-check has no Check method');
  return method as unknown as MethodDefinition<HealthCheckRequest, HealthCheckResponse>;
}

/**
 * One health Check over an existing channel. A service the server does not know is the result
 * 'SERVICE_UNKNOWN', not an error; an unreachable server rejects with UnavailableError.
 */
export async function checkHealthOn(
  client: Client,
  service: string,
  options: { readonly deadlineMs: number; readonly signal?: AbortSignal },
): Promise<HealthStatus> {
  try {
    const response = await unaryCall(client, checkMethod(), { service }, options);
    return response.status;
  } catch (err) {
    if (err instanceof NotFoundError) return 'SERVICE_UNKNOWN';
    throw err;
  }
}

/** Opens a channel to `address`, asks for one service's health ('' = the whole server), closes it. */
export async function checkHealth(address: string, service: string, deadlineMs: number): Promise<HealthStatus> {
  const client = new Client(address, credentials.createInsecure(), clientChannelOptions(DEFAULT_MAX_MESSAGE_BYTES));
  try {
    return await checkHealthOn(client, service, { deadlineMs });
  } finally {
    client.close();
  }
}
