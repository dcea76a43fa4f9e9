/** What the bench asks an OpenAI-compatible server before loading it: the model id and its context. */

export class BenchSetupError extends Error {
  override readonly name = 'BenchSetupError';
  readonly code = 'bench_setup' as const;
}

export interface ServerModel {
  readonly id: string;
  /** `max_model_len` when the server reports it (vLLM and Switchyard do). */
  readonly maxModelLen: number | undefined;
}

/** GET /v1/models: the model named `wanted`, or the first one. */
export async function fetchServerModel(
  baseUrl: string,
  wanted: string | undefined,
  timeoutMs = 10_000,
): Promise<ServerModel> {
  let body: unknown;
  try {
    const response = await fetch(`${baseUrl}/v1/models`, { signal: AbortSignal.timeout(timeoutMs) });
    if (response.status !== 200) throw new BenchSetupError(`GET ${baseUrl}/v1/models answered HTTP ${response.status}`);
    body = await response.json();
  } catch (error) {
    if (error instanceof BenchSetupError) throw error;
    throw new BenchSetupError(
      `cannot reach ${baseUrl}/v1/models: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const models = (body as { data?: { id?: unknown; max_model_len?: unknown }[] }).data ?? [];
  const model = wanted === undefined ? models[0] : models.find((m) => m.id === wanted);
  if (model === undefined || typeof model.id !== 'string') {
    throw new BenchSetupError(
      wanted === undefined
        ? `${baseUrl} serves no model`
        : `${baseUrl} does not serve ${wanted} (it serves ${models.map((m) => String(m.id)).join(', ')})`,
    );
  }
  return { id: model.id, maxModelLen: typeof model.max_model_len === 'number' ? model.max_model_len : undefined };
}
