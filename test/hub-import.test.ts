/**
 * `switchyard model import` from the Hugging Face hub's layouts gives the same model as from a plain
 * checkpoint directory: `hf://org/name@rev` downloaded by the official client from a local stand-in hub
 * (the hub's URLs: model info, file tree, paths-info, `/org/name/resolve/<rev>/<file>` with ranges), and
 * the hub cache folder that download leaves (`models--org--name`, snapshots of symlinks into blobs).
 * "Same" is the weights digest and the greedy tokens `switchyard generate` produces.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { getPreset, randomWeights, writeHfCheckpoint } from '@switchyard/model';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REPO = 'acme/tiny-moe';
const COMMIT = 'c0ffee'.padEnd(40, '0');
const TOKEN = 'hf_test_token';

let root = '';
let plain = '';
let server: Server;
let hubUrl = '';
/** Files the stand-in hub holds: the checkpoint plus two an import must not fetch. */
const files = new Map<string, Buffer>();
const requests: { method: string; url: string }[] = [];

/** Runs the CLI, asynchronously: the stand-in hub answers from this process. */
function run(args: readonly string[], env: Record<string, string> = {}) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['services/cli/src/main.ts', ...args],
      { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', HOME: root, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function cli(args: readonly string[], env: Record<string, string> = {}): Promise<string> {
  const { status, stdout, stderr } = await run(args, env);
  if (status !== 0) throw new Error(`switchyard ${args.join(' ')} exited ${status}:\n${stderr}`);
  return stdout;
}

/** The stand-in hub: what `@huggingface/hub` asks of huggingface.co for a public model, token required. */
function serveHub(
  request: IncomingMessage,
  respond: (status: number, body: Buffer | string, headers?: Record<string, string | number>) => void,
) {
  const url = new URL(request.url ?? '/', hubUrl);
  requests.push({ method: request.method ?? '', url: url.pathname });
  if (request.headers.authorization !== `Bearer ${TOKEN}`) return respond(401, '{"error":"unauthorized"}');
  const json = (body: unknown) => respond(200, JSON.stringify(body), { 'content-type': 'application/json' });
  const entry = (path: string, data: Buffer) => ({
    type: 'file',
    path,
    size: data.length,
    oid: createHash('sha1').update(data).digest('hex'),
    lastCommit: { id: COMMIT, title: 'upload', date: '2026-01-01T00:00:00Z' },
  });
  if (url.pathname === `/api/models/${REPO}/revision/main`)
    return json({ _id: 'stand-in', id: REPO, sha: COMMIT, private: false });
  if (url.pathname === `/api/models/${REPO}/tree/${COMMIT}`)
    return json([...files].map(([path, data]) => entry(path, data)));
  if (url.pathname === `/api/models/${REPO}/paths-info/${COMMIT}`) {
    let body = '';
    request.on('data', (c: Buffer) => (body += c.toString()));
    request.on('end', () => {
      const { paths } = JSON.parse(body) as { paths: string[] };
      json(paths.flatMap((p) => (files.has(p) ? [entry(p, files.get(p) ?? Buffer.alloc(0))] : [])));
    });
    return;
  }
  const resolvePrefix = `/${REPO}/resolve/${COMMIT}/`;
  const data = url.pathname.startsWith(resolvePrefix) ? files.get(url.pathname.slice(resolvePrefix.length)) : undefined;
  if (!data) return respond(404, 'not found', { 'x-error-code': 'EntryNotFound' });
  const etag = `"${createHash('sha1').update(data).digest('hex')}"`;
  const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
  if (!range) return respond(200, data, { etag, 'content-length': data.length });
  const start = Number(range[1]);
  const end = range[2] ? Number(range[2]) : data.length - 1;
  respond(206, data.subarray(start, end + 1), { etag, 'content-range': `bytes ${start}-${end}/${data.length}` });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-hub-'));
  plain = join(root, 'tiny-moe');
  const config = getPreset('tiny', { family: 'mixtral', name: 'tiny-moe' });
  await writeHfCheckpoint(plain, 'mixtral', config, randomWeights(config, 21), { dtype: 'f32', sharded: true });
  for (const name of await readdir(plain)) files.set(name, await readFile(join(plain, name)));
  files.set('README.md', Buffer.from('# tiny-moe\n'));
  files.set('pytorch_model.bin', Buffer.alloc(4096));
  server = createServer((request, response) =>
    serveHub(request, (status, body, headers = {}) => response.writeHead(status, headers).end(body)),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  hubUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}, 60_000);
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(root, { recursive: true, force: true });
});

const digestOf = async (dir: string) =>
  (JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { switchyard: { weightsDigest: string } }).switchyard
    .weightsDigest;
const greedy = async (dir: string) =>
  (
    JSON.parse(
      await cli([
        'generate',
        '--model',
        dir,
        '--prompt-ids',
        '5,80,121,33',
        '--max-tokens',
        '8',
        '--temperature',
        '0',
        '--json',
      ]),
    ) as { outputIds: number[] }
  ).outputIds;

