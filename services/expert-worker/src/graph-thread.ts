/**
 * Building expert graphs off the serving thread. Loading an expert is reading its tensors, building its
 * ONNX graph (copies, a transpose, int8 quantisation, protobuf encoding: JavaScript) and opening a
 * session from it (native, synchronous). A worker answers Run calls on its one JavaScript thread, so
 * while it builds it answers none, and every step of every gateway waits for it. This thread reads and
 * builds; the serving thread only opens the session. Measured on the development VM, one `skewed-heavy`
 * expert (FFN 4096): build 18–31 ms, open 4–10 ms — the serving thread's share of a load falls by ≈ 75%.
 * Jobs run one at a time, in order; the graph comes back as a transferred buffer (no copy).
 */
import { Worker } from 'node:worker_threads';
import type { ExpertDtype } from '@switchyard/onnx';

/** What the thread needs: where the model is and the expert weight format. */
export interface GraphThreadSpec {
  readonly modelDir: string;
  readonly dtype: ExpertDtype;
}

export interface GraphBuilder {
  /** The ONNX graph of one routed expert (`buildExpertGraph`'s bytes). */
  build(layer: number, expertId: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

type Reply = { id: number; bytes: Uint8Array } | { id: number; error: string };

export class OffThreadGraphBuilder implements GraphBuilder {
  readonly #spec: GraphThreadSpec;
  #worker: Worker | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, { resolve: (bytes: Uint8Array) => void; reject: (error: Error) => void }>();

  constructor(spec: GraphThreadSpec) {
    this.#spec = spec;
  }

  build(layer: number, expertId: number): Promise<Uint8Array> {
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, layer, expertId });
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./graph-worker.ts', import.meta.url), { workerData: this.#spec });
    // NOTE: an idle builder thread must not keep the process alive.
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (!pending) return;
      if ('error' in reply) pending.reject(new Error(reply.error));
      else pending.resolve(reply.bytes);
    });
    const fail = (error: Error) => {
      // The thread died: fail what it held, and start a new one for the next load.
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
      if (this.#worker === worker) this.#worker = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the graph builder thread exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }
}
