// Seeded randomness for tests, independent of the library's generator: a mulberry32 PRNG, random
// tensors/indices/shapes, and a per-run seed that is printed (override with TL_TEST_SEED) so failures reproduce.
import { webcrypto } from 'node:crypto';
import type { DType } from '../../src/core/dtype.js';
import { nd, numel, type ND } from '../oracle/ndarray.js';
import { roundTo } from '../oracle/dtypes.js';

/** A small seeded PRNG (mulberry32: 32-bit state, period 2^32); fine for test data, not for crypto. */
export class Rng {
  private state: number;

  /** Creates a generator; the same seed gives the same stream. */
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [low, high). */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.next();
  }

  /** Uniform integer in [low, high) (both integers, high > low). */
  int(low: number, high: number): number {
    if (!(high > low)) throw new Error(`Rng.int: empty range [${low}, ${high})`);
    return low + Math.floor(this.next() * (high - low));
  }

  /** Standard normal sample (Box-Muller). */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.next(); // (0, 1]
    const u2 = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** True with probability p. */
  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick: empty array');
    return items[this.int(0, items.length)]!;
  }

  /** A new independent generator derived from this one's next output and a label. */
  fork(label = ''): Rng {
    return new Rng(mixSeed(Math.floor(this.next() * 4294967296), label));
  }
}

/** Mixes a seed with a label (FNV-1a over the label, then a murmur-style finalizer) into a 32-bit seed. */
export function mixSeed(seed: number, label: string): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

let runSeed: number | undefined;

/**
 * The seed of this test run: TL_TEST_SEED when set, else fresh from the crypto RNG. Chosen once per
 * process and printed once (`TL_TEST_SEED=<n>`), so a failing run can be repeated exactly.
 */
export function testSeed(): number {
  if (runSeed === undefined) {
    const env = process.env['TL_TEST_SEED'];
    if (env !== undefined && env !== '') {
      const n = Number(env);
      if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32)
        throw new Error(`TL_TEST_SEED must be an integer in [0, 2^32), got "${env}"`);
      runSeed = n;
    } else {
      runSeed = webcrypto.getRandomValues(new Uint32Array(1))[0]!;
    }
    console.log(`TL_TEST_SEED=${runSeed} (set TL_TEST_SEED=${runSeed} to reproduce this run)`);
  }
  return runSeed;
}

/**
 * A generator for one test, seeded from the run seed and the test's label (so tests do not depend
 * on each other's order). Pass node:test's context to also attach the seed as a test diagnostic.
 */
export function testRng(label: string, t?: { diagnostic(message: string): void }): Rng {
  const base = testSeed();
  const rng = new Rng(mixSeed(base, label));
  t?.diagnostic(`TL_TEST_SEED=${base} (${label})`);
  return rng;
}

/** Options of `randomND`. */
export interface RandomOptions {
  /** Lower bound (inclusive). Default -1 for floats, -10 for int32, 0 for uint32. */
  low?: number;
  /** Upper bound (exclusive). Default 1 for floats, 10 for the integer dtypes. */
  high?: number;
  /** The dtype the values must be representable in (default float32); bool gives 0/1. */
  dtype?: DType;
}

/** A tensor of uniform values, exactly representable in `dtype` (floats are rounded to it; integers are whole). */
export function randomND(rng: Rng, shape: readonly number[], opts: RandomOptions = {}): ND {
  const dtype = opts.dtype ?? 'float32';
  const n = numel(shape);
  const out = nd(shape);
  if (dtype === 'bool') {
    for (let i = 0; i < n; i++) out.data[i] = rng.bool() ? 1 : 0;
  } else if (dtype === 'int32' || dtype === 'uint32') {
    const low = opts.low ?? (dtype === 'int32' ? -10 : 0);
    const high = opts.high ?? 10;
    for (let i = 0; i < n; i++) out.data[i] = rng.int(low, high);
  } else {
    const low = opts.low ?? -1;
    const high = opts.high ?? 1;
    for (let i = 0; i < n; i++) out.data[i] = roundTo(dtype, rng.uniform(low, high));
  }
  return out;
}

/** A tensor of normal samples rounded to a float dtype (default float32). */
export function randomNormalND(
  rng: Rng,
  shape: readonly number[],
  opts: { mean?: number; std?: number; dtype?: 'float32' | 'float16' } = {},
): ND {
  const out = nd(shape);
  for (let i = 0; i < out.data.length; i++)
    out.data[i] = roundTo(opts.dtype ?? 'float32', rng.normal(opts.mean ?? 0, opts.std ?? 1));
  return out;
}