describe('model import from the hub', () => {
  const cache = () => join(root, 'hub-cache');
  const repoFolder = () => join(cache(), 'models--acme--tiny-moe');

  it('imports hf://org/name@rev through the official client, fetching only the checkpoint’s files', async () => {
    const out = await cli(
      [
        'model',
        'import',
        `hf://${REPO}@main`,
        '--hub-url',
        hubUrl,
        '--cache-dir',
        cache(),
        '--out',
        join(root, 'from-hub'),
      ],
      { HF_TOKEN: TOKEN },
    );
    expect(out).toContain(`from ${REPO}@${COMMIT}`);
    const fetched = requests.filter((r) => r.url.includes('/resolve/')).map((r) => r.url.split('/').at(-1));
    expect(new Set(fetched)).toEqual(
      new Set([...files.keys()].filter((f) => f !== 'README.md' && f !== 'pytorch_model.bin')),
    );
    // The hub cache layout: refs/main → the commit, snapshot entries are symlinks into blobs/.
    expect((await readFile(join(repoFolder(), 'refs', 'main'), 'utf8')).trim()).toBe(COMMIT);
    expect((await lstat(join(repoFolder(), 'snapshots', COMMIT, 'config.json'))).isSymbolicLink()).toBe(true);
    const config = JSON.parse(await readFile(join(root, 'from-hub', 'config.json'), 'utf8')) as { name: string };
    expect(config.name).toBe('tiny-moe');
  });

  it('does not download again what the cache holds (an interrupted download resumes at its file)', async () => {
    const before = requests.filter((r) => r.url.includes('/resolve/') && r.method === 'GET').length;
    await cli(
      ['model', 'import', `hf://${REPO}`, '--hub-url', hubUrl, '--cache-dir', cache(), '--out', join(root, 'again')],
      {
        HF_TOKEN: TOKEN,
      },
    );
    expect(requests.filter((r) => r.url.includes('/resolve/') && r.method === 'GET').length).toBe(before);
  });

  it('needs the token for a repository that asks for one, and says so in one line', async () => {
    const denied = await run(['model', 'import', `hf://${REPO}`, '--hub-url', hubUrl, '--out', join(root, 'no')]);
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toBe(
      `switchyard: hf://${REPO}@main: the hub answered HTTP 401 (set HF_TOKEN for a gated or private repository)\n`,
    );
  });

  it('gives the same model from the plain directory, the hub cache folder, its snapshot and the hub', async () => {
    await cli(['model', 'import', plain, '--out', join(root, 'from-plain')]);
    await cli(['model', 'import', repoFolder(), '--out', join(root, 'from-cache')]);
    await cli(['model', 'import', join(repoFolder(), 'snapshots', COMMIT), '--out', join(root, 'from-snapshot')]);
    const models = ['from-plain', 'from-cache', 'from-snapshot', 'from-hub'].map((d) => join(root, d));
    const digests = await Promise.all(models.map(digestOf));
    expect(new Set(digests).size).toBe(1);
    const tokens: number[][] = [];
    for (const model of models) tokens.push(await greedy(model));
    expect(tokens[0]).toHaveLength(8);
    for (const t of tokens.slice(1)) expect(t).toEqual(tokens[0]);
    // The cache folder and its snapshot name the model after the repository, not the commit.
    const name = JSON.parse(await readFile(join(root, 'from-snapshot', 'config.json'), 'utf8')) as { name: string };
    expect(name.name).toBe('tiny-moe');
  }, 180_000);

  it('is what the Kubernetes model Job does with MODEL_SOURCE: a preset by default, hf:// from the ConfigMap', async () => {
    const job = parse(await readFile(join(ROOT, 'k8s/base/model-init-job.yaml'), 'utf8')) as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    const script = job.spec.template.spec.containers[0]?.args[0] ?? '';
    const runJob = (modelDir: string, env: Record<string, string>) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          'sh',
          ['-c', script],
          {
            cwd: ROOT,
            env: {
              PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`,
              HOME: root,
              MODEL_DIR: modelDir,
              ...env,
            },
            timeout: 120_000,
          },
          (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
        ),
      );
    const fromHub = join(root, 'job', 'tiny-moe');
    const cacheDir = join(root, 'job-cache');
    const env = { MODEL_SOURCE: `hf://${REPO}@main`, HF_ENDPOINT: hubUrl, HF_TOKEN: TOKEN, HF_HUB_CACHE: cacheDir };
    await runJob(fromHub, env);
    expect(await digestOf(fromHub)).toBe(await digestOf(join(root, 'from-plain')));
    expect(await runJob(fromHub, env)).toContain('model already present');
    const preset = join(root, 'job', 'tiny');
    await runJob(preset, { MODEL_SOURCE: 'preset:tiny', MODEL_SEED: '7' });
    expect((JSON.parse(await readFile(join(preset, 'config.json'), 'utf8')) as { name: string }).name).toBe('tiny');
  }, 120_000);
});
