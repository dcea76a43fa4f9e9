/**
 * Shared test helpers: fake handlers, request builders and real loopback servers.
 */
import { createExpertServer } from '../src/index.ts';
import type {
  ExpertServer,
  ExpertServiceHandler,
  PlacementChange,
  PlacementState,
  RunRequest,
  RunResult,
  TokenRoutes,
  WorkerDescription,
} from '../src/index.ts';

/** Routes where token t goes to `expertsPerToken` experts (t + j) with weight 1/(j+1). */
export function makeRoutes(numTokens: number, expertsPerToken = 2): TokenRoutes {
  const offsets = new Int32Array(numTokens + 1);
  const expertIds = new Int32Array(numTokens * expertsPerToken);
  const weights = new Float32Array(numTokens * expertsPerToken);
  for (let t = 0; t < numTokens; t++) {
    offsets[t + 1] = (t + 1) * expertsPerToken;
    for (let j = 0; j < expertsPerToken; j++) {
      expertIds[t * expertsPerToken + j] = t + j;
      weights[t * expertsPerToken + j] = 1 / (j + 1);
    }
  }
  return { numTokens, offsets, expertIds, weights };
}

export function makeRequest(numTokens: number, hiddenSize: number, layer = 0, seed = 1): RunRequest {
  const hidden = new Float32Array(numTokens * hiddenSize);
  let state = seed;
  for (let i = 0; i < hidden.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    hidden[i] = state / 2 ** 31 - 1;
  }
  return { layer, hiddenSize, hidden, routes: makeRoutes(numTokens) };
}

/** The fake "experts": output = (layer + 1) × hidden. Easy to predict, distinct per layer. */
export function scaleByLayer(request: RunRequest): Float32Array {
  return request.hidden.map((value) => value * (request.layer + 1));
}

export const DESCRIPTION: WorkerDescription = {
  workerId: 'worker-0',
  hosted: [
    { layer: 0, expertId: 1 },
    { layer: 1, expertId: 3 },
  ],
  dtype: 'DTYPE_F32',
  executionProvider: 'cpu',
  modelName: 'tiny',
  hiddenSize: 8,
  placementRevision: 4,
  weightsDigest: 'ab'.repeat(32),
  tokensServed: [
    { layer: 0, expertId: 1, tokens: 12 },
    { layer: 1, expertId: 3, tokens: 2 ** 40 },
  ],
};

export function fakeHandler(run: ExpertServiceHandler['run']): ExpertServiceHandler {
  const place = async (change: PlacementChange): Promise<PlacementState> => ({
    hosted: change.experts,
    placementRevision: change.placementRevision,
  });
  return { run, load: place, unload: place, describe: async () => DESCRIPTION };
}

export function echoHandler(): ExpertServiceHandler {
  return fakeHandler(async (request): Promise<RunResult> => ({ output: request.hidden }));
}

export async function startExpertServer(handler: ExpertServiceHandler, port = 0): Promise<ExpertServer> {
  return createExpertServer({ handler, host: '127.0.0.1', port, logError: () => undefined });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

export function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}