/** Integer indices in [low, high) of any shape (for gather, embedding ids, class targets, ...). */
export function randomIndices(rng: Rng, shape: readonly number[], high: number, low = 0): ND {
  const out = nd(shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = rng.int(low, high);
  return out;
}

/** A random permutation of 0..n-1 (Fisher-Yates). */
export function randomPermutation(rng: Rng, n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** A copy of `a` with about `fraction` of the elements replaced by values from `specials` (NaN, ±Inf, ±0 by default). */
export function withSpecials(
  rng: Rng,
  a: ND,
  fraction = 0.1,
  specials: readonly number[] = [NaN, Infinity, -Infinity, 0, -0],
): ND {
  const out = nd(a.shape, a.data);
  for (let i = 0; i < out.data.length; i++) if (rng.bool(fraction)) out.data[i] = rng.pick(specials);
  return out;
}

/** Sizes that catch off-by-one and tiling bugs: tiny, odd, primes, and just around powers of two. */
export const SIZES_OF_INTEREST: readonly number[] = [
  1, 2, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129,
];

/** A dim size in [1, max]: half the time one of SIZES_OF_INTEREST (<= max), else uniform. */
export function randomSize(rng: Rng, max: number): number {
  const interesting = SIZES_OF_INTEREST.filter((s) => s <= max);
  return interesting.length > 0 && rng.bool() ? rng.pick(interesting) : rng.int(1, max + 1);
}

/** Options of `randomShape`. */
export interface ShapeOptions {
  /** Default 0 (a scalar is possible). */
  minRank?: number;
  /** Default 4. */
  maxRank?: number;
  /** Largest dim size (default 9). */
  maxDim?: number;
  /** Largest element count; dims are redrawn until it fits (default 4096). */
  maxNumel?: number;
  /** Probability that a dim is 0 (default 0: no empty tensors). */
  zeroProb?: number;
}

/** A random shape with odd and tile-edge sizes favoured. */
export function randomShape(rng: Rng, opts: ShapeOptions = {}): number[] {
  const rank = rng.int(opts.minRank ?? 0, (opts.maxRank ?? 4) + 1);
  const maxNumel = opts.maxNumel ?? 4096;
  for (;;) {
    const shape = Array.from({ length: rank }, () =>
      rng.bool(opts.zeroProb ?? 0) ? 0 : randomSize(rng, opts.maxDim ?? 9),
    );
    if (numel(shape) <= maxNumel) return shape;
  }
}

/** A shape that broadcasts to `target`: some leading dims dropped (if allowed) and some dims set to 1. */
export function broadcastableTo(
  rng: Rng,
  target: readonly number[],
  opts: { onesProb?: number; dropLeading?: boolean } = {},
): number[] {
  const drop = (opts.dropLeading ?? true) ? rng.int(0, target.length + 1) : 0;
  return target.slice(drop).map((d) => (rng.bool(opts.onesProb ?? 0.3) ? 1 : d));
}

/** Two shapes that broadcast together, and their broadcast shape: `[a, b, out]`. */
export function randomBroadcastPair(rng: Rng, opts: ShapeOptions = {}): [number[], number[], number[]] {
  const out = randomShape(rng, opts);
  const a: number[] = [];
  const b: number[] = [];
  for (const d of out) {
    const mode = rng.int(0, 3); // 0: both full, 1: a stretched, 2: b stretched
    a.push(mode === 1 ? 1 : d);
    b.push(mode === 2 ? 1 : d);
  }
  // Dropping leading size-1 dims of one operand keeps the broadcast shape (the other keeps full rank).
  const dropLeadingOnes = (s: number[]): number[] => {
    const limit = rng.int(0, s.length + 1);
    let k = 0;
    while (k < limit && s[k] === 1) k++;
    return s.slice(k);
  };
  return rng.bool() ? [dropLeadingOnes(a), b, out] : [a, dropLeadingOnes(b), out];
}

/** Operand shapes for torch.matmul: mostly batched with broadcasting, sometimes 1-D on either side. */
export function randomMatmulShapes(
  rng: Rng,
  opts: { maxDim?: number; maxBatchRank?: number } = {},
): [number[], number[]] {
  const maxDim = opts.maxDim ?? 17;
  const m = randomSize(rng, maxDim);
  const k = randomSize(rng, maxDim);
  const n = randomSize(rng, maxDim);
  const batch = randomShape(rng, { maxRank: opts.maxBatchRank ?? 2, maxDim: 4, maxNumel: 16 });
  const kind = rng.int(0, 6);
  if (kind === 0) return [[k], [k]];
  if (kind === 1) return [[k], [...broadcastableTo(rng, batch), k, n]];
  if (kind === 2) return [[...broadcastableTo(rng, batch), m, k], [k]];
  return [
    [...broadcastableTo(rng, batch), m, k],
    [...broadcastableTo(rng, batch), k, n],
  ];
}
