// The closed list of primitive ops: the contract between the tensor frontend and the backends.
// Composite ops (mean, var, attention, optimizers) are built from these; layerNorm and cross-entropy
// have fused row kernels (a forward op and backward ops) because a benchmark showed they pay.
// Every per-op table elsewhere is a mapped type over these unions, so a missing entry fails to compile.
import type { DType } from '../core/dtype.js';

/** Elementwise ops of one input. */
export const UNARY_OPS = [
  'neg', 'abs', 'sign', 'exp', 'log', 'sqrt', 'rsqrt', 'reciprocal', 'sin', 'cos', 'tanh',
  'sigmoid', 'relu', 'gelu', 'floor', 'ceil', 'round', 'logicalNot',
] as const; // prettier-ignore
/** Elementwise ops of two inputs (either may be a scalar). */
export const BINARY_OPS = [
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
  'logicalAnd', 'logicalOr', 'geluGrad',
] as const; // prettier-ignore
/** Reductions over a set of axes. */
export const REDUCE_OPS = ['sum', 'max', 'min', 'argmax', 'argmin'] as const;

/** A unary elementwise op. */
export type UnaryOp = (typeof UNARY_OPS)[number];
/** A binary elementwise op. `geluGrad(x, g)` is GELU's backward: g * gelu'(x). */
export type BinaryOp = (typeof BINARY_OPS)[number];
/** A reduction op. */
export type ReduceOp = (typeof REDUCE_OPS)[number];

/** Ops that run a kernel on a backend. */
export type KernelOp =
  | UnaryOp
  | BinaryOp
  | ReduceOp
  | 'where' // (cond, a, b) -> cond ? a : b
  | 'cast'
  | 'copy' // materialize a strided view (also the engine of in-place assignment)
  // batched, broadcasting, operands read through their strides (transposes are free); the epilogue
  // (AttrMap.matmul) adds an optional bias (n) broadcast over every row, applies an optional activation and
  // adds an optional residual of the output's shape: inputs (a, b[, bias][, residual]) -> act(a @ b + bias)
  // + residual; with an activation it also writes the pre-activation h = a @ b + bias (aux, output dtype)
  | 'matmul'
  | 'softmax'
  | 'logSoftmax'
  | 'gather' // torch.gather(self, dim, index)
  | 'scatterAdd' // self + scatter_add(dim, index, src), out of place
  | 'indexSelect' // torch.index_select(self, dim, index); embedding is indexSelect on dim 0
  | 'indexAdd' // self + index_add(dim, index, src), out of place
  | 'concat'
  | 'fill'
  | 'arange'
  | 'randUniform'
  | 'randNormal'
  // one Adam/AdamW step over flat float32 buffers, IN PLACE: inputs (grad, expAvg, expAvgSq[, maxExpAvgSq]),
  // output the parameter; the kernel also writes the moment inputs (WebGPU binds them read_write). All
  // operands are contiguous, of equal length, in distinct buffers. See tensor/optimstep.ts.
  | 'adamw'
  // fused row kernels (see tensor/fused.ts); the forward ops write an auxiliary output saved for backward
  | 'crossEntropyRows' // (logits (N, C), int32 targets (N)) -> per-row loss (N); aux: row logsumexp (N) f32
  | 'crossEntropyRowsBackward' // (logits, targets, lse, per-row grad) -> dlogits (N, C) in one pass
  | 'layerNorm' // (x (rows, D), weight (D) or 1, bias (D) or 0) -> y; aux: per-row [mean, rstd] (rows, 2) f32
  | 'layerNormBackward' // (x, weight or 1, stats, gy) -> gx (rows, D)
  | 'layerNormParamsBackward' // (x, stats, gy) -> (2, D): [sum_r gy * xhat; sum_r gy]
  // 2-D convolution (torch.nn.functional.conv2d), all operands contiguous (see tensor/conv.ts)
  | 'conv2d' // (x (N, C, H, W), w (O, C/groups, KH, KW)[, bias (O)]) -> y (N, O, OH, OW)
  | 'conv2dBackwardInput' // (gy (N, O, OH, OW), w) -> gx (N, C, H, W)
  | 'conv2dBackwardWeight' // (x, gy) -> gw (O, C/groups, KH, KW)
  // 2-D pooling of the planes of x (N, C, H, W), any strides (see tensor/pool.ts); the backward kernels
  // gather over the windows that contain each input element (no atomics, no scatter races)
  | 'maxPool2d' // x -> y (N, C, OH, OW); aux: int32 argmax h * W + w within the plane (-1 for an empty window)
  | 'maxPool2dBackward' // (gy (N, C, OH, OW), argmax) -> gx (N, C, H, W): gy routed to each window's argmax
  | 'avgPool2d' // x -> y (N, C, OH, OW): window means, fixed windows or adaptive ones (attrs.adaptive)
  | 'avgPool2dBackward' // gy (N, C, OH, OW) -> gx (N, C, H, W) (the output shape gives H and W)
  // batch normalization of x viewed as (N, C, L), per channel over N and L (see tensor/batchnorm.ts)
  | 'batchNormStats' // x -> (2, C) f32: [mean; biased variance], two passes per channel
  | 'batchNorm' // (x, mean (C), var (C), weight (C) or 1, bias (C) or 0[, residual]) -> [relu]((x - mean) * rsqrt(var + eps) * w + b [+ residual])
  | 'batchNormParamsBackward' // (x, mean, var, gy) -> (2, C): [sum gy * xhat; sum gy] over N and L
  | 'batchNormBackward' // (x, mean, var, w or 1, gy, sums (2, C) or 0) -> gx = w rstd (gy - (s1 + xhat s0) / NL)
  // fused attention forward (see tensor/attention.ts): (q (..., Tq, hs), k (..., Tk, hs), v (..., Tk, hv)), same
  // batch dims and float dtype, any strides -> softmax(causal(q k^T * scale)) v (..., Tq, hv); aux: row lse (..., Tq) f32
  | 'attention';

