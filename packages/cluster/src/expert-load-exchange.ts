/**
 * Expert load merged across gateways (issue 14 item 1): every engine publishes the (token, expert) pairs
 * it routed over its window (`ExpertLoadWindow`) every `intervalMs` on
 * `switchyard.v1.<ns>.engines.expert-load.<engine>`, and keeps the latest report of every other engine
 * of its model. `merged(local)` is its own window plus theirs: what the cluster routed, the input a
 * re-placement should balance, rather than what this one gateway happened to see.
 *
 * A report older than `ttlMs` (a gateway that stopped) no longer counts; a report of another model or
 * shape is ignored. Reports are JSON; a window of DeepSeek-V3's 58 × 256 experts is ≈ 60 KB every 2 s.
 */
import type { Subscription } from '@nats-io/transport-node';
import type { ClusterConnection } from './connect.ts';

export interface ExpertLoadReport {
  readonly model: string;
  readonly engineId: string;
  readonly numLayers: number;
  readonly numExperts: number;
  /** Pairs per layer and expert, flattened layer by layer. */
  readonly totals: readonly number[];
}

export interface ExpertLoadExchangeOptions {
  readonly model: string;
  readonly engineId: string;
  readonly numLayers: number;
  readonly numExperts: number;
  /** This engine's window, [layer][expert]. */
  readonly local: () => readonly (readonly number[])[];
  /** How often this engine publishes (default 2 s). */
  readonly intervalMs?: number;
  /** A peer's report older than this no longer counts (default 3 × intervalMs). */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeExpertLoad(report: ExpertLoadReport): Uint8Array {
  return encoder.encode(JSON.stringify(report));
}

/** Decodes a report; throws on anything that is not one (wrong fields, non-finite or negative counts). */
export function decodeExpertLoad(data: Uint8Array): ExpertLoadReport {
  const r = JSON.parse(decoder.decode(data)) as Partial<ExpertLoadReport>;
  const { model, engineId, numLayers, numExperts, totals } = r;
  if (typeof model !== 'string' || typeof engineId !== 'string') throw new Error('expert load: no model or engine');
  if (!Number.isInteger(numLayers) || !Number.isInteger(numExperts) || !Array.isArray(totals))
    throw new Error('expert load: no shape or totals');
  if (totals.length !== (numLayers ?? 0) * (numExperts ?? 0) || totals.some((x) => !(Number.isFinite(x) && x >= 0)))
    throw new Error('expert load: totals do not match the shape');
  return { model, engineId, numLayers: numLayers ?? 0, numExperts: numExperts ?? 0, totals };
}

export class ExpertLoadExchange {
  readonly #conn: ClusterConnection;
  readonly #opts: ExpertLoadExchangeOptions;
  readonly #ttlMs: number;
  readonly #peers = new Map<string, { totals: readonly number[]; atMs: number }>();
  readonly #subscription: Subscription;
  readonly #timer: NodeJS.Timeout;

  constructor(conn: ClusterConnection, opts: ExpertLoadExchangeOptions) {
    this.#conn = conn;
    this.#opts = opts;
    const intervalMs = opts.intervalMs ?? 2_000;
    this.#ttlMs = opts.ttlMs ?? 3 * intervalMs;
    this.#subscription = conn.nc.subscribe(conn.names.expertLoadSubjects, {
      callback: (error, msg) => {
        if (error) return;
        try {
          this.observe(decodeExpertLoad(msg.data));
        } catch {
          // A malformed report is ignored; the peer's next one counts.
        }
      },
    });
    this.#timer = setInterval(() => this.#publish(), intervalMs);
    this.#timer.unref();
  }

  /** Records a peer's report (the subscription calls this; tests may too). Its own and other models' are ignored. */
  observe(report: ExpertLoadReport): void {
    const o = this.#opts;
    if (report.engineId === o.engineId || report.model !== o.model) return;
    if (report.numLayers !== o.numLayers || report.numExperts !== o.numExperts) return;
    this.#peers.set(report.engineId, { totals: report.totals, atMs: this.#now() });
  }

  /** Engines whose report is fresh, this one left out. */
  get peers(): string[] {
    const now = this.#now();
    return [...this.#peers].filter(([, p]) => now - p.atMs <= this.#ttlMs).map(([id]) => id);
  }

  /** `local` plus every fresh peer's window, [layer][expert]. */
  merged(local: readonly (readonly number[])[] = this.#opts.local()): number[][] {
    const { numLayers, numExperts } = this.#opts;
    const now = this.#now();
    const out = Array.from({ length: numLayers }, (_, l) =>
      Array.from({ length: numExperts }, (_, e) => local[l]?.[e] ?? 0),
    );
    for (const [id, peer] of this.#peers) {
      if (now - peer.atMs > this.#ttlMs) {
        this.#peers.delete(id);
        continue;
      }
      for (let l = 0; l < numLayers; l++) {
        const row = out[l];
        if (!row) continue;
        for (let e = 0; e < numExperts; e++) row[e] = (row[e] ?? 0) + (peer.totals[l * numExperts + e] ?? 0);
      }
    }
    return out;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#subscription.unsubscribe();
  }

  #publish(): void {
    if (!this.#conn.isConnected) return;
    const o = this.#opts;
    const local = o.local();
    const totals: number[] = [];
    for (let l = 0; l < o.numLayers; l++) for (let e = 0; e < o.numExperts; e++) totals.push(local[l]?.[e] ?? 0);
    const report = { model: o.model, engineId: o.engineId, numLayers: o.numLayers, numExperts: o.numExperts, totals };
    this.#conn.nc.publish(this.#conn.names.expertLoadSubject(o.engineId), encodeExpertLoad(report));
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }
}
