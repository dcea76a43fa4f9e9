/**
 * NATS permissions (issue 12 item 3, acceptance 3): a nats-server started with the documented account
 * layout (`natsServerAuthorization`: one NKey user per process, per-subject permissions by role), an
 * engine, two frontends and an expert worker each connecting with its own NKey seed (NATS_NKEY). The
 * cluster serves under those permissions; a client holding only frontend-0's credentials cannot consume
 * requests, publish token events, read frontend-1's tokens, or cancel frontend-1's requests.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir } from '@switchyard/model';
import {
  ClusterConnection,
  ClusterNames,
  createNatsUserKey,
  encodeTokenEvent,
  natsServerAuthorization,
  type NatsRole,
} from '@switchyard/cluster';
import { startGateway, startNatsServer, startWorker, type ManagedProcess, type NatsServer } from '@switchyard/launcher';
import { readSse } from './helpers/sse.ts';

const NAMESPACE = 'perm';
const names = new ClusterNames(NAMESPACE);
let root = '';
let nats: NatsServer;
const procs: ManagedProcess[] = [];
let frontend0: ManagedProcess & { url: string };
let frontend1: ManagedProcess & { url: string };
let worker: ManagedProcess;
const seedFiles = new Map<string, string>();

const PROCESSES: readonly { role: NatsRole; name: string }[] = [
  { role: 'engine', name: 'engine-0' },
  { role: 'frontend', name: 'frontend-0' },
  { role: 'frontend', name: 'frontend-1' },
  { role: 'worker', name: 'worker-pw0' },
];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-nats-perm-'));
  const modelDir = join(root, 'tiny');
  await initModelDir(modelDir, 'tiny', 41);
  const users = [];
  for (const p of PROCESSES) {
    const key = createNatsUserKey();
    const file = join(root, `${p.name}.nk`);
    await writeFile(file, `${key.seed}\n`, { mode: 0o600 });
    seedFiles.set(p.name, file);
    users.push({ ...p, nkey: key.publicKey });
  }
  nats = await startNatsServer({ config: natsServerAuthorization(names, users) });
  const envOf = (name: string) => ({ NATS_NKEY: seedFiles.get(name) ?? '' });
  const common = ['--nats-url', nats.url, '--namespace', NAMESPACE];
  // The engine first: it owns the streams, which frontends may only use.
  procs.push(await startGateway(modelDir, [...common, '--name', 'engine-0'], envOf('engine-0')));
  frontend0 = await startGateway(modelDir, [...common, '--name', 'frontend-0', '--no-engine'], envOf('frontend-0'));
  frontend1 = await startGateway(modelDir, [...common, '--name', 'frontend-1', '--no-engine'], envOf('frontend-1'));
  worker = await startWorker(modelDir, 'pw0', ['--nats-url', nats.url, '--namespace', NAMESPACE], envOf('worker-pw0'));
  procs.push(frontend0, frontend1, worker);
}, 180_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

async function complete(url: string, maxTokens: number): Promise<{ status: number; text: string; tokens: number }> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'tiny',
      prompt: 'permitted',
      max_tokens: maxTokens,
      temperature: 0,
      ignore_eos: true,
    }),
  });
  const body = (await res.json()) as { choices?: { text: string }[]; usage?: { completion_tokens: number } };
  return { status: res.status, text: body.choices?.[0]?.text ?? '', tokens: body.usage?.completion_tokens ?? 0 };
}

/** A connection holding only frontend-0's credentials, and the permission errors the server sent it. */
async function asFrontend0(): Promise<{ conn: ClusterConnection; violations: string[] }> {
  const conn = await ClusterConnection.open({
    url: nats.url,
    name: 'frontend-0',
    namespace: NAMESPACE,
    nkeySeedFile: seedFiles.get('frontend-0') ?? '',
  });
  const violations: string[] = [];
  void (async () => {
    for await (const s of conn.nc.status()) if (s.type === 'error') violations.push(String(s.error));
  })();
  return { conn, violations };
}

