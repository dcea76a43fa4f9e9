/**
 * Starts a grpc-js server with raised message limits and grpc.health.v1, and shuts it down within a
 * bounded time. The ExpertService and KvPageService servers are built on it.
 */
import { Server } from '@grpc/grpc-js';
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { DEFAULT_MAX_MESSAGE_BYTES, checkPositiveInteger, serverChannelOptions } from './channel-options.ts';
import { HealthReporter } from './health.ts';
import type { ServingStatus } from './health.ts';
import { serverCredentialsOf, type ServerTls } from './tls.ts';

export interface ServerListenOptions {
  /** Interface to bind, e.g. "0.0.0.0" in a pod, "127.0.0.1" in tests. */
  readonly host: string;
  /** 0 picks a free port; the chosen one is `port` on the result. */
  readonly port: number;
  /** Largest message accepted or sent, both ways. Default 256 MiB. */
  readonly maxMessageBytes?: number;
  /** Called with failures that were answered with a generic INTERNAL. Default: console.error. */
  readonly logError?: (message: string, err: unknown) => void;
  /** TLS (and, with a client CA, mutual TLS) from PEM files reloaded on change; absent: plaintext. */
  readonly tls?: ServerTls;
}

export interface HostedService {
  readonly name: string;
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

export interface RunningServer {
  readonly port: number;
  readonly health: HealthReporter;
  /**
   * Health NOT_SERVING, then `drain` (bounded by graceMs) so in-flight work is answered, then a
   * graceful shutdown, forced when graceMs has passed. Resolves once the server has stopped.
   */
  close(graceMs: number, drain?: () => Promise<void>): Promise<void>;
}

export async function startServer(
  options: ServerListenOptions,
  services: readonly HostedService[],
): Promise<RunningServer> {
  const maxMessageBytes = checkPositiveInteger(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes');
  const server = new Server(serverChannelOptions(maxMessageBytes));
  const health = new HealthReporter(
    services.map((service) => service.name),
    'SERVING',
  );
  for (const service of services) server.addService(service.definition, service.implementation);
  health.addTo(server);
  const port = await bind(server, options.host, options.port, options.tls);
  return {
    port,
    health,
    close: (graceMs, drain) => closeServer(server, health, graceMs, drain),
  };
}

export const defaultLogError = (message: string, err: unknown): void => {
  console.error(`[switchyard/rpc] ${message}`, err);
};

function bind(server: Server, host: string, port: number, tls: ServerTls | undefined): Promise<number> {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, serverCredentialsOf(tls), (err, boundPort) => {
      if (err === null) resolve(boundPort);
      else reject(err);
    });
  });
}

async function closeServer(
  server: Server,
  health: HealthReporter,
  graceMs: number,
  drain: (() => Promise<void>) | undefined,
): Promise<void> {
  const notServing: ServingStatus = 'NOT_SERVING';
  health.setStatus(notServing);
  const deadline = Date.now() + graceMs;
  if (drain !== undefined) await withinMs(drain(), graceMs);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(
      () => {
        server.forceShutdown();
        resolve();
      },
      Math.max(0, deadline - Date.now()),
    );
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Waits for `work` at most `ms`; a failure of `work` is ignored (shutdown goes on regardless). */
async function withinMs(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([work.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
