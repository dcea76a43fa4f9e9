/**
 * Goodput as vLLM defines it: the requests per second that met every given service-level objective
 * (`--goodput ttft:ms tpot:ms e2el:ms`). A request whose output has one token counts with TPOT 0.
 */

export const SLO_NAMES = ['ttft', 'tpot', 'e2el'] as const;
export type SloName = (typeof SLO_NAMES)[number];

/** Objectives in milliseconds; an absent one is not checked. */
export type GoodputSlos = Readonly<Partial<Record<SloName, number>>>;

export class GoodputSpecError extends Error {
  override readonly name = 'GoodputSpecError';
  readonly code = 'bad_goodput' as const;
}

function isSloName(name: string): name is SloName {
  return (SLO_NAMES as readonly string[]).includes(name);
}

/** Parses `["ttft:500", "tpot:50"]` (vLLM's KEY:VALUE pairs, milliseconds). */
export function parseGoodput(pairs: readonly string[]): GoodputSlos {
  const slos: Partial<Record<SloName, number>> = {};
  for (const pair of pairs) {
    const [name, value, ...rest] = pair.split(':');
    const ms = Number(value);
    if (name === undefined || value === undefined || rest.length > 0 || value.trim() === '' || !Number.isFinite(ms)) {
      throw new GoodputSpecError(
        `--goodput takes KEY:VALUE pairs with a value in milliseconds (e.g. ttft:500), got "${pair}"`,
      );
    }
    if (!isSloName(name))
      throw new GoodputSpecError(`--goodput metric must be one of ${SLO_NAMES.join(', ')}, got "${name}"`);
    if (ms < 0) throw new GoodputSpecError(`--goodput ${name} must be ≥ 0 ms, got ${ms}`);
    slos[name] = ms;
  }
  return slos;
}

export interface RequestLatencies {
  readonly ttftMs: number;
  /** 0 when the request produced at most one token (vLLM's convention for goodput). */
  readonly tpotMs: number;
  readonly e2elMs: number;
}

/** Every given objective is met (a value equal to its objective meets it). */
export function meetsSlos(request: RequestLatencies, slos: GoodputSlos): boolean {
  return (
    (slos.ttft === undefined || request.ttftMs <= slos.ttft) &&
    (slos.tpot === undefined || request.tpotMs <= slos.tpot) &&
    (slos.e2el === undefined || request.e2elMs <= slos.e2el)
  );
}

export function hasSlos(slos: GoodputSlos): boolean {
  return SLO_NAMES.some((n) => slos[n] !== undefined);
}
