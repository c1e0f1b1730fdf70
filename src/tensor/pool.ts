// 2-D pooling with PyTorch's semantics (torch.nn.functional max_pool2d, avg_pool2d,
// adaptive_avg_pool2d) over (N, C, H, W) inputs (a 3-D (C, H, W) input is pooled as a batch of one).
// Each is one kernel; max pooling also writes each window's argmax, which the graph keeps for backward.
import { isFloat } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import type { AvgPool2dAttrs, MaxPool2dAttrs } from '../ops/opcodes.js';
import { poolOutputSize } from '../ops/shapes.js';
import { runKernel } from './engine.js';
import type { Tensor } from './tensor.js';
import { reshape } from './views.js';

/** A size given for both spatial dims, or as an (h, w) pair. */
export type Size2 = number | readonly [number, number];

/** Options of `maxPool2d` (torch.nn.functional.max_pool2d). */
export interface MaxPool2dOptions {
  kernelSize: Size2;
  /** Defaults to kernelSize. */
  stride?: Size2;
  /** Implicit -inf padding on both sides; at most half the kernel. Default 0. */
  padding?: Size2;
  /** Spacing of the window's taps. Default 1. */
  dilation?: Size2;
  /** Round the output size up (a last, partial window) instead of down. Default false. */
  ceilMode?: boolean;
}

/** Options of `avgPool2d` (torch.nn.functional.avg_pool2d). */
export interface AvgPool2dOptions {
  kernelSize: Size2;
  /** Defaults to kernelSize. */
  stride?: Size2;
  /** Implicit zero padding on both sides; at most half the kernel. Default 0. */
  padding?: Size2;
  /** Round the output size up instead of down. Default false. */
  ceilMode?: boolean;
  /** Count the padding in each window's divisor. Default true (as in PyTorch). */
  countIncludePad?: boolean;
}

function pair(op: string, name: string, v: Size2): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (typeof v !== 'number' && (v as readonly number[]).length !== 2)
    throw new OpError(op, `${name} must be a number or an [h, w] pair, got [${(v as readonly number[]).join(', ')}]`);
  if (!p.every((d) => Number.isInteger(d))) throw new OpError(op, `${name} must hold integers, got [${p.join(', ')}]`);
  return p;
}

/** Runs `f` on x as (N, C, H, W): a 3-D input gets (and its result loses) a batch dim of one. */
function batched(op: string, x: Tensor, f: (x4: Tensor) => Tensor): Tensor {
  x.assertLive(op);
  if (!isFloat(x.dtype) || (x.ndim !== 3 && x.ndim !== 4))
    throw new OpError(op, `needs a float (N, C, H, W) or (C, H, W) input, got ${x.dtype} ${fmtShape(x.shape)}`);
  if (x.ndim === 4) return f(x);
  const x4 = reshape(x, [1, ...x.shape]);
  const y4 = f(x4);
  const y = reshape(y4, y4.shape.slice(1));
  x4.dispose();
  y4.dispose();
  return y;
}

/**
 * Max pooling over windows of each (H, W) plane, as torch.nn.functional.max_pool2d: padding counts as
 * -inf, NaN propagates, ties go to the first element in row-major window order (which also receives
 * the whole gradient).
 */
export function maxPool2d(x: Tensor, opts: MaxPool2dOptions): Tensor {
  const op = 'maxPool2d';
  return batched(op, x, (x4) => {
    const [n, c, h, w] = x4.shape as [number, number, number, number];
    const kernel = pair(op, 'kernelSize', opts.kernelSize);
    const stride = opts.stride === undefined ? kernel : pair(op, 'stride', opts.stride);
    const padding = pair(op, 'padding', opts.padding ?? 0);
    const dilation = pair(op, 'dilation', opts.dilation ?? 1);
    const ceil = opts.ceilMode ?? false;
    const oh = poolOutputSize(op, 'H', h, kernel[0], stride[0], padding[0], dilation[0], ceil);
    const ow = poolOutputSize(op, 'W', w, kernel[1], stride[1], padding[1], dilation[1], ceil);
    const attrs: MaxPool2dAttrs = { kernel, stride, padding, dilation };
    const shape = [n, c, oh, ow];
    return runKernel(op, [x4], attrs, shape, x4.dtype, { aux: [{ shape, dtype: 'int32' }] });
  });
}

/**
 * Average pooling over windows of each (H, W) plane, as torch.nn.functional.avg_pool2d: zero padding,
 * divided by the window size counted with the padding (`countIncludePad`, the default) or without it.
 */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  const op = 'avgPool2d';
  return batched(op, x, (x4) => {
    const [n, c, h, w] = x4.shape as [number, number, number, number];
    const kernel = pair(op, 'kernelSize', opts.kernelSize);
    const stride = opts.stride === undefined ? kernel : pair(op, 'stride', opts.stride);
    const padding = pair(op, 'padding', opts.padding ?? 0);
    const ceil = opts.ceilMode ?? false;
    const oh = poolOutputSize(op, 'H', h, kernel[0], stride[0], padding[0], 1, ceil);
    const ow = poolOutputSize(op, 'W', w, kernel[1], stride[1], padding[1], 1, ceil);
    const attrs: AvgPool2dAttrs = {
      kernel,
      stride,
      padding,
      countIncludePad: opts.countIncludePad ?? true,
      adaptive: false,
    };
    return runKernel(op, [x4], attrs, [n, c, oh, ow], x4.dtype);
  });
}

/**
 * Adaptive average pooling to `outputSize` (torch.nn.functional.adaptive_avg_pool2d): output row i
 * averages input rows [floor(i * H / OH), ceil((i + 1) * H / OH)), and likewise for columns, so the
 * windows cover the plane even when OH does not divide H (neighbouring windows may then overlap).
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Size2): Tensor {
  const op = 'adaptiveAvgPool2d';
  return batched(op, x, (x4) => {
    const [n, c, h, w] = x4.shape as [number, number, number, number];
    const [oh, ow] = pair(op, 'outputSize', outputSize);
    if (oh < 1 || ow < 1) throw new OpError(op, `outputSize must be positive, got [${oh}, ${ow}]`);
    if (h < 1 || w < 1) throw new OpError(op, `needs a non-empty plane, got input ${fmtShape(x4.shape)}`);
    const attrs: AvgPool2dAttrs = {
      kernel: [1, 1],
      stride: [1, 1],
      padding: [0, 0],
      countIncludePad: false,
      adaptive: true,
    };
    return runKernel('avgPool2d', [x4], attrs, [n, c, oh, ow], x4.dtype);
  });
}

/** The input gradient of `maxPool2d`: gy routed to each window's saved argmax. Not differentiable. */
export function maxPool2dBackward(
  grad: Tensor,
  argmax: Tensor,
  inputShape: readonly number[],
  attrs: MaxPool2dAttrs,
): Tensor {
  return runKernel('maxPool2dBackward', [grad, argmax], attrs, inputShape, grad.dtype);
}

/** The input gradient of `avgPool2d` / `adaptiveAvgPool2d` for an input of `inputShape`. Not differentiable. */
export function avgPool2dBackward(grad: Tensor, inputShape: readonly number[], attrs: AvgPool2dAttrs): Tensor {
  return runKernel('avgPool2dBackward', [grad], attrs, inputShape, grad.dtype);
}
