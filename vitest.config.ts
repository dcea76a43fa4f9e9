import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    // The default summary, then one plain closing line (`N passed, N failed`, on stdout and stderr) for CI's reader.
    reporters: ['default', './test/reporters/closing-line.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
