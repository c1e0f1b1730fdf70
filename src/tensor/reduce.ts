// Reductions (sum, mean, max, min, argmax, argmin, var) over any set of axes, and softmax /
// logSoftmax along one axis.
import { isFloat, type DType } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import { normAxes, normAxis } from '../core/shape.js';
import { reduceShape } from '../ops/shapes.js';
import type { ReduceOp } from '../ops/opcodes.js';
import { zeros } from './creation.js';
import { binary, cast, unary, where } from './elementwise.js';
import { detach, reshape } from './views.js';
import { runKernel } from './engine.js';
import { tidy } from './scope.js';
import type { Tensor } from './tensor.js';

/** Axes argument: one axis, a list, or undefined for all axes. */
export type Axes = number | readonly number[] | undefined;

function reduce(op: ReduceOp, x: Tensor, axes: Axes, keepdim: boolean, dtype: DType): Tensor {
  x.assertLive(op);
  const ax = normAxes(op, axes, x.ndim);
  if (op !== 'sum' && ax.some((a) => x.shape[a] === 0)) {
    throw new OpError(op, `cannot reduce over an empty dim of ${fmtShape(x.shape)} (axes [${ax.join(', ')}])`);
  }
  return runKernel(op, [x], { axes: ax, keepdim }, reduceShape(x.shape, ax, keepdim), dtype);
}

/** Sum over `axes` (all by default). Integer and bool inputs sum to int32 (uint32 stays uint32). */
export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const dtype = isFloat(x.dtype) || x.dtype === 'uint32' ? x.dtype : 'int32';
  return reduce('sum', x, axes, keepdim, dtype);
}

/** Mean over `axes` (all by default); integer inputs give float32. */
export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const n = countOver(x, axes);
  return tidy(() => {
    const xf = isFloat(x.dtype) ? x : cast(x, 'float32');
    return binary('mul', sum(xf, axes, keepdim), 1 / n);
  });
}

/** Largest value over `axes`; the gradient is shared evenly among ties (like torch.amax). */
export function max(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return reduce('max', x, axes, keepdim, x.dtype);
}

/** Smallest value over `axes`. */
export function min(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return reduce('min', x, axes, keepdim, x.dtype);
}

/** Index (int32) of the first largest value along `axis`, or into the flattened tensor when omitted. */
export function argmax(x: Tensor, axis?: number, keepdim = false): Tensor {
  return reduce('argmax', x, axis, keepdim, 'int32');
}

/** Index (int32) of the first smallest value along `axis`, or into the flattened tensor when omitted. */
export function argmin(x: Tensor, axis?: number, keepdim = false): Tensor {
  return reduce('argmin', x, axis, keepdim, 'int32');
}

function countOver(x: Tensor, axes: Axes): number {
  return normAxes('mean', axes, x.ndim).reduce((n, a) => n * x.shape[a]!, 1);
}

/** Variance over `axes` with Bessel's `correction` (1 = unbiased, like torch.var's default). */
export function variance(x: Tensor, axes?: Axes, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
  const n = countOver(x, axes);
  const dof = Math.max(0, n - (opts.correction ?? 1));
  return tidy(() => {
    const xf = isFloat(x.dtype) ? x : cast(x, 'float32');
    const d = binary('sub', xf, mean(xf, axes, true));
    return binary('div', sum(binary('mul', d, d), axes, opts.keepdim ?? false), dof);
  });
}

function floatOnly(op: string, x: Tensor): void {
  if (!isFloat(x.dtype)) throw new OpError(op, `needs a float tensor, got ${x.dtype}`);
}

/** Options of `softmax`. */
export interface SoftmaxOptions {
  /**
   * Causal mask fused into the kernel (last axis of an (..., Tq, Tk) tensor only): query row i keeps keys
   * j <= i + causal (0: top-left aligned as torch's is_causal; Tk - Tq: bottom-right; `start` for new
   * positions start.. decoded after a KV cache) and gives exactly 0 elsewhere; a row left with no key (or
   * whose kept keys give NaN) is NaN.
   */
  causal?: number | null;
}

/** Softmax along `axis` (default last), computed stably; optionally with a fused causal mask. */
export function softmax(x: Tensor, axis = -1, opts: SoftmaxOptions = {}): Tensor {
  floatOnly('softmax', x);
  const ax = normAxis('softmax', axis, x.ndim);
  const causal = opts.causal ?? null;
  if (causal === null) return runKernel('softmax', [x], { axis: ax }, x.shape, x.dtype);
  if (!Number.isInteger(causal))
    throw new OpError('softmax', `causal offset must be an integer, got ${causal} for ${fmtShape(x.shape)}`);
  if (x.ndim < 2 || ax !== x.ndim - 1)
    throw new OpError(
      'softmax',
      `causal needs the last axis of an (..., Tq, Tk) tensor, got axis ${axis} of ${fmtShape(x.shape)}`,
    );
  return runKernel('softmax', [x], { axis: ax, causal }, x.shape, x.dtype);
}

/** log(softmax(x)) along `axis`, computed stably in one kernel. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  floatOnly('logSoftmax', x);
  return runKernel('logSoftmax', [x], { axis: normAxis('logSoftmax', axis, x.ndim) }, x.shape, x.dtype);
}

/** log(sum(exp(x))) over `axes`, computed stably (the shift by the max carries no gradient). */
export function logSumExp(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  floatOnly('logSumExp', x);
  return tidy(() => {
    const mx = detach(max(x, axes, true));
    const m = where(binary('lt', unary('abs', mx), Infinity), mx, zeros([], { dtype: x.dtype, device: x.device }));
    const s = unary('log', sum(unary('exp', binary('sub', x, m)), axes, true));
    const out = binary('add', s, m);
    return keepdim ? out : reshape(out, reduceShape(x.shape, normAxes('logSumExp', axes, x.ndim), false));
  });
}
