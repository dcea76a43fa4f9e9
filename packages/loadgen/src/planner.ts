/**
 * Capacity planner for the attention–FFN disaggregated layout (MegaScale-Infer, Step-3 AFD): attention
 * nodes hold the KV cache and run attention, the router, shared experts and dense layers; expert nodes
 * hold the routed experts. Per MoE layer a token's hidden state goes out to the expert nodes its top-k
 * experts live on (dispatch) and a weighted partial sum comes back from each (combine). Three upper
 * bounds on tokens per second follow:
 *
 * - links: every token moves `L × D` bytes each way, D = H × dtype bytes × expert nodes hit — sent once
 *   per node, not once per expert (our wire contract; DeepEP's dispatch does the same). With the
 *   top-k chosen uniformly at random and experts spread evenly over N nodes, node n (holding eₙ of E
 *   experts) is hit with probability 1 − C(E − eₙ, k) ÷ C(E, k). Links are full duplex; the attention
 *   side has A links, the expert side N, so the bound is min(A, N) × link bytes/s ÷ (L × D). The k
 *   (expert id, weight) pairs per token (≈ 8k bytes) are left out;
 * - expert compute: 2 × routed expert matmul parameters per token (L × k × 3HF) FLOPs, over N devices;
 * - expert memory: a step of B tokens reads every distinct expert it hits once — E × (1 − (1 − k/E)^B)
 *   per layer in expectation — so a step needs L × that × expert bytes ÷ (N × memory bandwidth), and
 *   B tokens per step bound the rate.
 *
 * Pure: shapes and figures in, numbers out. Peak figures, no efficiency factor: these are ceilings.
 */

import type { ShapeSpec } from '@switchyard/model';

export interface PlannerInput {
  readonly shape: ShapeSpec;
  readonly attentionNodes: number;
  readonly expertNodes: number;
  /** Per node and direction, Gbit/s. */
  readonly linkGbps: number;
  /** Per expert device, TFLOP/s at the expert dtype. */
  readonly deviceTflops: number;
  /** Per expert device, GB/s. */
  readonly deviceMemGBps: number;
  /** Tokens per step over all attention nodes (decode batch, or prefill chunk). */
  readonly batchTokens: number;
  /** Bytes per activation element on the wire (2 for bf16). */
  readonly dtypeBytes: number;
  /** Bytes per expert weight (2 for bf16, 1 for fp8/int8). */
  readonly weightBytes: number;
  /** Every node is on one machine (`--local`): links, FLOP/s and bandwidth are shared, not summed. */
  readonly sharedMachine: boolean;
}

export type Constraint = 'links' | 'expert compute' | 'expert memory';

export interface PlannerResult {
  readonly numMoeLayers: number;
  /** Experts on each expert node (contiguous split; the first E mod N nodes hold one more). */
  readonly expertsPerNode: readonly number[];
  readonly expectedNodesHit: number;
  readonly maxNodesHit: number;
  readonly dispatchBytesPerTokenPerLayer: number;
  readonly combineBytesPerTokenPerLayer: number;
  /** Per token over all MoE layers, each direction. */
  readonly wireBytesPerTokenEachWay: number;
  readonly linkBytesPerS: number;
  readonly linkBoundTokensPerS: number;
  readonly expertParamsPerToken: number;
  readonly expertFlopsPerToken: number;
  readonly expertFlopsPerS: number;
  readonly computeBoundTokensPerS: number;
  readonly expertSizeBytes: number;
  readonly distinctExpertsPerLayerPerStep: number;
  readonly expertBytesPerStep: number;
  readonly expertMemBytesPerS: number;
  readonly memoryBoundTokensPerS: number;
  readonly boundTokensPerS: number;
  readonly binding: Constraint;
}

export class PlannerInputError extends Error {
  override readonly name = 'PlannerInputError';
  readonly code = 'bad_planner_input' as const;
}

/** C(total − held, k) ÷ C(total, k): the chance that k distinct picks of `total` miss `held` given ones. */
export function probabilityMissed(total: number, held: number, k: number): number {
  let p = 1;
  for (let i = 0; i < k; i++) p *= Math.max(0, total - held - i) / (total - i);
  return p;
}

