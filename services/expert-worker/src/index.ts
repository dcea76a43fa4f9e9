export * from './expert-worker.ts';
export * from './expert-source.ts';
