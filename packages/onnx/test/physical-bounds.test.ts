import { describe, expect, it } from 'vitest';
import { measureInt8MatMulOps, measureMatMulFlops, measureReadBandwidth } from '../src/index.ts';

// Figures only: a test never asserts a speed (the machine is shared), only that each bound is measured
// by the kernel it names, on the threads asked for.
describe('physical bounds', () => {
  it('measures read bandwidth with an onnxruntime ReduceSum on the threads asked for', async () => {
    const bound = await measureReadBandwidth(16 << 20, { threads: 1, repeats: 1 });
    expect(bound.value).toBeGreaterThan(0);
    expect(bound.threads).toBe(1);
    expect(bound.method).toMatch(/^onnxruntime ReduceSum over 0\.02 GiB of float32 on 1 intra-op threads/);
  });

  it('measures the fp32 and int8 MatMul peaks with one GEMM each', async () => {
    const fp32 = await measureMatMulFlops(64, 128, 128, { threads: 1, repeats: 1 });
    const int8 = await measureInt8MatMulOps(64, 128, 128, { threads: 1, repeats: 1 });
    expect(fp32.value).toBeGreaterThan(0);
    expect(int8.value).toBeGreaterThan(0);
    expect(fp32.method).toContain('fp32 MatMul [64×128]·[128×128]');
    expect(int8.method).toContain('MatMulInteger u8×s8 [64×128]·[128×128]');
  });
});
