import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveCheckpointDir } from '../src/hub-cache.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
let root = '';
const repo = () => join(root, 'models--org--moe');

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-hub-cache-'));
  for (const commit of [A, B]) {
    await mkdir(join(repo(), 'snapshots', commit), { recursive: true });
    await writeFile(join(repo(), 'snapshots', commit, 'config.json'), '{}');
  }
  await mkdir(join(repo(), 'refs'), { recursive: true });
  await writeFile(join(repo(), 'refs', 'v2'), `${B}\n`);
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe('checkpoint directories in the hub cache layout', () => {
  it('takes a plain directory as it is', async () => {
    expect(await resolveCheckpointDir(join(root, 'plain'))).toEqual({ dir: join(root, 'plain') });
  });

  it('names the repository and commit of a snapshot directory', async () => {
    expect(await resolveCheckpointDir(join(repo(), 'snapshots', A))).toEqual({
      dir: join(repo(), 'snapshots', A),
      repo: 'org/moe',
      revision: A,
    });
  });

  it('resolves a repository folder through a ref or a commit, and refuses to guess between snapshots', async () => {
    expect((await resolveCheckpointDir(repo(), 'v2')).dir).toBe(join(repo(), 'snapshots', B));
    expect((await resolveCheckpointDir(repo(), A)).dir).toBe(join(repo(), 'snapshots', A));
    await expect(resolveCheckpointDir(repo())).rejects.toThrow(/several snapshots and no refs\/main/);
    await expect(resolveCheckpointDir(repo(), 'v3')).rejects.toThrow(/no ref v3/);
    await writeFile(join(repo(), 'refs', 'main'), A);
    expect(await resolveCheckpointDir(repo())).toMatchObject({ dir: join(repo(), 'snapshots', A), revision: A });
  });
});
