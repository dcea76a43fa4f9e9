import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in OpenAI-compatible server for load-generator tests: `/v1/completions` streams `max_tokens`
 * chunks, the first after `firstTokenMs`, then one every `tokenIntervalMs`, then a usage chunk and
 * `[DONE]`. It counts requests in flight, so tests can check client-side concurrency limits.
 */
export interface FakeServer {
  readonly url: string;
  /** Most requests in flight at once so far. */
  readonly peakInFlight: () => number;
  readonly numRequests: () => number;
  close(): Promise<void>;
}

export interface FakeServerOptions {
  readonly firstTokenMs: number;
  readonly tokenIntervalMs: number;
  readonly maxModelLen?: number;
  /** The body of GET /metrics; 404 when undefined. */
  readonly metrics?: () => string;
  /** Answers a prompt starting with this id with HTTP 400. */
  readonly rejectPromptStartingWith?: number;
}

async function bodyOf(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startFakeServer(options: FakeServerOptions): Promise<FakeServer> {
  let inFlight = 0;
  let peak = 0;
  let requests = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          object: 'list',
          data: [{ id: 'fake', object: 'model', max_model_len: options.maxModelLen ?? 4096 }],
        }),
      );
      return;
    }
    if (req.method === 'GET' && req.url === '/metrics' && options.metrics) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(options.metrics());
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/completions') {
      res.writeHead(404).end();
      return;
    }
    const body = await bodyOf(req);
    const prompt = body['prompt'] as number[];
    if (prompt[0] === options.rejectPromptStartingWith) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'bad prompt', type: 'invalid_request_error' } }));
      return;
    }
    requests++;
    inFlight++;
    peak = Math.max(peak, inFlight);
    let closed = false;
    res.on('close', () => (closed = true));
    try {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const n = Number(body['max_tokens']);
      await sleep(options.firstTokenMs);
      for (let i = 0; i < n && !closed; i++) {
        if (i > 0) await sleep(options.tokenIntervalMs);
        res.write(
          `data: ${JSON.stringify({ id: 'cmpl-1', object: 'text_completion', choices: [{ index: 0, text: 'x', finish_reason: i === n - 1 ? 'length' : null }] })}\n\n`,
        );
      }
      res.write(`: a comment line the client ignores\n\n`);
      res.write(
        `data: ${JSON.stringify({ id: 'cmpl-1', choices: [], usage: { prompt_tokens: prompt.length, completion_tokens: n, total_tokens: prompt.length + n } })}\n\n`,
      );
      res.end('data: [DONE]\n\n');
    } finally {
      inFlight--;
    }
  };
  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    peakInFlight: () => peak,
    numRequests: () => requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