describe('NATS permissions as documented', () => {
  it('serves through both frontends, and the worker registers, each under its own NKey user', async () => {
    const [a, b] = await Promise.all([complete(frontend0.url, 8), complete(frontend1.url, 8)]);
    expect(a).toMatchObject({ status: 200, tokens: 8 });
    expect(b).toEqual(a);
    // A worker that cannot register exits with the error before it says it serves.
    expect(worker.output()).toMatch(/expert-worker pw0 serving/);
    expect(worker.child.exitCode).toBeNull();
  });

  it('refuses frontend credentials that try to consume requests', async () => {
    const { conn } = await asFrontend0();
    try {
      await expect(
        conn.jsm.consumers.add(names.requestStream, { durable_name: 'thief', ack_policy: 'explicit' as never }),
      ).rejects.toThrow(/permissions violation/i);
      await expect(
        conn.nc.request(`$JS.API.CONSUMER.MSG.NEXT.${names.requestStream}.engines-tiny`, '{"batch":1}', {
          timeout: 2_000,
        }),
      ).rejects.toThrow(/permissions violation/i);
    } finally {
      await conn.close(1_000);
    }
  });

  it("refuses frontend credentials that try to read frontend-1's tokens, inject token events or cancel its requests", async () => {
    const { conn, violations } = await asFrontend0();
    try {
      // frontend-1's client streams a long completion; frontend-0's credentials attack it while it runs.
      const res = await fetch(`${frontend1.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'tiny',
          prompt: 'victim',
          max_tokens: 120,
          temperature: 0,
          ignore_eos: true,
          stream: true,
        }),
      });
      const reader = res.body?.getReader();
      const decoder = new TextDecoder();
      let raw = decoder.decode((await reader?.read())?.value);
      const id = /"id":"([^"]+)"/.exec(raw)?.[1] ?? '';
      expect(id).toMatch(/^cmpl-/);
      // Eavesdrop: the subscription is refused, so nothing of frontend-1's arrives.
      const overheard: string[] = [];
      const refused: string[] = [];
      conn.nc.subscribe(names.frontendTokenSubjects('frontend-1'), {
        callback: (error, msg) => void (error ? refused.push(error.message) : overheard.push(msg.subject)),
      });
      // Inject a final event into the victim's stream, and cancel it on both subjects a frontend could try.
      const forged = encodeTokenEvent({ requestId: id, index: 3, tokenId: 65, text: 'A', finishReason: 'stop' });
      conn.nc.publish(names.tokenSubject('frontend-1', id), forged);
      conn.nc.publish(names.cancelSubject('frontend-1', id));
      conn.nc.publish(names.cancelSubject('frontend-0', id)); // allowed to publish; the engine ignores it
      await conn.nc.flush();
      for (;;) {
        const chunk = await reader?.read();
        if (!chunk || chunk.done) break;
        raw += decoder.decode(chunk.value, { stream: true });
      }
      const { events, chunks } = readSse(raw);
      // The victim's request ran to its length: not stopped, not ended by the forged event.
      expect(events.at(-1)).toBe('[DONE]');
      expect(chunks.at(-1)?.choices?.[0]?.finish_reason).toBe('length');
      expect(chunks.filter((c) => (c.choices?.[0]?.text ?? '') !== '').length).toBeGreaterThanOrEqual(100);
      expect(overheard).toEqual([]);
      expect(refused.join('\n')).toMatch(/permissions violation for subscription/i);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(violations.join('\n')).toMatch(/permissions violation for subscription to "[^"]*tokens\.frontend-1\.\*"/i);
      expect(violations.join('\n')).toMatch(/permissions violation for publish to "[^"]*tokens\.frontend-1\./i);
      expect(violations.join('\n')).toMatch(/permissions violation for publish to "[^"]*cancel\.frontend-1\./i);
    } finally {
      await conn.close(1_000);
    }
  });
});

describe('the layout', () => {
  it('gives every process what it uses: the server logged no violation but the attacks and the frontends’ stream probes', () => {
    const violations = nats
      .output()
      .split('\n')
      .filter((l) => /violation/i.test(l));
    // A frontend first tries to create the streams (engines own them), is refused, and uses them as they are.
    const probes = violations.filter((l) => /perm\/frontend-[01]".*STREAM\.CREATE\.SWITCHYARD_/.test(l));
    const attacks = violations.filter((l) => /thief|MSG\.NEXT|tokens\.frontend-1|cancel\.frontend-1/.test(l));
    expect(violations.filter((l) => !probes.includes(l) && !attacks.includes(l))).toEqual([]);
    expect(violations.filter((l) => /perm\/(engine-0|worker-pw0)"/.test(l))).toEqual([]);
    expect(attacks).toHaveLength(5);
  });
});
