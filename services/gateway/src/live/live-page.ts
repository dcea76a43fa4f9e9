/**
 * The live cluster page: `GET /` (HTML), its script and style, Chart.js and its matrix plugin — all
 * served by the gateway itself from files read once at start-up (no CDN: it works offline) — and
 * `GET /v1/switchyard/live`, an SSE stream of one `LiveSnapshot` about every second per viewer.
 *
 * Bounded: at most `maxViewers` streams at once (503 past it); each stream's timer stops when its
 * client leaves or the gateway closes the page.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { LiveSampler, type LiveSource } from './live-sampler.ts';

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

export interface LivePageOptions {
  readonly intervalMs?: number;
  readonly maxViewers?: number;
}

/** The page's files, by the path they are served at. */
export async function loadLiveAssets(): Promise<ReadonlyMap<string, Asset>> {
  const here = dirname(fileURLToPath(import.meta.url));
  // NOTE: the UMD builds are not in the packages' `exports`; their folders are found from the entry points.
  const chartDir = dirname(fileURLToPath(import.meta.resolve('chart.js')));
  const matrixDir = dirname(fileURLToPath(import.meta.resolve('chartjs-chart-matrix')));
  const files: [string, string, string][] = [
    ['/', join(here, 'page.html'), 'text/html; charset=utf-8'],
    ['/live/app.js', join(here, 'app.js'), 'text/javascript; charset=utf-8'],
    ['/live/style.css', join(here, 'style.css'), 'text/css; charset=utf-8'],
    ['/live/vendor/chart.umd.min.js', join(chartDir, 'chart.umd.min.js'), 'text/javascript; charset=utf-8'],
    [
      '/live/vendor/chartjs-chart-matrix.min.js',
      join(matrixDir, 'chartjs-chart-matrix.min.js'),
      'text/javascript; charset=utf-8',
    ],
  ];
  const assets = await Promise.all(
    files.map(async ([path, file, type]) => [path, { type, body: await readFile(file) }] as const),
  );
  return new Map(assets);
}

/** Registers the page's routes; the returned `close` ends every open stream. */
export function registerLivePage(
  app: FastifyInstance,
  assets: ReadonlyMap<string, Asset>,
  source: LiveSource,
  options: LivePageOptions = {},
): { close(): void } {
  const intervalMs = options.intervalMs ?? 1000;
  const maxViewers = options.maxViewers ?? 32;
  const streams = new Set<() => void>();
  for (const [path, asset] of assets) {
    app.get(path, async (_request, reply) =>
      reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body),
    );
  }
  app.get('/v1/switchyard/live', async (request, reply) => {
    if (streams.size >= maxViewers) return reply.status(503).send({ error: 'too many live viewers' });
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const sampler = new LiveSampler(source);
    const push = () => {
      if (!reply.raw.writableEnded)
        reply.raw.write(`event: snapshot\ndata: ${JSON.stringify(sampler.sample(Date.now()))}\n\n`);
    };
    const timer = setInterval(push, intervalMs);
    const stop = () => {
      clearInterval(timer);
      streams.delete(stop);
      if (!reply.raw.writableEnded) reply.raw.end();
    };
    streams.add(stop);
    request.raw.on('close', stop);
    push();
  });
  return {
    close() {
      for (const stop of [...streams]) stop();
    },
  };
}
