import { describe, expect, it } from 'vitest';
import { FrontendWatch } from '../src/frontend-liveness.ts';
import type { ClusterConnection } from '../src/connect.ts';
import { ClusterNames } from '../src/subjects.ts';

/** A connection whose subscription does nothing: the watch is fed through `observe`. */
const quiet = {
  nc: { subscribe: () => ({ unsubscribe: () => undefined }) },
  names: new ClusterNames(),
} as unknown as ClusterConnection;

describe('FrontendWatch', () => {
  it('takes a frontend as gone once it has been silent for the TTL, counting from when the request was taken', () => {
    let now = 10_000;
    const watch = new FrontendWatch(quiet, () => now);
    // Another frontend (the engine's own gateway) keeps heartbeating: the broker path works.
    const tick = (until: number) => {
      while (now < until) {
        now += 500;
        watch.observe('self');
      }
    };
    watch.observe('f1');
    tick(11_000);
    expect(watch.isGone('f1', 9_000, 2_000)).toBe(false);
    tick(12_500);
    expect(watch.isGone('f1', 9_000, 2_000)).toBe(true);
    // A heartbeat brings it back.
    watch.observe('f1');
    expect(watch.isGone('f1', 9_000, 2_000)).toBe(false);
    // A frontend never heard from gets the TTL from when the engine took its request.
    expect(watch.isGone('f2', 11_500, 2_000)).toBe(false);
    expect(watch.isGone('f2', 10_000, 2_000)).toBe(true);
    watch.stop();
  });

  it('takes nobody as gone while no heartbeat arrives at all, and gives everyone a TTL after a silence', () => {
    let now = 10_000;
    const watch = new FrontendWatch(quiet, () => now);
    watch.observe('self');
    watch.observe('f1');
    // The broker restarts: 5 s without any heartbeat.
    now = 15_000;
    expect(watch.isGone('f1', 0, 2_000)).toBe(false);
    // Heartbeats resume (the engine's own first); f1 reconnects a second later, within its fresh TTL.
    watch.observe('self');
    now = 15_500;
    watch.observe('self');
    expect(watch.isGone('f1', 0, 2_000)).toBe(false);
    now = 16_000;
    watch.observe('self');
    now = 16_500;
    watch.observe('self');
    now = 17_100;
    watch.observe('self');
    expect(watch.isGone('f1', 0, 2_000)).toBe(true);
    watch.stop();
  });

  it('takes a request as orphaned at once when its frontend restarted under the same name', () => {
    let now = 10_000;
    const watch = new FrontendWatch(quiet, () => now);
    watch.observe('f1', 'life-1');
    const takenLife = watch.lifeOf('f1');
    expect(watch.isGone('f1', now, 2_000, takenLife)).toBe(false);
    // The process dies and a new one starts under the name f1: its heartbeats carry another life.
    now += 300;
    watch.observe('f1', 'life-2');
    expect(watch.isGone('f1', 10_000, 2_000, takenLife)).toBe(true);
    // The new life's own requests are not orphans.
    expect(watch.isGone('f1', now, 2_000, watch.lifeOf('f1'))).toBe(false);
    watch.stop();
  });
});
