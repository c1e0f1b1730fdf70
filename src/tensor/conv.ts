// 2-D convolution with torch.nn.functional.conv2d semantics: options are normalized to (H, W) pairs and
// validated here, operands made contiguous, and one kernel op runs. The two backward ops are exported for
// the gradient rule (autograd/rules.ts); the bias gradient there is a plain sum.
import { isFloat } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import type { Conv2dAttrs } from '../ops/opcodes.js';
import { conv2dShape } from '../ops/shapes.js';
import { runKernel } from './engine.js';
import { tidy } from './scope.js';
import type { Tensor } from './tensor.js';
import { contiguous } from './views.js';

/** Options of `conv2d` (a number applies to both spatial dims). */
export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

function pair(op: string, name: string, v: number | readonly number[] | undefined, dflt: number, min: number) {
  const p = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [...v];
  if (p.length !== 2 || p.some((d) => !Number.isInteger(d) || d < min))
    throw new OpError(
      op,
      `${name} must be an integer >= ${min} or a pair of them, got ${typeof v === 'number' ? v : `[${String(v)}]`}`,
    );
  return p as [number, number];
}

/** Normalizes conv2d options into the kernel attributes, rejecting bad values. */
export function conv2dAttrs(opts: Conv2dOptions = {}, op = 'conv2d'): Conv2dAttrs {
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1)
    throw new OpError(op, `groups must be a positive integer, got ${groups}`);
  return {
    stride: pair(op, 'stride', opts.stride, 1, 1),
    padding: pair(op, 'padding', opts.padding, 0, 0),
    dilation: pair(op, 'dilation', opts.dilation, 1, 1),
    groups,
  };
}

/**
 * 2-D convolution (cross-correlation, as PyTorch) of x (N, C, H, W) with weight (O, C/groups, KH, KW)
 * plus an optional bias (O): y (N, O, OH, OW) with OH = floor((H + 2*padding - dilation*(KH-1) - 1) /
 * stride) + 1, likewise OW. Float operands of one dtype; any strides (non-contiguous ones are copied).
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  x.assertLive(op);
  weight.assertLive(op);
  const attrs = conv2dAttrs(opts, op);
  if (!isFloat(x.dtype) || weight.dtype !== x.dtype || (bias && bias.dtype !== x.dtype))
    throw new OpError(
      op,
      `needs float operands of one dtype, got input ${x.dtype}, weight ${weight.dtype}${bias ? `, bias ${bias.dtype}` : ''}`,
    );
  const shape = conv2dShape(op, x.shape, weight.shape, attrs);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== shape[1]))
    throw new OpError(
      op,
      `bias must have shape [${shape[1]}] for weight ${fmtShape(weight.shape)}, got ${fmtShape(bias.shape)}`,
    );
  return tidy(() => {
    const ins = [contiguous(x), contiguous(weight)];
    if (bias) ins.push(contiguous(bias));
    return runKernel(op, ins, attrs, shape, x.dtype);
  });
}

/**
 * The input gradient of conv2d: gx (N, C, H, W) from gy (N, O, OH, OW) and the weight, for an input
 * of spatial size `inputSize`. Not differentiable (used by the gradient rule).
 */
export function conv2dBackwardInput(
  gy: Tensor,
  weight: Tensor,
  inputSize: [number, number],
  attrs: Conv2dAttrs,
): Tensor {
  const op = 'conv2dBackwardInput';
  const [n] = gy.shape;
  const [, cg] = weight.shape;
  const shape = [n!, cg! * attrs.groups, inputSize[0], inputSize[1]];
  checkGy(op, shape, weight.shape, gy.shape, attrs);
  return tidy(() => runKernel(op, [contiguous(gy), contiguous(weight)], { ...attrs, inputSize }, shape, gy.dtype));
}

/**
 * The weight gradient of conv2d: gw (O, C/groups, KH, KW) from the input x and gy (N, O, OH, OW).
 * Not differentiable (used by the gradient rule).
 */
export function conv2dBackwardWeight(x: Tensor, gy: Tensor, kernelSize: [number, number], attrs: Conv2dAttrs): Tensor {
  const op = 'conv2dBackwardWeight';
  const shape = [gy.shape[1]!, x.shape[1]! / attrs.groups, kernelSize[0], kernelSize[1]];
  checkGy(op, x.shape, shape, gy.shape, attrs);
  return tidy(() => runKernel(op, [contiguous(x), contiguous(gy)], { ...attrs, kernelSize }, shape, gy.dtype));
}

/** Checks that gy has the shape the forward conv of x and w would produce. */
function checkGy(
  op: string,
  x: readonly number[],
  w: readonly number[],
  gy: readonly number[],
  attrs: Conv2dAttrs,
): void {
  const want = conv2dShape(op, x, w, attrs);
  if (gy.length !== 4 || want.some((d, i) => d !== gy[i]))
    throw new OpError(
      op,
      `gradient ${fmtShape(gy)} does not match the conv2d output ${fmtShape(want)} of input ${fmtShape(x)} and weight ${fmtShape(w)}`,
    );
}
