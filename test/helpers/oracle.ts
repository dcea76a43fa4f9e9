import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TokenEvent } from '@switchyard/engine';

const ORACLE_MAIN = fileURLToPath(new URL('./oracle-main.ts', import.meta.url));

/**
 * The monolithic engine's greedy answers (EOS ignored) for byte-tokenised prompts: the oracle every
 * distributed or clustered answer must equal (a prompt given as token ids is taken as it is). Returns each request's events. The engine runs in a child
 * process (test/helpers/oracle-main.ts), so its weights are out of memory once the answers are known —
 * with olmoe-slice they are gigabytes the processes under test need.
 */
export async function monolithicGreedy(
  modelDir: string,
  prompts: readonly (string | readonly number[])[],
  maxTokens: number,
): Promise<TokenEvent[][]> {
  const child = spawn(process.execPath, [ORACLE_MAIN], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  child.stdin.end(JSON.stringify({ modelDir, prompts, maxTokens }));
  const code = await exited;
  if (code !== 0) {
    throw new Error(`the oracle process exited with ${code}: ${Buffer.concat(err).toString().slice(-2000)}`);
  }
  return JSON.parse(Buffer.concat(out).toString()) as TokenEvent[][];
}
