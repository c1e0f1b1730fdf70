// Stateless neural-network functions (torch.nn.functional): linear, layer norm, dropout, activations,
// losses and attention, each a composition of tensor ops run inside tidy() so intermediates are freed;
// layer norm and cross-entropy run on the fused row ops of tensor/fused.ts.
import { isFloat, isInt, promoteTypes } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import { numel } from '../core/shape.js';
import { autocastDType, autocastOperand } from './autocast.js';
import {
  arange,
  attention,
  cast,
  crossEntropyRows,
  defaultGenerator,
  layerNormRows,
  matmul,
  rand,
  reshape,
  softmax as softmaxOp,
  tidy,
  transpose,
  where,
  type DeviceLike,
  type Generator,
  type SoftmaxOptions,
  type Tensor,
} from '../tensor/index.js';

// the convolutional functions are single tensor ops; F re-exports them as torch.nn.functional has them
export { conv2d, convTranspose2d, maxPool2d, avgPool2d, adaptiveAvgPool2d, batchNorm } from '../tensor/index.js';

/** How a loss combines its per-element values. */
export type Reduction = 'mean' | 'sum' | 'none';

/** The fused epilogue of `linear`: both run in the matmul kernel (no separate dispatches). */
export interface LinearOptions {
  /** Applied to x @ weight^T + bias: 'gelu' (tanh approximation, as `Tensor.gelu`) or 'relu'. */
  activation?: 'gelu' | 'relu' | null;
  /**
   * Added after the activation, of the output's shape (..., out). Under float16 autocast a float32
   * residual is not cast: the result is then float32 (float16 products, float32 accumulation), as the
   * unfused `residual.add(linear(...))` would promote it.
   */
  residual?: Tensor | null;
}

/**
 * x @ weight^T + bias, with weight (out, in) and bias (out), for x (..., in) -> (..., out). Under
 * `autocast('float16', ...)` all three are cast to float16 first and the result is float16 (float32 with
 * a float32 residual). `opts` fuses an activation and a residual add: act(x @ weight^T + bias) + residual.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: LinearOptions = {}): Tensor {
  if (weight.ndim !== 2) throw new OpError('linear', `weight must be 2-D (out, in), got ${fmtShape(weight.shape)}`);
  const [outF, inF] = weight.shape as [number, number];
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new OpError(
      'linear',
      `input ${fmtShape(x.shape)} must end in ${inF} features (weight ${fmtShape(weight.shape)})`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF))
    throw new OpError('linear', `bias must have shape [${outF}], got ${fmtShape(bias.shape)}`);
  const res = opts.residual ?? null;
  const outShape = [...x.shape.slice(0, -1), outF];
  if (res && (res.ndim !== outShape.length || res.shape.some((d, i) => d !== outShape[i])))
    throw new OpError(
      'linear',
      `residual must have the output's shape ${fmtShape(outShape)}, got ${fmtShape(res.shape)}`,
    );
  return tidy(() => {
    // Flatten the leading dims so that the weight gradient is one 2-D matmul, not a batched one.
    const xc = autocastOperand(x);
    const x2 = xc.ndim === 2 ? xc : reshape(xc, [-1, inF]); // (N, in)
    // the residual is never cast: float32 over float16 operands selects the float32-output epilogue
    const r2 = res && res.ndim !== 2 ? reshape(res, [-1, outF]) : res; // (N, out)
    // (N, out); the transpose is a view; the bias (cast like the weight under autocast), the activation and
    // the residual are applied in the matmul kernel's epilogue: one dispatch, no separate elementwise ops
    const y = matmul(x2, transpose(autocastOperand(weight), 0, 1), bias ? autocastOperand(bias) : null, {
      activation: opts.activation ?? null,
      residual: r2,
    });
    return x.ndim === 2 ? y : reshape(y, outShape); // (..., out)
  });
}

/** Resolves a normalized shape (a size or a list of trailing sizes) against `x`. */
function trailingAxes(op: string, x: Tensor, normalizedShape: number | readonly number[]): number[] {
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  const tail = x.shape.slice(x.ndim - ns.length);
  if (ns.length === 0 || ns.length > x.ndim || tail.some((d, i) => d !== ns[i])) {
    throw new OpError(
      op,
      `normalized shape ${fmtShape(ns)} must match the trailing dims of the input ${fmtShape(x.shape)}`,
    );
  }
  return ns.map((_, i) => x.ndim - ns.length + i);
}

