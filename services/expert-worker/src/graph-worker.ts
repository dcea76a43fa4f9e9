/**
 * The graph builder thread (`OffThreadGraphBuilder`): opens the model directory once, then reads each
 * expert it is asked for and hands its ONNX graph back as a transferred buffer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { buildExpertGraph, weightFormatOf } from '@switchyard/onnx';
import { modelDirExpertSource } from './expert-source.ts';
import type { GraphThreadSpec } from './graph-thread.ts';

const spec = workerData as GraphThreadSpec;
const source = await modelDirExpertSource(spec.modelDir);

// One job at a time, in arrival order.
let queue: Promise<void> = Promise.resolve();
parentPort?.on('message', (job: { id: number; layer: number; expertId: number }) => {
  queue = queue.then(async () => {
    try {
      const weights = await source.readExpert(job.layer, job.expertId);
      const graph = buildExpertGraph(source.config, weights, job.layer, job.expertId, {
        format: weightFormatOf(spec.dtype),
      });
      // A view of a larger buffer would transfer (and detach) all of it: hand back exactly the bytes.
      // (A Node Buffer from the shared pool is such a view, and `Buffer#slice` would not copy.)
      const whole = graph.byteOffset === 0 && graph.byteLength === graph.buffer.byteLength;
      const bytes = whole && !(graph.buffer instanceof SharedArrayBuffer) ? graph : new Uint8Array(graph);
      parentPort?.postMessage({ id: job.id, bytes }, [bytes.buffer as ArrayBuffer]);
    } catch (error) {
      parentPort?.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
    }
  });
});
