// The convolutional layers: Conv2d, BatchNorm2d, the pooling layers and Flatten, with PyTorch's
// parameter/buffer names and default initialization, so that torchvision state dicts load unchanged.
import { OpError, fmtShape } from '../core/errors.js';
import {
  adaptiveAvgPool2d,
  avgPool2d,
  batchNorm,
  conv2d,
  convTranspose2d,
  maxPool2d,
  noGrad,
  ones,
  rand,
  zeros,
  type AvgPool2dOptions,
  type Conv2dOptions,
  type ConvTranspose2dOptions,
  type MaxPool2dOptions,
  type Size2,
  type Tensor,
} from '../tensor/index.js';
import type { FactoryOptions } from './layers.js';
import { Module, type Parameter } from './module.js';

/**
 * A conv layer's kernel size as [KH, KW], after checking that the channel counts, kernel size and groups
 * are positive integers and both channel counts divisible by groups (errors name `op`).
 */
function checkedKernel(
  op: string,
  inChannels: number,
  outChannels: number,
  kernelSize: Size2,
  groups: number,
): [number, number] {
  const k: [number, number] =
    typeof kernelSize === 'number' ? [kernelSize, kernelSize] : [kernelSize[0], kernelSize[1]];
  for (const [what, v] of [
    ['inChannels', inChannels],
    ['outChannels', outChannels],
    ['kernelSize', k[0]],
    ['kernelSize', k[1]],
    ['groups', groups],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new OpError(op, `${what} must be a positive integer, got ${v}`);
  }
  if (inChannels % groups || outChannels % groups)
    throw new OpError(
      op,
      `inChannels ${inChannels} and outChannels ${outChannels} must both be divisible by groups ${groups}`,
    );
  return k;
}

/** `rand` options for U(-1/sqrt(fanIn), 1/sqrt(fanIn)), the conv layers' weight and bias initialization. */
function uniformInit(fanIn: number, opts: FactoryOptions) {
  const bound = 1 / Math.sqrt(fanIn);
  return { low: -bound, high: bound, device: opts.device, dtype: opts.dtype, generator: opts.generator };
}

/** Options of `Conv2d` beyond the channel counts and kernel size. */
export interface Conv2dLayerOptions extends FactoryOptions, Conv2dOptions {
  /** Learn an additive bias per output channel (default true). */
  bias?: boolean;
}

/**
 * 2-D convolution layer: weight (outChannels, inChannels/groups, KH, KW) and bias (outChannels), both
 * initialized U(-1/sqrt(fanIn), 1/sqrt(fanIn)) with fanIn = inChannels/groups * KH * KW (what torch's
 * kaiming_uniform(a=sqrt(5)) and its bias rule work out to).
 */
export class Conv2d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: [number, number];
  private readonly conv: Conv2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Size2,
    opts: Conv2dLayerOptions = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    const k = checkedKernel('Conv2d', inChannels, outChannels, kernelSize, groups);
    this.kernelSize = k;
    const { stride, padding, dilation, activation } = opts;
    this.conv = { stride, padding, dilation, groups, activation };
    const init = uniformInit((inChannels / groups) * k[0] * k[1], opts);
    this.weight = this.param(rand([outChannels, inChannels / groups, k[0], k[1]], init));
    this.bias = (opts.bias ?? true) ? this.param(rand([outChannels], init)) : null;
  }

  /** (N, inChannels, H, W) -> (N, outChannels, OH, OW). */
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels)
      throw new OpError(
        'Conv2d',
        `input ${fmtShape(x.shape)} must be (N, ${this.inChannels}, H, W) for weight ${fmtShape(this.weight.shape)}`,
      );
    return conv2d(x, this.weight, this.bias, this.conv);
  }
}

/** Options of `ConvTranspose2d` beyond the channel counts and kernel size. */
export interface ConvTranspose2dLayerOptions extends FactoryOptions, ConvTranspose2dOptions {
  /** Learn an additive bias per output channel (default true). */
  bias?: boolean;
}

/**
 * Transposed 2-D convolution layer, as torch.nn.ConvTranspose2d: weight (inChannels, outChannels/groups,
 * KH, KW) and bias (outChannels), both U(-1/sqrt(fanIn), 1/sqrt(fanIn)) where torch's fan-in of that
 * weight layout is outChannels/groups * KH * KW.
 */
export class ConvTranspose2d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: [number, number];
  private readonly conv: ConvTranspose2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Size2,
    opts: ConvTranspose2dLayerOptions = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    const k = checkedKernel('ConvTranspose2d', inChannels, outChannels, kernelSize, groups);
    this.kernelSize = k;
    const { stride, padding, dilation, outputPadding } = opts;
    this.conv = { stride, padding, dilation, outputPadding, groups };
    const init = uniformInit((outChannels / groups) * k[0] * k[1], opts);
    this.weight = this.param(rand([inChannels, outChannels / groups, k[0], k[1]], init));
    this.bias = (opts.bias ?? true) ? this.param(rand([outChannels], init)) : null;
  }

  /** (N, inChannels, H, W) -> (N, outChannels, OH, OW), OH = (H - 1) * stride - 2 * padding + dilation * (KH - 1) + outputPadding + 1. */
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels)
      throw new OpError(
        'ConvTranspose2d',
        `input ${fmtShape(x.shape)} must be (N, ${this.inChannels}, H, W) for weight ${fmtShape(this.weight.shape)}`,
      );
    return convTranspose2d(x, this.weight, this.bias, this.conv);
  }
}

