/**
 * `npm run bench:placement`: how evenly each placement spreads the `skewed` preset's expert load over the
 * workers, as one JSON document. Loads are counted from the monolithic engine's own routing decisions:
 * a profile run (the loads the load-aware placement is given) and a held-out run with other prompts (the
 * loads every placement is judged on). Per placement: each layer's balancedness (mean ÷ max worker
 * load, replicas sharing their expert's pairs evenly as the remote executor does), the minimum and
 * mean over layers, and the replicas it uses.
 *
 *   npm run bench:placement -- --workers 4 --redundant 0,4,8 --nodes 2
 */
import { parseArgs } from 'node:util';
import { getPreset, randomWeights } from '@switchyard/model';
import { EngineLoop, resolveSamplingParams } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import {
  balancedness,
  computeLoadAwarePlacement,
  computePlacement,
  workerLoads,
  type Placement,
} from '@switchyard/routing';
import { benchArgs } from './args.ts';

const USAGE =
  'usage: npm run bench:placement -- [--workers 4] [--redundant 0,4,8] [--nodes 2] [--prompts 16] [--tokens 16]\n';
const values = benchArgs('bench:placement', USAGE, () =>
  parseArgs({
    options: {
      workers: { type: 'string', default: '4' },
      redundant: { type: 'string', default: '0,4,8' },
      nodes: { type: 'string', default: '2' },
      prompts: { type: 'string', default: '16' },
      tokens: { type: 'string', default: '16' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const log = (msg: string) => process.stderr.write(`[bench:placement] ${msg}\n`);
const numWorkers = Number(values.workers);
const redundant = values.redundant.split(',').map(Number);
const numNodes = Number(values.nodes);
const numPrompts = Number(values.prompts);
const numTokens = Number(values.tokens);
const config = getPreset('skewed');

/** Pairs per layer and expert over `numPrompts` greedy requests whose prompts depend on `salt`. */
async function countLoads(salt: number): Promise<number[][]> {
  const counts = Array.from({ length: config.numLayers }, () => new Array<number>(config.numExperts).fill(0));
  const bundle = await createEngine(
    { config, weights: randomWeights(config, 7), weightsDigest: 'ab'.repeat(32) },
    {
      expertDtype: 'fp32',
      denseDtype: 'fp32',
      blockSize: 16,
      scheduler: { maxBatchedTokens: 2048, maxRunningSequences: 64 },
      onRouted: (layer, _chunks, routes) => {
        const row = counts[layer];
        if (row) for (const e of routes.expertIds) row[e] = (row[e] ?? 0) + 1;
      },
    },
  );
  const loop = new EngineLoop(bundle.engine);
  try {
    const params = resolveSamplingParams({ maxTokens: numTokens, temperature: 0, stopAtEos: false });
    await Promise.all(
      Array.from({ length: numPrompts }, (_, i) =>
        loop.generate({
          id: `p${salt}-${i}`,
          promptIds: Array.from({ length: 32 + ((i * 7) % 33) }, (_, j) => (salt * 101 + i * 37 + j * 11) % 256),
          params,
        }),
      ),
    );
  } finally {
    await loop.stop();
    await bundle.close();
  }
  return counts;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

function judge(name: string, placement: Placement, loads: number[][]) {
  const perLayer = workerLoads(placement, loads).map(balancedness);
  const numReplicas = placement.replicas[0]?.reduce((n, ws) => n + ws.length, 0) ?? 0;
  return {
    placement: name,
    replicas_per_layer: numReplicas,
    balancedness_per_layer: perLayer.map(round),
    balancedness_min: round(Math.min(...perLayer)),
    balancedness_mean: round(perLayer.reduce((a, b) => a + b, 0) / perLayer.length),
  };
}

log(`counting loads of ${numPrompts} × ${numTokens} tokens on skewed (profile, then held-out prompts)`);
const profile = await countLoads(1);
const heldOut = await countLoads(2);
const workers = Array.from({ length: numWorkers }, (_, i) => `w${i}`);
const base = { workers, numLayers: config.numLayers, numExperts: config.numExperts, revision: 1 };
const results = [
  judge('contiguous', computePlacement({ ...base, strategy: 'contiguous', replication: 1 }), heldOut),
  judge('round-robin', computePlacement({ ...base, strategy: 'round-robin', replication: 1 }), heldOut),
  judge('round-robin, replication 2', computePlacement({ ...base, strategy: 'round-robin', replication: 2 }), heldOut),
  ...redundant.flatMap((n) => {
    const request = { workers, loads: profile, redundantExperts: n, revision: 1 };
    const hierarchical =
      numNodes > 1 && numWorkers % numNodes === 0 && n % numNodes === 0
        ? [
            judge(
              `eplb N=${n}, ${numNodes} nodes`,
              computeLoadAwarePlacement({ ...request, hierarchy: { numNodes } }),
              heldOut,
            ),
          ]
        : [];
    return [judge(`eplb N=${n}`, computeLoadAwarePlacement(request), heldOut), ...hierarchical];
  }),
];
const expertBalance = heldOut.map(balancedness);
const hotShare = heldOut.map((row) => Math.max(...row) / row.reduce((a, b) => a + b, 0));
process.stdout.write(
  `${JSON.stringify(
    {
      preset: 'skewed',
      workers: numWorkers,
      prompts: numPrompts,
      tokens: numTokens,
      pairs_per_layer: heldOut.map((row) => row.reduce((a, b) => a + b, 0)),
      hot_expert_share: hotShare.map(round),
      expert_balancedness: expertBalance.map(round),
      placements: results,
    },
    null,
    2,
  )}\n`,
);
