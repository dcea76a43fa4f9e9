/**
 * A seeded, portable PRNG: xoshiro128** seeded through splitmix32, with normals from the inverse normal
 * CDF (Acklam's rational approximation, tabulated for speed). Everything is 32-bit integer arithmetic
 * (`Math.imul`, shifts) and IEEE-754 `+ - * /` and `Math.sqrt`, which are exactly rounded everywhere, so
 * a (seed, key) pair gives the same bits on any machine and any Node version.
 *
 * NOTE: the natural log is our own (`portableLog`) rather than `Math.log`, whose last bit the ECMAScript
 * spec leaves implementation-defined; a V8 upgrade could otherwise change every weight.
 */

const TWO_POW_32 = 4294967296;
const LN2 = 0.6931471805599453;
const SQRT2 = 1.4142135623730951;

/** Index of the high 32-bit word of a float64 in a Uint32Array view, for this platform's endianness. */
const HIGH_WORD = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
const LOG_F64 = new Float64Array(1);
const LOG_U32 = new Uint32Array(LOG_F64.buffer);

/**
 * ln(x) for finite, normal (not subnormal) x > 0, from +, -, *, / only (exactly rounded, hence portable). Accurate to about
 * 1e-10 relative — far more than the float32 weights it feeds need.
 */
export function portableLog(x: number): number {
  LOG_F64[0] = x;
  const high = LOG_U32[HIGH_WORD] ?? 0;
  let exponent = ((high >>> 20) & 0x7ff) - 1023;
  // Force the exponent field to 0 (biased 1023): the mantissa m is then in [1, 2).
  LOG_U32[HIGH_WORD] = (high & 0x800fffff) | 0x3ff00000;
  let m = LOG_F64[0] ?? 1;
  if (m > SQRT2) {
    m *= 0.5;
    exponent += 1;
  }
  // ln m = 2 atanh(t), t = (m - 1) / (m + 1), |t| ≤ 0.172, so seven terms reach ~1e-11.
  const t = (m - 1) / (m + 1);
  const t2 = t * t;
  const series = 1 + t2 * (1 / 3 + t2 * (1 / 5 + t2 * (1 / 7 + t2 * (1 / 9 + t2 * (1 / 11 + t2 / 13)))));
  return exponent * LN2 + 2 * t * series;
}

/** One step of splitmix32: returns [output, nextState] as uint32. */
function splitmix32(state: number): readonly [number, number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return [(z ^ (z >>> 15)) >>> 0, next];
}

/** FNV-1a over the UTF-16 code units of `key` (tensor names are ASCII, so this is their bytes). */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  }
  return h >>> 0;
}

