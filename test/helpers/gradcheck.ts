// Finite-difference gradients of float64 reference functions: the yardstick for the library's
// autograd. numericGrad gives the vector-Jacobian product d/dx sum(upstream * f(x)) by central differences.
import { clone, type ND } from '../oracle/ndarray.js';
import { assertClose, type CloseOptions } from './assert.js';

function shapeEq(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** sum(upstream * f(xs)), checking that f's output has upstream's shape. */
export function contract(f: (xs: ND[]) => ND, xs: ND[], upstream: ND): number {
  const y = f(xs);
  if (!shapeEq(y.shape, upstream.shape)) {
    throw new Error(
      `gradcheck: f returned shape [${y.shape.join(', ')}] but upstream is [${upstream.shape.join(', ')}]`,
    );
  }
  let s = 0;
  for (let i = 0; i < y.data.length; i++) s += upstream.data[i]! * y.data[i]!;
  return s;
}

/**
 * Central finite differences of the float64 function `f`, contracted with `upstream`: returns, for
 * each input, d/dx sum(upstream * f(xs)) (same shape as the input), i.e. what backward() with
 * gradient `upstream` must produce. `f` must be a float64 reference (oracle) function and must not
 * mutate its inputs; integer inputs (indices, targets) belong in f's closure, not in `xs`. Keep
 * inputs away from kinks (relu at 0, ties in max) where the derivative is not defined.
 */
export function numericGrad(f: (xs: ND[]) => ND, xs: ND[], upstream: ND, eps = 1e-6): ND[] {
  return xs.map((x, k) => {
    const g = clone(x);
    for (let i = 0; i < x.data.length; i++) {
      const plus = xs.map((y, j) => (j === k ? clone(y) : y));
      const minus = xs.map((y, j) => (j === k ? clone(y) : y));
      plus[k]!.data[i] = x.data[i]! + eps;
      minus[k]!.data[i] = x.data[i]! - eps;
      g.data[i] = (contract(f, plus, upstream) - contract(f, minus, upstream)) / (2 * eps);
    }
    return g;
  });
}

/**
 * Checks gradients from the library (`actual[k]` for input k, decoded values) against `numericGrad`
 * of the reference `f`. Default tolerances suit float32 autograd through a few ops (rtol 1e-4,
 * atol 1e-5, atol scaled by `terms`); pass others in `opts`. Inputs listed in `skip` are not compared (e.g. non-differentiable ones).
 */
export function assertGradClose(
  actual: readonly ArrayLike<number>[],
  f: (xs: ND[]) => ND,
  xs: ND[],
  upstream: ND,
  opts: Partial<CloseOptions> & { eps?: number; skip?: readonly number[] } = {},
): void {
  if (actual.length !== xs.length) throw new Error(`gradcheck: ${actual.length} gradients for ${xs.length} inputs`);
  const expected = numericGrad(f, xs, upstream, opts.eps ?? 1e-6);
  expected.forEach((e, k) => {
    if (opts.skip?.includes(k)) return;
    assertClose(actual[k]!, e, {
      dtype: opts.dtype ?? 'float32',
      rtol: opts.rtol ?? 1e-4,
      atol: opts.atol ?? 1e-5,
      ...(opts.terms !== undefined ? { terms: opts.terms } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      what: `${opts.what ?? 'gradient'} of input ${k}`,
    });
  });
}