/**
 * Layer normalization over the trailing dims `normalizedShape`: (x - mean) / sqrt(var + eps) * weight
 * + bias, with the biased variance (correction 0), as torch.nn.functional.layer_norm. One fused kernel
 * over x viewed as (rows, D) (a copy only when the leading dims of x do not merge); its backward is one
 * kernel for x's gradient and one for weight's and bias's.
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  if (!isFloat(x.dtype)) throw new OpError('layerNorm', `needs a float input, got ${x.dtype}`);
  const axes = trailingAxes('layerNorm', x, normalizedShape);
  const ns = x.shape.slice(axes[0]);
  for (const [what, p] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (p && (p.ndim !== ns.length || p.shape.some((d, i) => d !== ns[i]))) {
      throw new OpError(
        'layerNorm',
        `${what} must have the normalized shape ${fmtShape(ns)}, got ${fmtShape(p.shape)}`,
      );
    }
  }
  const D = numel(ns);
  const rows = numel(x.shape.slice(0, axes[0]));
  let dtype = x.dtype;
  for (const p of [weight, bias]) if (p) dtype = promoteTypes(dtype, p.dtype, 'layerNorm');
  return tidy(() => {
    const x2 = reshape(cast(x, dtype), [rows, D]); // (rows, D)
    const param = (p: Tensor | null | undefined) => (p ? reshape(cast(p, dtype), [D]) : null); // (D)
    return reshape(layerNormRows(x2, param(weight), param(bias), eps), x.shape);
  });
}

/**
 * Inverted dropout: in training, zeroes each element with probability `p` (mask = uniform >= p) and
 * scales the rest by 1 / (1 - p); identity (returns `x` itself) when not training or p = 0.
 */
