#!/usr/bin/env node
// The `switchyard` command. Runs the TypeScript entry point directly (Node ≥ 24 strips types); npm
// scripts and `npx switchyard` put the project's pinned Node 24 first on PATH.
import('../src/main.ts').catch((error) => {
  console.error(error);
  process.exit(1);
});
