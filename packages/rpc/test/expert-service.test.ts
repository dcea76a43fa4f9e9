import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CancelledError,
  DeadlineExceededError,
  EXPERT_SERVICE_NAME,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  UnavailableError,
  checkHealth,
  connectExpertClient,
} from '../src/index.ts';
import type { ExpertServer, ExpertStreamClient, RunRequest } from '../src/index.ts';
import { switchyardProtos } from '../src/protos.ts';
import type { WireRunResponse } from '../src/wire-types.ts';
import {
  DESCRIPTION,
  bitsOf,
  echoHandler,
  fakeHandler,
  makeRequest,
  scaleByLayer,
  sleep,
  startExpertServer,
} from './helpers.ts';

const opened: { close(): unknown }[] = [];
const servers: ExpertServer[] = [];

async function serve(handler = echoHandler(), port = 0): Promise<ExpertServer> {
  const server = await startExpertServer(handler, port);
  servers.push(server);
  return server;
}

/** Serves on `port`, retrying for a moment while the kernel still holds it (EADDRINUSE). */
async function serveWhenFree(port: number): Promise<ExpertServer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await serve(echoHandler(), port);
    } catch (error) {
      if (attempt >= 40 || !String(error).includes('EADDRINUSE')) throw error;
      await sleep(50);
    }
  }
}

async function connect(server: ExpertServer | number, deadlineMs = 5_000): Promise<ExpertStreamClient> {
  const port = typeof server === 'number' ? server : server.port;
  const client = await connectExpertClient(`127.0.0.1:${port}`, { deadlineMs });
  opened.push(client);
  return client;
}

afterEach(async () => {
  for (const client of opened.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((server) => server.close(100)));
});

