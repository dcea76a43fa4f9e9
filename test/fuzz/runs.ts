/**
 * How many cases each fuzz property runs: 1,000 in `npm test`, more with SWITCHYARD_FUZZ_RUNS
 * (`npm run fuzz` sets 10,000). Each suite prints its count and seed so a failure can be replayed.
 */
export const FUZZ_RUNS = Number(process.env['SWITCHYARD_FUZZ_RUNS'] ?? '1000');
if (!Number.isSafeInteger(FUZZ_RUNS) || FUZZ_RUNS < 1)
  throw new Error('SWITCHYARD_FUZZ_RUNS must be a positive integer');
/** Per-suite time budget: generous, since 10,000 cases of real HTTP or gRPC round trips take minutes. */
export const FUZZ_TIMEOUT_MS = 120_000 + FUZZ_RUNS * 60;