/**
 * xoshiro128** (Blackman & Vigna). Invariant: the four state words are uint32 and not all zero.
 */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * A stream determined by `seed` (an integer in [0, 2^53)) and an optional `key` (e.g. a tensor name),
   * so independent streams can be drawn in any order.
   */
  constructor(seed: number, key = '') {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
    }
    // Three independent splitmix32 chains (seed low word, seed high word, key hash) XORed word-wise.
    let a = seed >>> 0;
    let b = (Math.floor(seed / TWO_POW_32) ^ 0x6a09e667) >>> 0;
    let c = hashKey(key);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [outA, nextA] = splitmix32(a);
      const [outB, nextB] = splitmix32(b);
      const [outC, nextC] = splitmix32(c);
      words.push((outA ^ rotl(outB, 13) ^ rotl(outC, 23)) >>> 0);
      a = nextA;
      b = nextB;
      c = nextC;
    }
    this.s0 = words[0] ?? 0;
    this.s1 = words[1] ?? 0;
    this.s2 = words[2] ?? 0;
    this.s3 = words[3] ?? 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniform uint32. */
  nextUint32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2;
    const s3 = this.s3;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.s1 = (s1 ^ n2) >>> 0;
    this.s0 = (s0 ^ n3) >>> 0;
    this.s2 = (n2 ^ t) >>> 0;
    this.s3 = rotl(n3, 11) >>> 0;
    return r;
  }

  /** A uniform float in the open interval (0, 1). */
  nextFloat(): number {
    return (this.nextUint32() + 0.5) / TWO_POW_32;
  }

  /** A standard normal, through the exact quantile (so not bit-identical to `fillNormal`'s table). */
  nextNormal(): number {
    return normalQuantile(this.nextFloat());
  }

  /**
   * Fills `out` with normal(mean, std) samples, one uint32 draw per sample. This is the hot loop of
   * random-weight generation (about a billion samples for `olmoe-slice`), so the generator state lives
   * in locals and the quantile is a table lookup: the draw's high 16 bits pick a segment of a 65,536-entry
   * table of Φ⁻¹, the low 16 bits interpolate linearly within it (error < 2e-4 in the worst interpolated
   * segment, ~1e-10 in the bulk), and the outermost 16 segments on each side, where Φ⁻¹ bends too
   * sharply to interpolate, use the exact quantile.
   */
  fillNormal(out: Float32Array, mean: number, std: number): void {
    const table = quantileTable();
    let s0 = this.s0 | 0;
    let s1 = this.s1 | 0;
    let s2 = this.s2 | 0;
    let s3 = this.s3 | 0;
    const n = out.length;
    for (let i = 0; i < n; i++) {
      const m = Math.imul(s1, 5);
      const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      const segment = r >>> 16;
      let z: number;
      if (segment >= EXACT_SEGMENTS && segment < TABLE_SEGMENTS - EXACT_SEGMENTS) {
        const lo = table[segment] ?? 0;
        const hi = table[segment + 1] ?? 0;
        z = lo + (hi - lo) * (((r & 0xffff) + 0.5) / 65536);
      } else {
        z = normalQuantile((r + 0.5) / TWO_POW_32);
      }
      out[i] = mean + std * z;
    }
    this.s0 = s0 >>> 0;
    this.s1 = s1 >>> 0;
    this.s2 = s2 >>> 0;
    this.s3 = s3 >>> 0;
  }
}

const TABLE_SEGMENTS = 65536;
const EXACT_SEGMENTS = 16;
let quantiles: Float64Array | undefined;

/** Φ⁻¹(i / 65536) for i in [EXACT_SEGMENTS, 65536 - EXACT_SEGMENTS], built once, portably. */
function quantileTable(): Float64Array {
  if (quantiles === undefined) {
    quantiles = new Float64Array(TABLE_SEGMENTS + 1);
    for (let i = EXACT_SEGMENTS; i <= TABLE_SEGMENTS - EXACT_SEGMENTS; i++) {
      quantiles[i] = normalQuantile(i / TABLE_SEGMENTS);
    }
  }
  return quantiles;
}

// Acklam's rational approximation of the inverse normal CDF (relative error < 1.2e-9).
const A1 = -3.969683028665376e1;
const A2 = 2.209460984245205e2;
const A3 = -2.759285104469687e2;
const A4 = 1.38357751867269e2;
const A5 = -3.066479806614716e1;
const A6 = 2.506628277459239;
const B1 = -5.447609879822406e1;
const B2 = 1.615858368580409e2;
const B3 = -1.556989798598866e2;
const B4 = 6.680131188771972e1;
const B5 = -1.328068155288572e1;
const C1 = -7.784894002430293e-3;
const C2 = -3.223964580411365e-1;
const C3 = -2.400758277161838;
const C4 = -2.549732539343734;
const C5 = 4.374664141464968;
const C6 = 2.938163982698783;
const D1 = 7.784695709041462e-3;
const D2 = 3.224671290700398e-1;
const D3 = 2.445134137142996;
const D4 = 3.754408661907416;
const P_LOW = 0.02425;
const P_HIGH = 1 - P_LOW;

function tail(p: number): number {
  const q = Math.sqrt(-2 * portableLog(p));
  return (((((C1 * q + C2) * q + C3) * q + C4) * q + C5) * q + C6) / ((((D1 * q + D2) * q + D3) * q + D4) * q + 1);
}

/** The standard normal quantile Φ⁻¹(p) for p in (0, 1), portable (see the module note). */
export function normalQuantile(p: number): number {
  if (p <= P_LOW) return tail(p);
  if (p >= P_HIGH) return -tail(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((A1 * r + A2) * r + A3) * r + A4) * r + A5) * r + A6) * q) /
    (((((B1 * r + B2) * r + B3) * r + B4) * r + B5) * r + 1)
  );
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
