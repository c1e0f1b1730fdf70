// Numeric assertions for op tests: every element compared with per-dtype tolerances, NaN/Inf matched
// exactly, and a failure message that says what, where (coordinates), how far off and how many failed.
import type { DType } from '../../src/core/dtype.js';
import { coordsOf, numel, type ND } from '../oracle/ndarray.js';

/** A dtype for tolerance purposes; 'float64' is for comparing oracle against oracle (e.g. gradients). */
export type ToleranceDType = DType | 'float64';

/** Default (rtol, atol) per dtype: float32 1e-5/1e-6, float16 1e-2/1e-3, float64 1e-9/1e-12; integer and bool exact. */
export function defaultTolerance(dtype: ToleranceDType): { rtol: number; atol: number } {
  switch (dtype) {
    case 'float64':
      return { rtol: 1e-9, atol: 1e-12 };
    case 'float32':
      return { rtol: 1e-5, atol: 1e-6 };
    case 'float16':
      return { rtol: 1e-2, atol: 1e-3 };
    default:
      return { rtol: 0, atol: 0 };
  }
}

/** Options of `assertClose`. */
export interface CloseOptions {
  /** The dtype of the result under test; picks default tolerances. */
  dtype: ToleranceDType;
  /** Relative tolerance (overrides the dtype default). */
  rtol?: number;
  /** Absolute tolerance (overrides the dtype default), before `terms` scaling. */
  atol?: number;
  /**
   * How many terms were accumulated into each element (K for a matmul, the reduced count for a sum).
   * atol is multiplied by it, assuming terms of magnitude <= ~1, so that results that cancel to
   * near 0 are not held to a relative bound they cannot meet. Default 1.
   */
  terms?: number;
  /** Names the quantity in the failure message (e.g. "matmul [3,5]@[5,7] float32"). */
  what?: string;
  /** Shape of the data, used to print coordinates; taken from `expected` when it is an ND. */
  shape?: readonly number[];
  /** The test seed, printed in the failure message. */
  seed?: number;
}

function fmt(x: number): string {
  return Object.is(x, -0) ? '-0' : Number.isInteger(x) ? String(x) : x.toPrecision(9);
}

/**
 * Asserts |actual - expected| <= atol * terms + rtol * |expected| for EVERY element. NaN must be
 * matched by NaN, and ±Infinity must match exactly; -0 equals 0. Throws an Error naming `what`, the
 * number of failing elements, the worst one (coordinates, actual, expected, allowed error) and the
 * first few others. `actual` must hold decoded values (not float16 bit patterns).
 */
export function assertClose(actual: ArrayLike<number>, expected: ND | ArrayLike<number>, opts: CloseOptions): void {
  const exp: ArrayLike<number> = 'shape' in expected && 'data' in expected ? expected.data : expected;
  const shape = opts.shape ?? ('shape' in expected && 'data' in expected ? expected.shape : undefined);
  const what = opts.what ?? 'value';
  const seedNote = opts.seed !== undefined ? ` [TL_TEST_SEED=${opts.seed}]` : '';
  if (actual.length !== exp.length) {
    throw new Error(
      `${what}: length ${actual.length}, expected ${exp.length}${shape ? ` (shape [${shape.join(', ')}])` : ''}${seedNote}`,
    );
  }
  if (shape && numel(shape) !== exp.length)
    throw new Error(`${what}: shape [${shape.join(', ')}] does not match ${exp.length} elements`);
  const dflt = defaultTolerance(opts.dtype);
  const rtol = opts.rtol ?? dflt.rtol;
  const atol = (opts.atol ?? dflt.atol) * Math.max(1, opts.terms ?? 1);

  const failures: { i: number; a: number; e: number; allowed: number; badness: number }[] = [];
  for (let i = 0; i < exp.length; i++) {
    const a = actual[i]!;
    const e = exp[i]!;
    let ok: boolean;
    let allowed = 0;
    let badness = Infinity;
    if (Number.isNaN(e) || Number.isNaN(a)) ok = Number.isNaN(e) && Number.isNaN(a);
    else if (!Number.isFinite(e) || !Number.isFinite(a)) ok = a === e;
    else {
      allowed = atol + rtol * Math.abs(e);
      const diff = Math.abs(a - e);
      ok = diff <= allowed;
      badness = allowed > 0 ? diff / allowed : diff === 0 ? 0 : Infinity;
    }
    if (!ok) failures.push({ i, a, e, allowed, badness });
  }
  if (failures.length === 0) return;

  const where = (i: number): string =>
    shape && shape.length > 0 ? `[${coordsOf(i, shape).join(', ')}] (flat ${i})` : `index ${i}`;
  const describe = (f: (typeof failures)[number]): string =>
    `${where(f.i)}: actual ${fmt(f.a)}, expected ${fmt(f.e)}` +
    (Number.isFinite(f.a) && Number.isFinite(f.e)
      ? `, |diff| ${Math.abs(f.a - f.e).toExponential(3)} > allowed ${f.allowed.toExponential(3)}`
      : '');
  let worst = failures[0]!;
  for (const f of failures) if (f.badness > worst.badness) worst = f;
  const others = failures
    .filter((f) => f !== worst)
    .slice(0, 4)
    .map((f) => `\n  also ${describe(f)}`)
    .join('');
  throw new Error(
    `${what}: ${failures.length} of ${exp.length} elements differ (dtype ${opts.dtype}, rtol ${rtol}, atol ${atol})${seedNote}\n` +
      `  worst ${describe(worst)}${others}`,
  );
}

/** Asserts two shapes are equal, with a message naming `what`. */
export function assertShape(actual: readonly number[], expected: readonly number[], what = 'shape'): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new Error(`${what}: got shape [${actual.join(', ')}], expected [${expected.join(', ')}]`);
  }
}

/** Asserts exact equality of every element (integer/bool results, indices); NaN matches NaN. */
export function assertEqualValues(
  actual: ArrayLike<number>,
  expected: ND | ArrayLike<number>,
  what = 'value',
  shape?: readonly number[],
): void {
  assertClose(actual, expected, { dtype: 'int32', what, ...(shape ? { shape } : {}) });
}