export function expertsPerNode(numExperts: number, numNodes: number): number[] {
  return Array.from(
    { length: numNodes },
    (_, n) => Math.floor(numExperts / numNodes) + (n < numExperts % numNodes ? 1 : 0),
  );
}

/** Σ over nodes of P(node hit) for a token's k distinct experts chosen uniformly. */
export function expectedNodesHit(numExperts: number, k: number, perNode: readonly number[]): number {
  return perNode.reduce((sum, held) => sum + 1 - probabilityMissed(numExperts, held, k), 0);
}

/** E × (1 − (1 − k/E)^B): experts a step of B tokens hits at one layer, in expectation. */
export function distinctExpertsHit(numExperts: number, k: number, batchTokens: number): number {
  return numExperts * (1 - Math.pow(1 - k / numExperts, batchTokens));
}

function check(input: PlannerInput): void {
  const positive: [string, number][] = [
    ['--attention-nodes', input.attentionNodes],
    ['--expert-nodes', input.expertNodes],
    ['--link-gbps', input.linkGbps],
    ['--device-tflops', input.deviceTflops],
    ['--device-mem-gbps', input.deviceMemGBps],
    ['--batch-tokens', input.batchTokens],
    ['--dtype-bytes', input.dtypeBytes],
    ['--weight-bytes', input.weightBytes],
  ];
  for (const [flag, value] of positive)
    if (!(value > 0 && Number.isFinite(value)))
      throw new PlannerInputError(`${flag} must be a positive number, got ${value}`);
  if (input.shape.numLayers - input.shape.numDenseLayers < 1)
    throw new PlannerInputError(`${input.shape.name} has no MoE layers`);
}

export function planCapacity(input: PlannerInput): PlannerResult {
  check(input);
  const s = input.shape;
  const L = s.numLayers - s.numDenseLayers;
  const E = s.numExperts;
  const k = s.numExpertsPerToken;
  const perNode = expertsPerNode(E, input.expertNodes);
  const nodesHit = expectedNodesHit(E, k, perNode);
  const dispatch = s.hiddenSize * input.dtypeBytes * nodesHit;
  const wire = L * dispatch;
  const linkBytesPerS = (input.linkGbps * 1e9) / 8;
  const links = input.sharedMachine ? 1 : Math.min(input.attentionNodes, input.expertNodes);
  const devices = input.sharedMachine ? 1 : input.expertNodes;
  const expertParams = 3 * s.hiddenSize * s.expertFfnSize;
  const expertParamsPerToken = L * k * expertParams;
  const flopsPerToken = 2 * expertParamsPerToken;
  const flopsPerS = devices * input.deviceTflops * 1e12;
  const expertSizeBytes = expertParams * input.weightBytes;
  const distinct = distinctExpertsHit(E, k, input.batchTokens);
  const bytesPerStep = L * distinct * expertSizeBytes;
  const memBytesPerS = devices * input.deviceMemGBps * 1e9;
  const bounds: [Constraint, number][] = [
    ['links', (links * linkBytesPerS) / wire],
    ['expert compute', flopsPerS / flopsPerToken],
    ['expert memory', input.batchTokens / (bytesPerStep / memBytesPerS)],
  ];
  const [binding, bound] = bounds.reduce((a, b) => (b[1] < a[1] ? b : a));
  return {
    numMoeLayers: L,
    expertsPerNode: perNode,
    expectedNodesHit: nodesHit,
    maxNodesHit: Math.min(k, perNode.filter((n) => n > 0).length),
    dispatchBytesPerTokenPerLayer: dispatch,
    combineBytesPerTokenPerLayer: dispatch,
    wireBytesPerTokenEachWay: wire,
    linkBytesPerS,
    linkBoundTokensPerS: bounds[0]?.[1] ?? 0,
    expertParamsPerToken,
    expertFlopsPerToken: flopsPerToken,
    expertFlopsPerS: flopsPerS,
    computeBoundTokensPerS: bounds[1]?.[1] ?? 0,
    expertSizeBytes,
    distinctExpertsPerLayerPerStep: distinct,
    expertBytesPerStep: bytesPerStep,
    expertMemBytesPerS: memBytesPerS,
    memoryBoundTokensPerS: bounds[2]?.[1] ?? 0,
    boundTokensPerS: bound,
    binding,
  };
}
