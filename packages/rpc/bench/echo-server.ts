/**
 * An expert worker whose "experts" echo the hidden states back (a no-op handler), for roundtrip.ts.
 * Prints its port on stdout; exits when stdin closes.
 */
import { createExpertServer } from '../src/index.ts';
import type { ExpertServiceHandler } from '../src/index.ts';

const handler: ExpertServiceHandler = {
  run: async (request) => ({ output: request.hidden }),
  load: async (change) => ({ hosted: change.experts, placementRevision: change.placementRevision }),
  unload: async (change) => ({ hosted: [], placementRevision: change.placementRevision }),
  describe: async () => ({
    workerId: 'echo',
    hosted: [],
    dtype: 'DTYPE_F32',
    executionProvider: 'none',
    modelName: 'echo',
    hiddenSize: 0,
    placementRevision: 0,
    weightsDigest: '',
    tokensServed: [],
  }),
};

const server = await createExpertServer({ handler, host: '127.0.0.1', port: 0 });
process.stdout.write(`${server.port}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void server.close(1_000).then(() => process.exit(0));
});
