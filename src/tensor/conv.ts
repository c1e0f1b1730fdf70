// 2-D convolution with torch.nn.functional.conv2d semantics: options are normalized to (H, W) pairs and
// validated here, operands made contiguous, and one kernel op runs. The two backward ops are exported for
// the gradient rule (autograd/rules.ts); the bias gradient there is a plain sum.
import { isFloat } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import type { Conv2dAttrs } from '../ops/opcodes.js';
import { conv2dShape } from '../ops/shapes.js';
import { zeros } from './creation.js';
import { binary } from './elementwise.js';
import { runKernel } from './engine.js';
import { cat } from './indexing.js';
import { tidy } from './scope.js';
import type { Tensor } from './tensor.js';
import { contiguous, reshape } from './views.js';

/** Options of `conv2d` (a number applies to both spatial dims). */
export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
  /** 'relu': clamp the output (after the bias) at 0 in the conv kernel's store (conv2d only). */
  activation?: 'relu' | null;
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
export function conv2dAttrs(opts: Omit<Conv2dOptions, 'activation'> = {}, op = 'conv2d'): Conv2dAttrs {
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
 * `activation: 'relu'` applies ReLU in the same kernel (relu(conv2d(...)) in one dispatch).
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  x.assertLive(op);
  weight.assertLive(op);
  const attrs = conv2dAttrs(opts, op);
  const act = opts.activation ?? null;
  if (act !== null && act !== 'relu') throw new OpError(op, `activation must be 'relu' or null, got ${String(act)}`);
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
    return runKernel(op, ins, act ? { ...attrs, activation: act } : attrs, shape, x.dtype);
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

/** Options of `convTranspose2d` (a number applies to both spatial dims). */
export interface ConvTranspose2dOptions extends Omit<Conv2dOptions, 'activation'> {
  /** Extra rows/columns on the bottom/right of the output (each < stride or < dilation). Default 0. */
  outputPadding?: number | [number, number];
}

/**
 * Transposed 2-D convolution as torch.nn.functional.conv_transpose2d: x (N, Cin, H, W) with weight
 * (Cin, Cout/groups, KH, KW) plus an optional bias (Cout) gives y (N, Cout, OH, OW) with OH = (H - 1) *
 * stride - 2 * padding + dilation * (KH - 1) + outputPadding + 1, likewise OW. It is the adjoint of
 * conv2d, so it runs as conv2d's input-gradient op, whose gradient rule (autograd/rules.ts) uses
 * conv2d for x and conv2d's weight-gradient op (roles swapped) for the weight: no kernels of its own.
 */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  opts: ConvTranspose2dOptions = {},
): Tensor {
  const op = 'convTranspose2d';
  x.assertLive(op);
  weight.assertLive(op);
  const attrs = conv2dAttrs(opts, op);
  const outPad = pair(op, 'outputPadding', opts.outputPadding, 0, 0);
  if (!isFloat(x.dtype) || weight.dtype !== x.dtype || (bias && bias.dtype !== x.dtype))
    throw new OpError(
      op,
      `needs float operands of one dtype, got input ${x.dtype}, weight ${weight.dtype}${bias ? `, bias ${bias.dtype}` : ''}`,
    );
  if (x.ndim !== 4 || weight.ndim !== 4 || weight.shape[0] !== x.shape[1] || x.shape[1]! % attrs.groups !== 0)
    throw new OpError(
      op,
      `input ${fmtShape(x.shape)} must be (N, Cin, H, W) and weight ${fmtShape(weight.shape)} (Cin, Cout/groups, KH, KW) with Cin divisible by groups ${attrs.groups}`,
    );
  const size = [0, 1].map((d) => {
    const { stride, padding, dilation } = attrs;
    if (outPad[d]! >= stride[d]! && outPad[d]! >= dilation[d]!)
      throw new OpError(
        op,
        `outputPadding [${outPad.join(', ')}] must be smaller than stride [${stride.join(', ')}] or dilation [${dilation.join(', ')}]`,
      );
    const k = weight.shape[2 + d]!;
    return (x.shape[2 + d]! - 1) * stride[d]! - 2 * padding[d]! + dilation[d]! * (k - 1) + outPad[d]! + 1;
  }) as [number, number];
  if (size[0] < 1 || size[1] < 1)
    throw new OpError(op, `output size [${size.join(', ')}] of input ${fmtShape(x.shape)} is too small`);
  const cout = weight.shape[1]! * attrs.groups;
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== cout))
    throw new OpError(
      op,
      `bias must have shape [${cout}] for weight ${fmtShape(weight.shape)} and groups ${attrs.groups}, got ${fmtShape(bias.shape)}`,
    );
  return tidy(() => {
    const y = conv2dBackwardInput(padForAdjoint(x, weight, size, attrs), weight, size, attrs);
    return bias ? binary('add', y, reshape(bias, [1, cout, 1, 1])) : y;
  });
}

/**
 * x zero-padded at the bottom/right to the size the forward conv of an output of `size` has: larger
 * than x only when outputPadding >= stride (allowed while < dilation). The padding rows contribute
 * nothing, so the adjoint conv over them is conv_transpose2d's result; concat keeps it differentiable.
 */
function padForAdjoint(x: Tensor, weight: Tensor, size: [number, number], attrs: Conv2dAttrs): Tensor {
  let t = x;
  for (const d of [0, 1]) {
    const { stride, padding, dilation } = attrs;
    const k = weight.shape[2 + d]!;
    const full = Math.floor((size[d]! + 2 * padding[d]! - dilation[d]! * (k - 1) - 1) / stride[d]!) + 1;
    const have = t.shape[2 + d]!;
    if (full > have) {
      const shape = [...t.shape];
      shape[2 + d] = full - have;
      t = cat([t, zeros(shape, { dtype: t.dtype, device: t.device })], 2 + d);
    }
  }
  return t;
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
