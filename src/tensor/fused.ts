// The fused row ops: softmax cross-entropy and layer normalization over the last dim of a 2-D tensor,
// each a forward kernel that also writes the row statistics its backward reuses (an auxiliary output
// kept by the graph) and backward kernels that read them. nn/functional.ts builds the public
// F.crossEntropy and F.layerNorm on these; gradient rules (autograd/rules.ts) call the backward ones.
import { isFloat } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import type { CrossEntropyAttrs } from '../ops/opcodes.js';
import { runKernel } from './engine.js';
import type { Tensor } from './tensor.js';

function check(op: string, ok: boolean, what: () => string): void {
  if (!ok) throw new OpError(op, what());
}

const is1d = (t: Tensor, n: number): boolean => t.ndim === 1 && t.shape[0] === n;

/**
 * Per-row softmax cross-entropy: for logits (N, C) (any strides) and int32 targets (N), row r's loss
 * is lse_r - (1 - eps) * z[r, t_r] - eps * mean_c z[r, c] with lse_r = log sum_c exp z[r, c], which is
 * (1 - eps) * -logSoftmax[t_r] + eps * mean_c -logSoftmax[c]; 0 where t_r == ignoreIndex. A target
 * outside [0, C) that is not ignoreIndex is an error (thrown at once on the CPU, at the next read on
 * WebGPU). Returns (N) in the logits' dtype; the graph keeps logits, targets and each row's lse.
 */
export function crossEntropyRows(logits: Tensor, targets: Tensor, attrs: CrossEntropyAttrs): Tensor {
  const op = 'crossEntropyRows';
  check(
    op,
    isFloat(logits.dtype) && logits.ndim === 2,
    () => `needs float logits (N, C), got ${logits.dtype} ${fmtShape(logits.shape)}`,
  );
  const n = logits.shape[0]!;
  check(
    op,
    targets.dtype === 'int32' && is1d(targets, n),
    () => `needs int32 targets [${n}], got ${targets.dtype} ${fmtShape(targets.shape)}`,
  );
  return runKernel(op, [logits, targets], attrs, [n], logits.dtype, { aux: [{ shape: [n], dtype: 'float32' }] });
}

/**
 * The logits gradient of `crossEntropyRows` in one pass: grad[r] * (softmax(z_r) - (1 - eps) *
 * onehot(t_r) - eps / C), 0 on ignored rows, from the row lse the forward saved. Not differentiable.
 */
export function crossEntropyRowsBackward(
  logits: Tensor,
  targets: Tensor,
  lse: Tensor,
  grad: Tensor,
  attrs: CrossEntropyAttrs,
): Tensor {
  const op = 'crossEntropyRowsBackward';
  const n = logits.shape[0]!;
  check(
    op,
    logits.ndim === 2 && is1d(targets, n) && is1d(lse, n) && is1d(grad, n),
    () =>
      `needs logits (N, C) and targets, lse, grad (N); got ${[logits, targets, lse, grad].map((t) => fmtShape(t.shape)).join(', ')}`,
  );
  check(
    op,
    lse.dtype === 'float32' && grad.dtype === logits.dtype,
    () => `needs float32 lse and grad of the logits' dtype`,
  );
  return runKernel(op, [logits, targets, lse, grad], attrs, logits.shape, logits.dtype);
}

/**
 * Layer normalization of each row of x (rows, D) (any strides): (x - mean) * rstd * weight + bias with
 * rstd = 1 / sqrt(biased var + eps); weight and bias are (D) tensors of x's dtype, or null (1 and 0).
 * The graph keeps x, weight and each row's [mean, rstd] (float32).
 */
export function layerNormRows(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
  const op = 'layerNorm';
  check(
    op,
    isFloat(x.dtype) && x.ndim === 2,
    () => `needs a float (rows, D) input, got ${x.dtype} ${fmtShape(x.shape)}`,
  );
  const [rows, d] = x.shape as [number, number];
  for (const p of [weight, bias]) {
    if (p)
      check(
        op,
        p.dtype === x.dtype && is1d(p, d),
        () => `weight and bias must be ${x.dtype} [${d}], got ${p.dtype} ${fmtShape(p.shape)}`,
      );
  }
  return runKernel(op, [x, weight ?? 1, bias ?? 0], { eps }, x.shape, x.dtype, {
    aux: [{ shape: [rows, 2], dtype: 'float32' }],
  });
}

/**
 * The input gradient of `layerNormRows`, one pass per row: rstd * (gy*w - mean(gy*w) - xhat *
 * mean(gy*w * xhat)) with xhat = (x - mean) * rstd from the saved `stats`. Not differentiable.
 */
export function layerNormBackward(x: Tensor, weight: Tensor | number, stats: Tensor, grad: Tensor): Tensor {
  return runKernel('layerNormBackward', [x, weight, stats, grad], {}, x.shape, x.dtype);
}

/**
 * The weight and bias gradients of `layerNormRows` as column sums over the rows: (2, D) holding
 * [sum_r gy * xhat; sum_r gy] (view rows 0 and 1 for the two gradients). Not differentiable.
 */
export function layerNormParamsBackward(x: Tensor, stats: Tensor, grad: Tensor): Tensor {
  return runKernel('layerNormParamsBackward', [x, stats, grad], {}, [2, x.shape[1]!], x.dtype);
}
