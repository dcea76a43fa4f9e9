/**
 * ExpertService over a plain TypeScript handler, with grpc.health.v1.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { checkPositiveInteger } from './channel-options.ts';
import { toExpertRefs, toPlacementChange } from './expert-messages.ts';
import type { PlacementChange, PlacementState, WorkerDescription } from './expert-messages.ts';
import type { ServingStatus } from './health.ts';
import { EXPERT_SERVICE_NAME, switchyardProtos } from './protos.ts';
import { RunStreamSession } from './run-stream-session.ts';
import type { RunHandler } from './run-stream-session.ts';
import { defaultLogError, startServer } from './server-host.ts';
import type { ServerListenOptions } from './server-host.ts';
import { unaryHandler } from './unary-handler.ts';
import type { CallContext } from './unary-handler.ts';
import type {
  WireDescribeRequest,
  WireDescribeResponse,
  WirePlacementChangeRequest,
  WirePlacementChangeResponse,
  WireRunRequest,
  WireRunResponse,
} from './wire-types.ts';

/**
 * What a worker implements. Throw InvalidArgumentError, NotFoundError, FailedPreconditionError,
 * UnavailableError, … for failures the caller should see; anything else is answered with a generic
 * INTERNAL and logged.
 */
export interface ExpertServiceHandler {
  /** Called once per Run message, concurrently (up to maxConcurrentRuns per stream). */
  readonly run: RunHandler;
  readonly load: (change: PlacementChange, context: CallContext) => Promise<PlacementState>;
  readonly unload: (change: PlacementChange, context: CallContext) => Promise<PlacementState>;
  readonly describe: (context: CallContext) => Promise<WorkerDescription>;
}

export interface ExpertServerOptions extends ServerListenOptions {
  readonly handler: ExpertServiceHandler;
  /** Run requests one stream may have in flight before the server stops reading it. Default 64. */
  readonly maxConcurrentRuns?: number;
}

export interface ExpertServer {
  readonly port: number;
  /** Sets the health of ExpertService, or of every service and the server as a whole when unnamed. */
  setServingStatus(status: ServingStatus, service?: string): void;
  /**
   * Bounded graceful shutdown: health NOT_SERVING, each Run stream stops reading, answers what it
   * has in flight and ends (clients fail over on their next request), then the server stops;
   * after graceMs whatever is left is cut.
   */
  close(graceMs: number): Promise<void>;
}

export async function createExpertServer(options: ExpertServerOptions): Promise<ExpertServer> {
  const { handler } = options;
  const logError = options.logError ?? defaultLogError;
  const maxConcurrentRuns = checkPositiveInteger(options.maxConcurrentRuns ?? 64, 'maxConcurrentRuns');
  const protos = switchyardProtos().expert;
  const sessions = new Set<RunStreamSession>();

  const run = (call: ServerDuplexStream<WireRunRequest, WireRunResponse>): void => {
    const session = new RunStreamSession(call, handler.run, { maxConcurrentRuns, logError });
    sessions.add(session);
    void session.closed.then(() => sessions.delete(session));
  };
  const placement =
    (apply: ExpertServiceHandler['load']) =>
    async (request: WirePlacementChangeRequest, context: CallContext): Promise<WirePlacementChangeResponse> => {
      const state = await apply(toPlacementChange(request), context);
      return { hosted: toExpertRefs(state.hosted), placementRevision: state.placementRevision };
    };
  const describe = async (_request: WireDescribeRequest, context: CallContext): Promise<WireDescribeResponse> => {
    const description = await handler.describe(context);
    return {
      ...description,
      hosted: toExpertRefs(description.hosted),
      tokensServed: description.tokensServed.map(({ layer, expertId, tokens }) => ({ layer, expertId, tokens })),
    };
  };

  const server = await startServer(options, [
    {
      name: EXPERT_SERVICE_NAME,
      definition: protos.service,
      implementation: {
        Run: run,
        LoadExperts: unaryHandler('LoadExperts', placement(handler.load), logError),
        UnloadExperts: unaryHandler('UnloadExperts', placement(handler.unload), logError),
        Describe: unaryHandler('Describe', describe, logError),
      },
    },
  ]);
  return {
    port: server.port,
    setServingStatus: (status, service) => server.health.setStatus(status, service),
    close: (graceMs) =>
      server.close(graceMs, async () => {
        await Promise.all([...sessions].map((session) => session.drain()));
      }),
  };
}
