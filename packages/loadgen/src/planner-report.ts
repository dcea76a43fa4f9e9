/** The planner's result as text for a terminal, and as JSON. */

import type { PlannerInput, PlannerResult } from './planner.ts';

const si = (n: number, unit: string): string => {
  const steps: [number, string][] = [
    [1e15, 'P'],
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  const [scale, prefix] = steps.find(([s]) => Math.abs(n) >= s) ?? [1, ''];
  return `${(n / scale).toFixed(n / scale >= 100 ? 0 : n / scale >= 10 ? 1 : 2)} ${prefix}${unit}`;
};

/** Three significant digits, no trailing zeros. */
const g = (n: number): string => String(Number(n.toPrecision(3)));

export function plannerText(input: PlannerInput, r: PlannerResult): string {
  const s = input.shape;
  const where = input.sharedMachine
    ? 'this machine (every node shares it)'
    : `${input.attentionNodes} attention node(s), ${input.expertNodes} expert node(s)`;
  const rows: [string, string][] = [
    [
      'model',
      `${s.name}: ${s.numLayers} layers (${r.numMoeLayers} MoE), hidden ${s.hiddenSize}, ${s.numExperts} experts top-${s.numExpertsPerToken}, expert FFN ${s.expertFfnSize}`,
    ],
    ['layout', where],
    [
      'figures',
      `links ${g(input.linkGbps)} Gb/s, ${g(input.deviceTflops)} TFLOP/s and ${g(input.deviceMemGBps)} GB/s per device, ${input.batchTokens} tokens per step, activations ${input.dtypeBytes} B, expert weights ${input.weightBytes} B`,
    ],
    [
      'experts per node',
      r.expertsPerNode.length <= 8
        ? r.expertsPerNode.join(', ')
        : `${Math.min(...r.expertsPerNode)}–${Math.max(...r.expertsPerNode)}`,
    ],
    [
      'expert nodes hit per token',
      `${r.expectedNodesHit.toFixed(2)} expected (uniform routing), ${r.maxNodesHit} at most`,
    ],
    ['dispatch per token per layer', `${si(r.dispatchBytesPerTokenPerLayer, 'B')} (hidden × dtype bytes × nodes hit)`],
    ['combine per token per layer', `${si(r.combineBytesPerTokenPerLayer, 'B')} (one partial sum per node hit)`],
    ['wire per token, all MoE layers', `${si(r.wireBytesPerTokenEachWay, 'B')} each way`],
    ['bound: links', `${si(r.linkBoundTokensPerS, 'tok/s')}`],
    [
      'expert FLOPs per token',
      `${si(r.expertFlopsPerToken, 'FLOP')} (2 × ${si(r.expertParamsPerToken, '').trim()} routed expert parameters)`,
    ],
    ['bound: expert compute', `${si(r.computeBoundTokensPerS, 'tok/s')}`],
    [
      'distinct experts per layer per step',
      `${r.distinctExpertsPerLayerPerStep.toFixed(1)} of ${s.numExperts} (${si(r.expertSizeBytes, 'B')} each)`,
    ],
    ['expert bytes per step', si(r.expertBytesPerStep, 'B')],
    ['bound: expert memory', `${si(r.memoryBoundTokensPerS, 'tok/s')}`],
    ['=> at most', `${si(r.boundTokensPerS, 'tok/s')}, set by ${r.binding}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

export function plannerJson(input: PlannerInput, r: PlannerResult): Record<string, unknown> {
  const { shape, ...figures } = input;
  return { model: shape.name, ...figures, ...r };
}