export function dropout(x: Tensor, p: number, training = true, generator?: Generator): Tensor {
  if (!(p >= 0 && p <= 1)) throw new OpError('dropout', `p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  if (!isFloat(x.dtype)) throw new OpError('dropout', `needs a float input, got ${x.dtype}`);
  return tidy(() => {
    if (p === 1) return x.mul(0);
    const keepMask = rand(x.shape, { generator: generator ?? defaultGenerator, device: x.device, dtype: x.dtype }).ge(
      p,
    );
    return where(keepMask, x.mul(1 / (1 - p)), 0);
  });
}

/** GELU, tanh approximation (torch's approximate='tanh', as GPT-2 uses). */
export function gelu(x: Tensor): Tensor {
  return x.gelu();
}

/** max(x, 0). */
export function relu(x: Tensor): Tensor {
  return x.relu();
}

/** Softmax along `axis` (default last); `opts.causal` fuses a causal mask (see the tensor op). */
export function softmax(x: Tensor, axis = -1, opts: SoftmaxOptions = {}): Tensor {
  return softmaxOp(x, axis, opts);
}

/** log(softmax(x)) along `axis` (default last), computed stably. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return x.logSoftmax(axis);
}

/** Options of `crossEntropy`. */
export interface CrossEntropyOptions {
  /** Targets equal to this add nothing and are not counted by the mean (default -100). */
  ignoreIndex?: number;
  /** Label smoothing epsilon in [0, 1] (default 0). */
  labelSmoothing?: number;
  /** 'mean' over the non-ignored targets (default), 'sum', or 'none' (per position, 0 where ignored). */
  reduction?: Reduction;
}

/**
 * torch.nn.functional.cross_entropy with class indices, the CLASS AXIS LAST: logits (..., C), e.g.
 * (N, C) or (B, T, C), and int32/uint32 targets shaped like the logits without the last dim. Per
 * position, with lp = logSoftmax(logits): loss = (1 - eps) * -lp[y] + eps * mean_c(-lp[c]); ignored
 * positions give 0, and 'mean' divides by the number of non-ignored ones (NaN when there are none, as
 * torch). Target values are not range-checked on the host (that would need a device read): a target
 * outside [0, C) that is not `ignoreIndex` makes the kernel throw on the CPU backend (on WebGPU, the
 * next read throws). One fused kernel over the logits viewed as (N, C) gives the per-position losses
 * (the reductions are compositions over them); the logits gradient is one kernel, written in one pass.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const eps = opts.labelSmoothing ?? 0;
  const reduction = opts.reduction ?? 'mean';
  if (!isFloat(logits.dtype)) throw new OpError('crossEntropy', `logits must be float, got ${logits.dtype}`);
  if (logits.ndim < 1)
    throw new OpError('crossEntropy', `logits need a class dim, got shape ${fmtShape(logits.shape)}`);
  if (!isInt(targets.dtype)) {
    throw new OpError(
      'crossEntropy',
      `targets must be int32 or uint32 class indices, got ${targets.dtype} (class probabilities are not supported)`,
    );
  }
  const lead = logits.shape.slice(0, -1);
  if (targets.ndim !== lead.length || targets.shape.some((d, i) => d !== lead[i])) {
    throw new OpError(
      'crossEntropy',
      `targets ${fmtShape(targets.shape)} must have the logits' shape without the class dim: logits ${fmtShape(logits.shape)} needs targets ${fmtShape(lead)}`,
    );
  }
  if (!(eps >= 0 && eps <= 1)) throw new OpError('crossEntropy', `labelSmoothing must be in [0, 1], got ${eps}`);
  if (!['mean', 'sum', 'none'].includes(reduction))
    throw new OpError('crossEntropy', `unknown reduction '${String(reduction)}'`);
  const C = logits.shape[logits.ndim - 1]!;
  const N = numel(lead);
  return tidy(() => {
    const t = reshape(cast(targets, 'int32'), [N]); // (N)
    // (N) per-position losses, 0 where ignored
    const loss = crossEntropyRows(reshape(logits, [N, C]), t, { ignoreIndex, labelSmoothing: eps });
    if (reduction === 'none') return reshape(loss, lead); // (...)
    const total = loss.sum();
    return reduction === 'sum' ? total : total.div(t.ne(ignoreIndex).sum().cast(logits.dtype));
  });
}

/** Mean (default), sum, or elementwise squared difference of two same-shaped tensors. */
export function mseLoss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  if (a.ndim !== b.ndim || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new OpError('mseLoss', `input ${fmtShape(a.shape)} and target ${fmtShape(b.shape)} must have the same shape`);
  }
  return tidy(() => {
    const d = a.sub(b);
    const sq = d.mul(d);
    return reduction === 'none' ? sq : reduction === 'sum' ? sq.sum() : sq.mean();
  });
}

/**
 * Bool (rows, cols) mask, true where key j may be seen from query i (j <= i; top-left aligned, as
 * torch's is_causal). `cols` defaults to `rows`.
 */
export function causalMask(rows: number, device?: DeviceLike, cols = rows): Tensor {
  return tidy(() => {
    const i = arange(0, rows, 1, { device }).reshape([rows, 1]);
    const j = arange(0, cols, 1, { device }).reshape([1, cols]);
    return j.le(i); // (rows, cols)
  });
}