/** Options of `BatchNorm2d`. */
export interface BatchNorm2dOptions {
  eps?: number;
  /** Weight of the new batch in the running averages (default 0.1, as torch). */
  momentum?: number;
  /** Learn a per-channel scale (ones) and shift (zeros) (default true). */
  affine?: boolean;
  /** Keep running statistics for eval mode (default true); without them eval uses batch statistics. */
  trackRunningStats?: boolean;
  device?: FactoryOptions['device'];
  dtype?: FactoryOptions['dtype'];
}

/** What `BatchNorm2d.forward` can fuse into its normalize kernel. */
export interface BatchNormFuse {
  /** Added after the affine map (ResNet's shortcut), same shape as the input. */
  residual?: Tensor | null;
  /** Apply ReLU last. */
  relu?: boolean;
}

/**
 * Batch normalization over (N, H, W) per channel of (N, C, H, W) input, as torch.nn.BatchNorm2d: in
 * training it normalizes with the batch statistics and updates running_mean / running_var (unbiased
 * variance) in place and counts num_batches_tracked; in eval mode it uses the running statistics.
 */
export class BatchNorm2d extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  declare running_mean: Tensor | null;
  declare running_var: Tensor | null;
  declare num_batches_tracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number;

  constructor(
    readonly numFeatures: number,
    opts: BatchNorm2dOptions = {},
  ) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1)
      throw new OpError('BatchNorm2d', `numFeatures must be a positive integer, got ${numFeatures}`);
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    if (!(this.eps > 0)) throw new OpError('BatchNorm2d', `eps must be > 0, got ${this.eps}`);
    if (!(this.momentum >= 0 && this.momentum <= 1))
      throw new OpError('BatchNorm2d', `momentum must be in [0, 1], got ${this.momentum}`);
    const where = { device: opts.device, dtype: opts.dtype };
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param(ones([numFeatures], where)) : null;
    this.bias = affine ? this.param(zeros([numFeatures], where)) : null;
    if (opts.trackRunningStats ?? true) {
      this.registerBuffer('running_mean', zeros([numFeatures], where));
      this.registerBuffer('running_var', ones([numFeatures], where));
      this.registerBuffer('num_batches_tracked', zeros([], { device: opts.device, dtype: 'int32' }));
    } else {
      this.running_mean = this.running_var = this.num_batches_tracked = null;
    }
  }

  /**
   * (N, C, H, W) -> same shape. `fuse` adds a residual (x's shape) and/or applies ReLU inside the
   * normalize kernel: relu(bn(x) + residual), one dispatch instead of up to three.
   */
  forward(x: Tensor, fuse: BatchNormFuse = {}): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.numFeatures)
      throw new OpError('BatchNorm2d', `input ${fmtShape(x.shape)} must be (N, ${this.numFeatures}, H, W)`);
    const useBatchStats = this.training || !this.running_mean;
    if (this.training && this.num_batches_tracked) {
      const counter = this.num_batches_tracked;
      noGrad(() => counter.add_(1));
    }
    return batchNorm(x, this.running_mean, this.running_var, this.weight, this.bias, {
      training: useBatchStats,
      momentum: this.momentum,
      eps: this.eps,
      residual: fuse.residual ?? null,
      relu: fuse.relu ?? false,
    });
  }
}

/** Max pooling over KH x KW windows (stride defaults to the kernel size), as torch.nn.MaxPool2d. */
export class MaxPool2d extends Module {
  constructor(readonly opts: MaxPool2dOptions) {
    super();
  }

  /** (N, C, H, W) -> (N, C, OH, OW). */
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.opts);
  }
}

/** Average pooling over KH x KW windows (stride defaults to the kernel size), as torch.nn.AvgPool2d. */
export class AvgPool2d extends Module {
  constructor(readonly opts: AvgPool2dOptions) {
    super();
  }

  /** (N, C, H, W) -> (N, C, OH, OW). */
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.opts);
  }
}

/** Average pooling to a fixed output size (torch's bin boundaries), as torch.nn.AdaptiveAvgPool2d. */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Size2) {
    super();
  }

  /** (N, C, H, W) -> (N, C, outH, outW). */
  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
}

/** Flattens dims startDim..endDim into one (default 1..-1: (N, ...) -> (N, features)), as torch.nn.Flatten. */
export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }

  /** A view where strides allow, else a copy. */
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}
