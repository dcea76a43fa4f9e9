import { gatherRows, planDispatch, scatterAddWeighted, type TokenRoutes } from '@switchyard/routing';
import type { ExpertExecutor, LayerResult } from './expert-executor.ts';

/** One expert's SwiGLU on a batch of rows: x [numRows, hidden] → y [numRows, hidden]. */
export interface ExpertKernel {
  /** Writes y into `out` (exactly [numRows, hidden]) and returns it when given; otherwise allocates y. */
  run(x: Float32Array, numRows: number, out?: Float32Array): Promise<Float32Array>;
  release(): Promise<void>;
}

export class ExpertNotHostedError extends Error {
  override readonly name = 'ExpertNotHostedError';
  readonly code = 'expert_not_hosted' as const;
  constructor(layer: number, expertId: number) {
    super(`expert ${expertId} of layer ${layer} is not hosted here`);
  }
}

/**
 * Runs experts in this process: groups rows by expert, runs each expert's kernel once on its rows, and
 * combines with a weighted scatter-add in ascending expert order (so the sum order, and hence every
 * bit of the result, does not depend on which kernel finished first). The expert worker service uses
 * the same class over the experts it hosts.
 */
export class LocalExpertExecutor implements ExpertExecutor {
  readonly #kernels: ReadonlyMap<string, ExpertKernel>;
  readonly #numExperts: number;
  readonly #hiddenSize: number;

  constructor(kernels: ReadonlyMap<string, ExpertKernel>, numExperts: number, hiddenSize: number) {
    this.#kernels = kernels;
    this.#numExperts = numExperts;
    this.#hiddenSize = hiddenSize;
  }

  static key(layer: number, expertId: number): string {
    return `${layer}:${expertId}`;
  }

  hosts(layer: number, expertId: number): boolean {
    return this.#kernels.has(LocalExpertExecutor.key(layer, expertId));
  }

  async runLayer(layer: number, hidden: Float32Array, routes: TokenRoutes): Promise<LayerResult> {
    const width = this.#hiddenSize;
    const plan = planDispatch(routes, this.#numExperts);
    const kernels = plan.experts.map((rows) => {
      const kernel = this.#kernels.get(LocalExpertExecutor.key(layer, rows.expertId));
      if (!kernel) throw new ExpertNotHostedError(layer, rows.expertId);
      return kernel;
    });
    // NOTE: one buffer holds every expert's gathered input, one every expert's output (each expert a
    // slice, in plan order), and the kernels write their outputs in place: two allocations per layer
    // call instead of three per expert.
    const numPairs = routes.expertIds.length;
    const inputs = new Float32Array(numPairs * width);
    const outputs = new Float32Array(numPairs * width);
    const slices = plan.experts.map((rows) => rows.rows.length * width);
    let offset = 0;
    const runs = plan.experts.map((rows, i) => {
      const size = slices[i] ?? 0;
      const x = gatherRows(hidden, width, rows.rows, inputs.subarray(offset, offset + size));
      const y = outputs.subarray(offset, offset + size);
      offset += size;
      return kernels[i]?.run(x, rows.rows.length, y) ?? Promise.resolve(y);
    });
    const results = await Promise.all(runs);
    const output = new Float32Array(routes.numTokens * width);
    plan.experts.forEach((rows, i) =>
      scatterAddWeighted(output, width, rows.rows, results[i] ?? new Float32Array(0), rows.weights),
    );
    return { output, failedRows: new Int32Array(0) };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#kernels.values()].map((k) => k.release()));
  }
}