/** Ops that only re-describe storage (shape/strides/offset) and run no kernel. */
export type ViewOp = 'reshape' | 'permute' | 'slice' | 'expand';

/** Every op. */
export type OpCode = KernelOp | ViewOp;

/** Attributes of each op (normalized by the frontend before they reach a backend). */
export interface AttrMap {
  reduce: { axes: number[]; keepdim: boolean };
  where: Record<string, never>;
  cast: { dtype: DType };
  copy: Record<string, never>;
  /**
   * The fused epilogue: which optional inputs follow a and b (bias (n), then residual (out's shape and
   * dtype, any strides)) and the activation applied to a @ b + bias before the residual add. The output
   * has the residual's dtype: float32 with float16 operands is the autocast "cast" epilogue.
   */
  matmul: { bias?: boolean; residual?: boolean; activation?: MatmulActivation };
  /**
   * causal (last axis only): row i of the trailing (Tq, Tk) plane keeps keys j <= i + causal and writes 0
   * at the others; a row with no key left, or whose kept keys give NaN, is NaN throughout (as torch's
   * -Inf-masked softmax). null / absent: no mask.
   */
  softmax: { axis: number; causal?: number | null };
  logSoftmax: { axis: number };
  gather: { dim: number };
  scatterAdd: { dim: number };
  indexSelect: { dim: number };
  indexAdd: { dim: number };
  concat: { axis: number };
  fill: { value: number };
  arange: { start: number; step: number };
  /** Threefry key words and draw counter; see core/random.ts. */
  randUniform: { key0: number; key1: number; counter: number; low: number; high: number };
  randNormal: { key0: number; key1: number; counter: number; mean: number; std: number };
  adamw: AdamWAttrs;
  crossEntropyRows: CrossEntropyAttrs;
  crossEntropyRowsBackward: CrossEntropyAttrs;
  layerNorm: { eps: number };
  layerNormBackward: Record<string, never>;
  layerNormParamsBackward: Record<string, never>;
  /** `activation: 'relu'` clamps the output (after the bias) at 0 in the kernel's store. */
  conv2d: Conv2dAttrs & { activation?: 'relu' };
  conv2dBackwardInput: Conv2dAttrs & { inputSize: [number, number] };
  conv2dBackwardWeight: Conv2dAttrs & { kernelSize: [number, number] };
  maxPool2d: MaxPool2dAttrs;
  maxPool2dBackward: MaxPool2dAttrs;
  avgPool2d: AvgPool2dAttrs;
  avgPool2dBackward: AvgPool2dAttrs;
  batchNormStats: Record<string, never>;
  /**
   * `training`: mean and var are x's own batch statistics, so the gradient rule differentiates through them.
   * `residual`: a sixth input r (N, C, L) is added after the affine map; `relu`: the sum is clamped at 0
   * (y = relu(bn(x) + r), ResNet's block tail in one kernel). Both default to false.
   */
  batchNorm: { eps: number; training: boolean; relu?: boolean; residual?: boolean };
  batchNormParamsBackward: { eps: number };
  batchNormBackward: { eps: number };
  /** `causal`: query i sees keys j <= i + causal (the softmax's meaning); null: every key. */
  attention: { scale: number; causal: number | null };
  reshape: { shape: number[] };
  permute: { dims: number[] };
  slice: { axis: number; start: number; end: number; step: number };
  expand: { shape: number[] };
}

