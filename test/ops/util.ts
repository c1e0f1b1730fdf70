// Shared helpers of the op suite: upload oracle arrays as tensors (encoded by the oracle, not by the
// library), build non-contiguous views holding given values, and compare a tensor with a float64
// reference (dtype, shape and every element).
import assert from 'node:assert/strict';
import { fromFloat16Bits, tensor, type DType, type DeviceName, type Tensor } from '../../src/index.js';
import { assertClose, assertShape } from '../helpers/assert.js';
import { randomPermutation, testSeed, type Rng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';

/** Re-exported for the op suite: the dtypes of a list that a device supports (one definition, in helpers). */
export { dtypesOn } from '../helpers/backends.js';

/** Every dtype. */
export const ALL_DTYPES: readonly DType[] = ['float32', 'float16', 'int32', 'uint32', 'bool'];

/**
 * Uploads an oracle array as a contiguous tensor of `dtype`. The values are converted by the oracle's
 * own encoder (float16 bit patterns by the oracle), so a library encoding bug cannot hide itself.
 */
export function fromND(a: O.ND, dtype: DType, device: DeviceName): Tensor {
  if (dtype === 'float16') return fromFloat16Bits(O.toStorage('float16', a.data) as Uint16Array, a.shape, { device });
  return tensor(O.toStorage(dtype, a.data), { shape: a.shape, dtype, device });
}

/** A value no random test input takes, stored in the gaps of strided bases (a wrong read shows up). */
function sentinel(dtype: DType): number {
  return dtype === 'bool' ? 1 : 77;
}

/** The inverse of a permutation. */
export function inversePermutation(p: readonly number[]): number[] {
  const q = new Array<number>(p.length);
  p.forEach((v, i) => (q[v] = i));
  return q;
}

/**
 * A non-contiguous tensor (a view into a larger base) whose logical values are `a`: for rank >= 2 a
 * random non-identity permutation of a permuted base, then a step-2 slice along a random axis with an
 * offset of 1, the gaps holding a sentinel. A 0-d array becomes an element selected from a 1-D base.
 */
export function stridedView(rng: Rng, a: O.ND, dtype: DType, device: DeviceName): Tensor {
  const r = a.shape.length;
  if (r === 0) {
    const base = fromND(O.nd([3], [sentinel(dtype), a.data[0]!, sentinel(dtype)]), dtype, device);
    return base.select(0, 1);
  }
  // 1) permutation: t = base.permute(p) has a's values when base = oracle permute(a, inverse(p)).
  let p = Array.from({ length: r }, (_, i) => i);
  if (r >= 2) {
    do p = randomPermutation(rng, r);
    while (p.every((v, i) => v === i));
  }
  const q = inversePermutation(p);
  const permuted = O.permute(a, q);
  // 2) step-2 slice along one axis of the permuted base: base2 has 2n+1 entries there, a's at odd positions.
  const ax = rng.int(0, r);
  const shape2 = [...permuted.shape];
  shape2[ax] = 2 * permuted.shape[ax]! + 1;
  const base2 = O.fromFn(shape2, (c) => {
    if (c[ax]! % 2 === 0) return sentinel(dtype);
    const src = [...c];
    src[ax] = (c[ax]! - 1) / 2;
    return O.at(permuted, src);
  });
  const base = fromND(base2, dtype, device);
  const sliced = base.slice(ax, 1, undefined, 2);
  return sliced.permute(p);
}

/** Options of `expectTensor`. */
export interface ExpectOptions {
  what: string;
  /** Printed in a failure message as TL_TEST_SEED (default: this run's seed, which reproduces it). */
  seed?: number;
  rtol?: number;
  atol?: number;
  terms?: number;
}

/**
 * Asserts that `t` has `dtype`, the shape of `expected` and every element close to it (exact for the
 * integer and bool dtypes; NaN must match NaN, infinities exactly).
 */
export async function expectTensor(t: Tensor, expected: O.ND, dtype: DType, opts: ExpectOptions): Promise<void> {
  assert.equal(t.dtype, dtype, `${opts.what}: dtype ${t.dtype}, expected ${dtype}`);
  assertShape(t.shape, expected.shape, `${opts.what}`);
  const got = await t.toArray();
  assertClose(got, expected, {
    dtype,
    what: opts.what,
    seed: opts.seed ?? testSeed(),
    ...(opts.rtol !== undefined ? { rtol: opts.rtol } : {}),
    ...(opts.atol !== undefined ? { atol: opts.atol } : {}),
    ...(opts.terms !== undefined ? { terms: opts.terms } : {}),
  });
}

/** Asserts that every element is identical to the reference, telling -0 from +0 (NaN matches NaN). */
export function assertIdentical(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e))))
      bad.push(`[${i}] got ${Object.is(a, -0) ? '-0' : a}, expected ${Object.is(e, -0) ? '-0' : e}`);
  }
  if (bad.length) throw new Error(`${what}: ${bad.length} of ${expected.length} differ: ${bad.slice(0, 6).join('; ')}`);
}

/** Asserts that `fn` throws an error whose message contains every one of `parts`. */
export function assertThrowsWith(fn: () => unknown, parts: readonly (string | RegExp)[], what = 'error'): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `${what}: threw a non-Error`);
    for (const p of parts) {
      const ok = typeof p === 'string' ? e.message.includes(p) : p.test(e.message);
      assert.ok(ok, `${what}: message "${e.message}" does not mention ${String(p)}`);
    }
    return true;
  });
}

/** Options of `assertOpFails`. */
export interface OpFailsOptions {
  /**
   * What the message must contain instead of `parts` when the failure surfaces at the read: a device
   * that checks data while running reports the op that really failed there, which for a composite op
   * (oneHot is a scatterAdd) is not the op the user called.
   */
  atRead?: readonly (string | RegExp)[];
}

/**
 * Asserts that an op refuses its input, either at once (the host validated it) or, for data-dependent
 * checks a device can only make while running, when the result is read. The message must contain
 * every one of `parts` (or of `opts.atRead` for a failure at the read).
 */
export async function assertOpFails(
  fn: () => Tensor,
  parts: readonly (string | RegExp)[],
  what: string,
  opts: OpFailsOptions = {},
): Promise<void> {
  let t: Tensor;
  const check =
    (want: readonly (string | RegExp)[], when: string) =>
    (e: unknown): true => {
      assert.ok(e instanceof Error, `${what}: threw a non-Error`);
      for (const p of want) {
        const ok = typeof p === 'string' ? e.message.includes(p) : p.test(e.message);
        assert.ok(ok, `${what} (${when}): message "${e.message}" does not mention ${String(p)}`);
      }
      return true;
    };
  try {
    t = fn();
  } catch (e) {
    check(parts, 'at the call')(e);
    return;
  }
  await assert.rejects(
    t.toArray(),
    check(opts.atRead ?? parts, 'at the read'),
    `${what}: neither the op nor the read failed`,
  );
}

/** The oracle array of a tensor's current values (float64). */
export async function toND(t: Tensor): Promise<O.ND> {
  return O.nd(t.shape, await t.toArray());
}
