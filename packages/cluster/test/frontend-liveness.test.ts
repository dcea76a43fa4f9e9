import { describe, expect, it } from 'vitest';
import { FrontendWatch } from '../src/frontend-liveness.ts';
import type { ClusterConnection } from '../src/connect.ts';

/** A connection whose subscription does nothing: the watch is fed through `observe`. */
const quiet = { nc: { subscribe: () => ({ unsubscribe: () => undefined }) } } as unknown as ClusterConnection;

describe('FrontendWatch', () => {
  it('takes a frontend as gone once it has been silent for the TTL, counting from when the request was taken', () => {
    let now = 10_000;
    const watch = new FrontendWatch(quiet, () => now);
    watch.observe('f1');
    now = 11_000;
    expect(watch.isGone('f1', 9_000, 2_000)).toBe(false);
    now = 12_001;
    expect(watch.isGone('f1', 9_000, 2_000)).toBe(true);
    // A heartbeat brings it back.
    watch.observe('f1');
    expect(watch.isGone('f1', 9_000, 2_000)).toBe(false);
    // A frontend never heard from gets the TTL from when the engine took its request.
    expect(watch.isGone('f2', 11_000, 2_000)).toBe(false);
    expect(watch.isGone('f2', 10_000, 2_000)).toBe(true);
    watch.stop();
  });
});