/** Options of `scaledDotProductAttention`. */
export interface AttentionOptions {
  /** Hide keys after each query (key j > query i + causalOffset), fused into the softmax. Default false. */
  causal?: boolean;
  /**
   * Diagonal of the causal mask: query i sees keys j <= i + causalOffset. Default 0 (top-left aligned, as
   * torch's is_causal); Tk - Tq aligns the queries with the last keys (e.g. new positions after a KV cache).
   */
  causalOffset?: number;
  /** Bool mask (true = may attend) or float mask added to the scores, broadcastable to (..., Tq, Tk). */
  mask?: Tensor | null;
  /** Dropout on the attention weights (only when `training`). Default 0. */
  dropoutP?: number;
  /** Whether dropout is active. Default true (as torch's functional form). */
  training?: boolean;
  /** Score scale; default 1 / sqrt(head size). */
  scale?: number;
  /** Generator for the dropout mask. */
  generator?: Generator;
}

/**
 * softmax(q k^T * scale + mask) v for q (..., Tq, hs), k (..., Tk, hs), v (..., Tk, hv), e.g.
 * (B, nh, T, hs) -> (B, nh, T, hv). A query row whose keys are all masked gives NaN, as torch. Under
 * autocast both matmuls run in the autocast dtype and the masking and softmax in float32.
 * On WebGPU, without an explicit mask and with attention dropout inactive (p = 0 or not training), when
 * q, k, v share their batch dims and head sizes are at most 256, it runs the fused `attention` op (one
 * flash-style kernel: the (Tq, Tk) scores are never stored; the backward recomputes them). Otherwise, and
 * always on the CPU (whose WASM matmuls make the composite fast), it is matmul, causal softmax, dropout, matmul.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.ndim < 2 || k.ndim < 2 || v.ndim < 2)
    throw new OpError(
      'scaledDotProductAttention',
      `q, k, v need at least 2 dims, got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}`,
    );
  const hs = q.shape[q.ndim - 1]!;
  const Tk = k.shape[k.ndim - 2]!;
  if (k.shape[k.ndim - 1] !== hs || v.shape[v.ndim - 2] !== Tk) {
    throw new OpError(
      'scaledDotProductAttention',
      `shapes q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} do not fit (q, k share the head size; k, v the key length)`,
    );
  }
  const scale = opts.scale ?? 1 / Math.sqrt(hs);
  return tidy(() => {
    const [qc, kc, vc] = [q, k, v].map(autocastOperand) as [Tensor, Tensor, Tensor];
    const causal = opts.causal ? (opts.causalOffset ?? 0) : null;
    if (fusedAttention(qc, kc, vc, opts)) return attention(qc, kc, vc, { scale, causal });
    let att = matmul(qc.mul(scale), transpose(kc, -2, -1)); // (..., Tq, Tk); scaling q is cheaper than the scores
    if (autocastDType()) att = cast(att, 'float32'); // float16 scores: mask and softmax them in float32
    if (opts.mask) att = opts.mask.dtype === 'bool' ? where(opts.mask, att, -Infinity) : att.add(opts.mask);
    // the causal mask (key j <= query i + causalOffset) is fused into the softmax kernel
    att = softmaxOp(att, -1, { causal });
    att = dropout(att, opts.dropoutP ?? 0, opts.training ?? true, opts.generator);
    return matmul(autocastOperand(att), vc); // (..., Tq, hv)
  });
}

/** Whether scaledDotProductAttention takes the fused op (see its doc comment). */
function fusedAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): boolean {
  const dropout = (opts.dropoutP ?? 0) > 0 && (opts.training ?? true);
  const r = q.ndim;
  return (
    q.device === 'webgpu' &&
    isFloat(q.dtype) &&
    !opts.mask &&
    !dropout &&
    k.dtype === q.dtype &&
    v.dtype === q.dtype &&
    k.ndim === r &&
    v.ndim === r &&
    q.shape.slice(0, -2).every((d, i) => d === k.shape[i] && d === v.shape[i]) &&
    q.shape[r - 1]! <= 256 &&
    v.shape[r - 1]! <= 256
  );
}
