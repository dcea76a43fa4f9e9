/**
 * Building expert graphs off the serving thread. Loading an expert is reading its tensors, building its
 * ONNX graph (copies, a transpose, int8 quantisation, protobuf encoding: JavaScript) and opening a
 * session from it (native, synchronous). A worker answers Run calls on its one JavaScript thread, so
 * while it builds it answers none, and every step of every gateway waits for it. This thread reads and
 * builds; the serving thread only opens the session. Measured on the development VM, one `skewed-heavy`
 * expert (FFN 4096): build 18–31 ms, open 4–10 ms — the serving thread's share of a load falls by ≈ 75%.
 * Jobs run one at a time, in order; the graph comes back as a transferred buffer (no copy).
 */
import { JobThread } from '@switchyard/launcher';
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
  readonly #thread: JobThread<Reply>;

  constructor(spec: GraphThreadSpec) {
    this.#thread = new JobThread(new URL('./graph-worker.ts', import.meta.url), {
      name: 'the graph builder thread',
      workerData: spec,
    });
  }

  async build(layer: number, expertId: number): Promise<Uint8Array> {
    const reply = await this.#thread.request({ layer, expertId });
    if ('error' in reply) throw new Error(reply.error);
    return reply.bytes;
  }

  close(): Promise<void> {
    return this.#thread.close();
  }
}
