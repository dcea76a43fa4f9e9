import { gatherRows, planDispatch, scatterAddWeighted, type TokenRoutes } from '@switchyard/routing';
import type { ExpertExecutor, LayerResult } from './expert-executor.ts';

/** One expert's SwiGLU on a batch of rows: x [numRows, hidden] → y [numRows, hidden]. */
export interface ExpertKernel {
  run(x: Float32Array, numRows: number): Promise<Float32Array>;
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
    const outputs = await Promise.all(
      plan.experts.map(
        (rows, i) =>
          kernels[i]?.run(gatherRows(hidden, width, rows.rows), rows.rows.length) ??
          Promise.resolve(new Float32Array(0)),
      ),
    );
    const output = new Float32Array(routes.numTokens * width);
    plan.experts.forEach((rows, i) =>
      scatterAddWeighted(output, width, rows.rows, outputs[i] ?? new Float32Array(0), rows.weights),
    );
    return { output, failedRows: new Int32Array(0) };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#kernels.values()].map((k) => k.release()));
  }
}