describe('ExpertService Run stream', () => {
  it("returns the handler's output tensor bit-exactly", async () => {
    const special = new Float32Array([0, -0, 1e-45, -3.4028234663852886e38, Infinity, -Infinity, NaN, 0.1]);
    const handler = fakeHandler(async (request) => {
      const output = scaleByLayer(request);
      output.set(special);
      return { output };
    });
    const client = await connect(await serve(handler));
    const request = makeRequest(4, 8, 2);
    const expected = scaleByLayer(request);
    expected.set(special);

    const reply = await client.run(request);

    expect(reply.output.length).toBe(32);
    expect([...bitsOf(reply.output)]).toEqual([...bitsOf(expected)]);
    expect(reply.computeTimeUs).toBeGreaterThanOrEqual(0);
  });

  it('views received floats in place on both ends instead of copying them', async () => {
    const viewedInPlace: boolean[] = [];
    const handler = fakeHandler(async (request) => {
      viewedInPlace.push(request.hidden.buffer.byteLength > request.hidden.byteLength);
      return { output: scaleByLayer(request) };
    });
    const client = await connect(await serve(handler));
    for (const numTokens of [1, 3, 64]) {
      const reply = await client.run(makeRequest(numTokens, 256, numTokens));
      // A copy would own exactly its bytes; a view shares the received gRPC frame.
      expect(reply.output.buffer.byteLength).toBeGreaterThan(reply.output.byteLength);
    }
    expect(viewedInPlace).toEqual([true, true, true]);
  });

  it('matches many concurrent requests on one stream by correlation id when answered out of order', async () => {
    const streams = new Set<AbortSignal>();
    const handler = fakeHandler(async (request, { signal }) => {
      streams.add(signal);
      await sleep(40 - request.layer, signal); // later requests answer first
      return { output: scaleByLayer(request) };
    });
    const client = await connect(await serve(handler));
    const requests = Array.from({ length: 32 }, (_, layer) => makeRequest(3, 4, layer, layer + 1));

    const replies = await Promise.all(requests.map((request) => client.run(request)));

    replies.forEach((reply, i) => {
      const request = requests[i] as RunRequest;
      expect([...reply.output]).toEqual([...scaleByLayer(request)]);
    });
    expect(streams.size).toBe(1);
  });

  it("answers a handler's InvalidArgumentError on that message and serves the next one on the same stream", async () => {
    const streams = new Set<AbortSignal>();
    const handler = fakeHandler(async (request, { signal }) => {
      streams.add(signal);
      if (request.layer === 7) throw new InvalidArgumentError('layer 7 is not hosted here');
      return { output: request.hidden };
    });
    const client = await connect(await serve(handler));

    await expect(client.run(makeRequest(2, 4, 7))).rejects.toMatchObject({
      name: 'InvalidArgumentError',
      code: 'INVALID_ARGUMENT',
      message: 'layer 7 is not hosted here',
    });
    const next = makeRequest(2, 4, 1);
    await expect(client.run(next)).resolves.toMatchObject({ output: next.hidden });
    expect(streams.size).toBe(1);
  });

  it('answers an unexpected handler failure with a generic INTERNAL and keeps the stream', async () => {
    const handler = fakeHandler(async (request) => {
      if (request.layer === 1) throw new Error('ENOENT /models/secret.onnx');
      return { output: request.hidden };
    });
    const client = await connect(await serve(handler));

    const failure = client.run(makeRequest(1, 4, 1));
    await expect(failure).rejects.toBeInstanceOf(InternalError);
    await expect(failure).rejects.not.toThrow(/secret/);
    await expect(client.run(makeRequest(1, 4, 0))).resolves.toBeDefined();
  });

  it('rejects a malformed tensor with INVALID_ARGUMENT before it reaches the handler', async () => {
    let numCalls = 0;
    const server = await serve(
      fakeHandler(async (request) => {
        numCalls++;
        return { output: request.hidden };
      }),
    );
    const { run } = switchyardProtos().expert;
    const raw = new Client(`127.0.0.1:${server.port}`, credentials.createInsecure());
    opened.push(raw);
    const stream = raw.makeBidiStreamRequest(run.path, run.requestSerialize, run.responseDeserialize, new Metadata());
    const responses: WireRunResponse[] = [];
    stream.on('data', (response: WireRunResponse) => responses.push(response));
    const routes = {
      offsets: Buffer.from(new Int32Array([0, 1, 2]).buffer),
      expertIds: Buffer.from(new Int32Array([0, 1]).buffer),
      weights: Buffer.from(new Float32Array([1, 1]).buffer),
    };
    const base = { layer: 0, outputDtype: 'DTYPE_F32' as const, traceparent: '', routes };

    stream.write({ ...base, correlationId: 1, hidden: { dtype: 'DTYPE_F32', shape: [2, 4], data: Buffer.alloc(30) } });
    stream.write({ ...base, correlationId: 2, hidden: { dtype: 'DTYPE_F32', shape: [2, 4], data: Buffer.alloc(32) } });
    stream.end();
    await once(stream, 'end');

    expect(responses.map((response) => response.correlationId).sort()).toEqual([1, 2]);
    const bad = responses.find((response) => response.correlationId === 1);
    expect(bad?.error).toMatchObject({ code: 3 });
    expect(bad?.error?.message).toMatch(/needs 32 bytes, got 30/);
    expect(responses.find((response) => response.correlationId === 2)?.result).toBe('output');
    expect(numCalls).toBe(1);
  });

  it('refuses an inconsistent request locally with InvalidArgumentError', async () => {
    const client = await connect(await serve());
    const request = makeRequest(2, 4);
    await expect(client.run({ ...request, hidden: new Float32Array(7) })).rejects.toBeInstanceOf(InvalidArgumentError);
    const routes = { ...request.routes, offsets: new Int32Array([0, 3, 2]) };
    await expect(client.run({ ...request, routes })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('rejects a request past its deadline with DeadlineExceededError without hanging, and the stream keeps serving', async () => {
    const handler = fakeHandler(async (request, { signal }) => {
      if (request.layer === 9) await sleep(2_000, signal);
      return { output: request.hidden };
    });
    const client = await connect(await serve(handler));
    const startedAt = Date.now();

    await expect(client.run(makeRequest(1, 4, 9), { deadlineMs: 50 })).rejects.toBeInstanceOf(DeadlineExceededError);

    expect(Date.now() - startedAt).toBeLessThan(1_000);
    expect(client.numInFlight).toBe(0);
    await expect(client.run(makeRequest(1, 4, 0))).resolves.toBeDefined();
  });

  it('rejects with CancelledError when the caller aborts', async () => {
    const handler = fakeHandler(async (request, { signal }) => {
      await sleep(2_000, signal);
      return { output: request.hidden };
    });
    const client = await connect(await serve(handler));
    const abort = new AbortController();
    const reply = client.run(makeRequest(1, 4), { signal: abort.signal });
    abort.abort();
    await expect(reply).rejects.toBeInstanceOf(CancelledError);
    await expect(client.run(makeRequest(1, 4), { signal: abort.signal })).rejects.toBeInstanceOf(CancelledError);
  });

  it('refuses a request beyond maxInFlight with ResourceExhaustedError', async () => {
    const handler = fakeHandler(async (request) => {
      await sleep(50);
      return { output: request.hidden };
    });
    const server = await serve(handler);
    const client = await connectExpertClient(`127.0.0.1:${server.port}`, { deadlineMs: 5_000, maxInFlight: 2 });
    opened.push(client);
    const first = [client.run(makeRequest(1, 4)), client.run(makeRequest(1, 4))];
    await expect(client.run(makeRequest(1, 4))).rejects.toBeInstanceOf(ResourceExhaustedError);
    await Promise.all(first);
  });

  it('carries bf16 on the wire within bf16 precision when asked', async () => {
    const client = await connect(await serve());
    const request = makeRequest(4, 16);
    const reply = await client.run(request, { wireFormat: 'bf16' });
    for (let i = 0; i < request.hidden.length; i++) {
      const value = request.hidden[i] ?? 0;
      expect(Math.abs((reply.output[i] ?? 0) - value)).toBeLessThanOrEqual(Math.abs(value) * 2 ** -7 + 1e-30);
    }
    expect([...reply.output]).not.toEqual([...request.hidden]);
  });

  it('moves a 64 MiB tensor each way (raised message limits)', async () => {
    const client = await connect(await serve(), 30_000);
    const numTokens = 8192;
    const hiddenSize = 2048;
    const request = makeRequest(numTokens, hiddenSize);
    expect(request.hidden.byteLength).toBe(64 * 1024 * 1024);

    const reply = await client.run(request);

    expect(reply.output.length).toBe(request.hidden.length);
    expect(reply.output[12345]).toBe(request.hidden[12345]);
    expect(reply.output[request.hidden.length - 1]).toBe(request.hidden[request.hidden.length - 1]);
  });

  it('rejects pending requests with UnavailableError when the server process dies, and reconnects on the next call', async () => {
    const script = fileURLToPath(new URL('./fixtures/hanging-expert-server.ts', import.meta.url));
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const port = Number.parseInt(line.toString(), 10);
      const client = await connect(port);
      const pending = [client.run(makeRequest(1, 4)), client.run(makeRequest(2, 4))];
      await sleep(100);

      child.kill('SIGKILL');

      for (const reply of pending) await expect(reply).rejects.toBeInstanceOf(UnavailableError);
      expect(client.numInFlight).toBe(0);
      // The dead server's port is free once its process has exited (it may lag the broken connection).
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
      await serveWhenFree(port);
      await expect(client.run(makeRequest(1, 4))).resolves.toBeDefined();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('answers what is in flight on graceful close, then fails over with UnavailableError', async () => {
    const handler = fakeHandler(async (request) => {
      await sleep(100);
      return { output: request.hidden };
    });
    const server = await startExpertServer(handler);
    const client = await connect(server);
    const inFlight = client.run(makeRequest(1, 4));
    await sleep(20);

    const closing = server.close(2_000);

    await expect(inFlight).resolves.toBeDefined();
    await closing;
    await expect(client.run(makeRequest(1, 4), { deadlineMs: 1_000 })).rejects.toBeInstanceOf(UnavailableError);
  });
});

describe('ExpertService unary calls', () => {
  it('describes the worker and applies placement changes', async () => {
    const client = await connect(await serve());
    await expect(client.describe()).resolves.toEqual(DESCRIPTION);
    const change = { experts: [{ layer: 1, expertId: 5 }], placementRevision: 9 };
    await expect(client.load(change)).resolves.toEqual({ hosted: change.experts, placementRevision: 9 });
    await expect(client.unload(change)).resolves.toEqual({ hosted: change.experts, placementRevision: 9 });
  });

  it("maps a handler's typed errors to their status and hides untyped ones", async () => {
    const handler = {
      ...echoHandler(),
      load: async () => {
        throw new NotFoundError('expert 99 has no weights');
      },
      describe: async () => {
        throw new Error('password=hunter2');
      },
    };
    const client = await connect(await serve(handler));
    await expect(client.load({ experts: [], placementRevision: 1 })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: 'expert 99 has no weights',
    });
    const failure = client.describe();
    await expect(failure).rejects.toBeInstanceOf(InternalError);
    await expect(failure).rejects.not.toThrow(/hunter2/);
  });

  it("hands the caller's trace context to the handler", async () => {
    const seen: (string | undefined)[] = [];
    const handler = {
      ...echoHandler(),
      describe: async ({ traceparent }: { traceparent?: string }) => {
        seen.push(traceparent);
        return DESCRIPTION;
      },
    };
    const client = await connect(await serve(handler));
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await client.describe({ traceparent });
    await client.describe();
    expect(seen).toEqual([traceparent, undefined]);
  });

  it('fails a unary call past its deadline with DeadlineExceededError', async () => {
    const handler = {
      ...echoHandler(),
      describe: async ({ signal }: { signal: AbortSignal }) => {
        await sleep(2_000, signal);
        return DESCRIPTION;
      },
    };
    const client = await connect(await serve(handler));
    await expect(client.describe({ deadlineMs: 50 })).rejects.toBeInstanceOf(DeadlineExceededError);
  });

  it('fails to connect with UnavailableError when nobody listens', async () => {
    const server = await serve();
    const { port } = server;
    await server.close(0);
    await expect(connectExpertClient(`127.0.0.1:${port}`, { deadlineMs: 300 })).rejects.toBeInstanceOf(
      UnavailableError,
    );
  });
});

describe('health', () => {
  it('reports SERVING, then NOT_SERVING for the server and each service', async () => {
    const server = await serve();
    const address = `127.0.0.1:${server.port}`;
    await expect(checkHealth(address, '', 1_000)).resolves.toBe('SERVING');
    await expect(checkHealth(address, EXPERT_SERVICE_NAME, 1_000)).resolves.toBe('SERVING');
    await expect(checkHealth(address, 'no.such.Service', 1_000)).resolves.toBe('SERVICE_UNKNOWN');

    server.setServingStatus('NOT_SERVING', EXPERT_SERVICE_NAME);
    await expect(checkHealth(address, EXPERT_SERVICE_NAME, 1_000)).resolves.toBe('NOT_SERVING');
    await expect(checkHealth(address, '', 1_000)).resolves.toBe('SERVING');

    server.setServingStatus('NOT_SERVING');
    const client = await connect(server);
    await expect(client.checkHealth()).resolves.toBe('NOT_SERVING');
  });

  it('fails a check with UnavailableError when nobody listens', async () => {
    const server = await serve();
    const { port } = server;
    await server.close(0);
    await expect(checkHealth(`127.0.0.1:${port}`, '', 500)).rejects.toBeInstanceOf(UnavailableError);
  });
});
