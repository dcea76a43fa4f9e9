/**
 * The one place in the repository that imports onnxruntime-node. Everything else sees `OnnxSession`:
 * plain typed arrays in, Float32Arrays out.
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface SessionOptions {
  /**
   * Threads of the intra-op pool (the caller's thread included). Default: every core the process may use
   * (`os.availableParallelism()`). NOTE: `run()` is a synchronous native call on the JavaScript thread, so
   * concurrent runs never spread over the cores: intra-op threads are the only parallelism a step gets.
   * onnxruntime's own default ran one thread on the 2-vCPU development VM (measured on a quiet machine: a
   * [1×2048]·[2048×32000] fp32 MatMul took 11.0 ms with the default, 11.2 ms with 1 thread, 5.5 ms with 2;
   * an earlier reading that the default used both cores was taken under heavy contention).
   */
  readonly intraOpThreads?: number;
  /** `cuda` is passed straight through; without a GPU build, session creation fails. */
  readonly executionProvider?: ExecutionProvider;
  /**
   * Run `int8-qdq` graphs exactly (fp32 activations × dequantised weights) instead of letting
   * onnxruntime's MatMulNBits fusion quantise activations to int8. Exact is ≈ 30× slower: tests only.
   */
  readonly exactQdqInt8?: boolean;
  /** 0 verbose … 4 fatal; default 3 (errors only). */
  readonly logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Let the thread pools spin while they wait for work (default false). Only for a process with one
   * busy session: with many, spinning pools fight for the cores (`npm run bench:spinning` measures it).
   */
  readonly spinning?: boolean;
  /**
   * onnxruntime's memory pattern (default false): a recorded allocation plan per distinct input shape,
   * kept for the session's life. A serving engine sees a new shape almost every step (rows = the step's
   * tokens), so with it on the process grew ≈ 8 MB a minute under `bench:kv --parts memory`, with the JS
   * heap and array buffers flat. Off, tensors come from the CPU arena, which is kept.
   */
  readonly memPattern?: boolean;
}

export type FeedData = Float32Array | BigInt64Array | Int32Array | Uint8Array;

/**
 * A tensor handed to onnxruntime. `data` may be a subarray view of a larger buffer: onnxruntime-node
 * reads it in place (measured: a 400 MB view costs the same 0.2 ms per run as a 16-byte one).
 */
export interface TensorFeed {
  readonly data: FeedData;
  readonly dims: readonly number[];
}

export interface TensorResult {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export interface RunOptions {
  /**
   * Preallocated outputs (subarray views are fine), written in place by onnxruntime; dims must match
   * what the graph produces. Outputs not named here are allocated by onnxruntime.
   */
  readonly outputs?: Readonly<Record<string, { readonly data: Float32Array; readonly dims: readonly number[] }>>;
}

export interface OnnxSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the graph; the result holds every graph output (float32 outputs only). */
  run(feeds: Readonly<Record<string, TensorFeed>>, options?: RunOptions): Promise<Record<string, TensorResult>>;
  release(): Promise<void>;
}

export class SessionError extends Error {
  override readonly name = 'SessionError';
  readonly code: 'SESSION_CREATE' | 'SESSION_RUN' | 'UNEXPECTED_OUTPUT_TYPE';
  constructor(code: SessionError['code'], message: string, options?: { cause: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * onnxruntime session options, resolved once. NOTE: spinning is turned off for both thread pools unless
 * asked for: with many sessions in one process, spinning pools fight for the cores (docs/architecture.md
 * §4: ≈ 15 ms instead of ≈ 0.7 ms per call). The node binding flattens `extra` into
 * `session.intra_op.allow_spinning` etc.
 */
export function resolveSessionOptions(options: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [options.executionProvider ?? 'cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    enableMemPattern: options.memPattern === true,
    logSeverityLevel: options.logSeverityLevel ?? 3,
    intraOpNumThreads: options.intraOpThreads ?? availableParallelism(),
    interOpNumThreads: 1,
    extra: {
      session: {
        intra_op: { allow_spinning: options.spinning === true ? '1' : '0' },
        inter_op: { allow_spinning: options.spinning === true ? '1' : '0' },
        ...(options.exactQdqInt8 === true ? { qdq_matmulnbits_accuracy_level: '0' } : {}),
      },
    },
  };
}

function toOrtTensor(feed: TensorFeed): ort.Tensor {
  if (feed.data instanceof Float32Array) return new ort.Tensor('float32', feed.data, feed.dims);
  if (feed.data instanceof BigInt64Array) return new ort.Tensor('int64', feed.data, feed.dims);
  if (feed.data instanceof Uint8Array) return new ort.Tensor('uint8', feed.data, feed.dims);
  return new ort.Tensor('int32', feed.data, feed.dims);
}

class OrtSession implements OnnxSession {
  readonly #session: ort.InferenceSession;

  constructor(session: ort.InferenceSession) {
    this.#session = session;
  }

  get inputNames(): readonly string[] {
    return this.#session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.#session.outputNames;
  }

  async run(
    feeds: Readonly<Record<string, TensorFeed>>,
    options: RunOptions = {},
  ): Promise<Record<string, TensorResult>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) ortFeeds[name] = toOrtTensor(feed);
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const name of this.#session.outputNames) {
      const pre = options.outputs?.[name];
      fetches[name] = pre === undefined ? null : new ort.Tensor('float32', pre.data, pre.dims);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.#session.run(ortFeeds, fetches);
    } catch (cause) {
      throw new SessionError('SESSION_RUN', `onnxruntime run failed: ${String(cause)}`, { cause });
    }
    const out: Record<string, TensorResult> = {};
    for (const [name, value] of Object.entries(results)) {
      if (!(value instanceof ort.Tensor) || value.type !== 'float32' || !(value.data instanceof Float32Array)) {
        throw new SessionError('UNEXPECTED_OUTPUT_TYPE', `output ${name} is not a float32 CPU tensor`);
      }
      // NOTE: onnxruntime writes a preallocated output in place but hands back a different array;
      // returning the caller's own view keeps `result.data === options.outputs[name].data`.
      out[name] = options.outputs?.[name] ?? { data: value.data, dims: value.dims };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.#session.release();
  }
}

/** Creates a session from in-memory ModelProto bytes. */
export async function createSession(modelBytes: Uint8Array, options: SessionOptions = {}): Promise<OnnxSession> {
  try {
    return new OrtSession(await ort.InferenceSession.create(modelBytes, resolveSessionOptions(options)));
  } catch (cause) {
    throw new SessionError('SESSION_CREATE', `onnxruntime session creation failed: ${String(cause)}`, { cause });
  }
}
