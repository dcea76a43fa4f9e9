import { describe, expect, it } from 'vitest';
import { decodeEngineLoad, encodeEngineLoad, type EngineLoad } from '../src/engine-load.ts';

const base: EngineLoad = {
  engineId: 'kv-store-0',
  model: '*',
  numRunning: 0,
  numWaiting: 0,
  maxRunning: 1,
  kvUsage: 0.25,
  leaving: false,
  role: 'store',
};

describe('engine load reports', () => {
  it('carry the KvPageService and KV bulk data plane addresses', () => {
    const load = { ...base, kvAddress: '10.0.0.7:50070', kvDataAddress: '10.0.0.7:50071' };

    expect(decodeEngineLoad(encodeEngineLoad(load))).toEqual(load);
  });

  it('leave the data address out when a report has none or an empty one (older releases)', () => {
    const load = { ...base, kvAddress: '[::1]:50061' };

    expect(decodeEngineLoad(encodeEngineLoad(load))).toEqual(load);
    expect(decodeEngineLoad(encodeEngineLoad({ ...load, kvDataAddress: '' }))).toEqual(load);
  });

  it('refuse a data address that is not host:port', () => {
    const load = { ...base, kvDataAddress: 'tcp://10.0.0.7' };

    expect(() => decodeEngineLoad(encodeEngineLoad(load))).toThrow('kvDataAddress must be host:port');
  });
});