/** Activations matmul's epilogue applies: tanh-GELU (the `gelu` op's formula) and ReLU. */
export type MatmulActivation = 'gelu' | 'relu';

/**
 * Attributes of the conv2d ops, normalized to (height, width) pairs: output size along a dim is
 * floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1; `groups` divides C and O.
 */
export interface Conv2dAttrs {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/**
 * Window geometry of max pooling, as (height, width) pairs: output row oh covers input rows
 * oh * stride - padding + i * dilation for i < kernel (out of range rows are skipped). The output size
 * (which ceil mode changed) comes with the output shape, the input size with the input's.
 */
export interface MaxPool2dAttrs {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
}

/**
 * Window geometry of average pooling (torch.nn.functional.avg_pool2d): rows [oh * stride - padding,
 * + kernel) clipped to the padded input for the divisor when `countIncludePad`, to the input otherwise.
 * With `adaptive` the windows are instead [floor(oh * H / OH), ceil((oh + 1) * H / OH)) (adaptive_avg_pool2d)
 * and kernel, stride and padding are unused.
 */
export interface AvgPool2dAttrs {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  countIncludePad: boolean;
  adaptive: boolean;
}

/** Attributes of the fused cross-entropy ops: targets equal to `ignoreIndex` give 0; smoothing in [0, 1]. */
export interface CrossEntropyAttrs {
  ignoreIndex: number;
  labelSmoothing: number;
}

/**
 * Attributes of `adamw`: torch.optim.Adam/AdamW's hyperparameters and the 1-based step count `step`
 * (bias corrections 1 - beta^step are computed from it by the kernels). `decoupled` selects AdamW's
 * decay θ·(1 - lr·λ) over Adam's L2 term λ·θ added to the gradient; `amsgrad` adds the 4th input.
 */
export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  maximize: boolean;
  amsgrad: boolean;
  step: number;
}

/** The attribute type of op K. */
export type Attrs<K extends OpCode> = K extends UnaryOp | BinaryOp
  ? Record<string, never>
  : K extends ReduceOp
    ? AttrMap['reduce']
    : K extends keyof AttrMap
      ? AttrMap[K]
      : never;

const unarySet: ReadonlySet<string> = new Set(UNARY_OPS);
const binarySet: ReadonlySet<string> = new Set(BINARY_OPS);
const reduceSet: ReadonlySet<string> = new Set(REDUCE_OPS);

/** Narrowing helpers for the op families. */
export const isUnary = (op: OpCode): op is UnaryOp => unarySet.has(op);
export const isBinary = (op: OpCode): op is BinaryOp => binarySet.has(op);
export const isReduce = (op: OpCode): op is ReduceOp => reduceSet.has(op);
