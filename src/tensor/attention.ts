// Fused scaled dot-product attention: one kernel computes softmax(causal(q k^T * scale)) v without
// materializing the (..., Tq, Tk) scores (WebGPU: a flash-style online softmax; CPU: a plain reference
// loop). Only the forward is fused: the gradient (attentionGrads, called by autograd/rules.ts) recomputes
// the probabilities with the ordinary matmul and causal softmax ops, so the scores exist transiently.
import { isFloat } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import type { AttrMap } from '../ops/opcodes.js';
import { attentionShape } from '../ops/shapes.js';
import { binary, cast } from './elementwise.js';
import { runKernel } from './engine.js';
import { matmul } from './linalg.js';
import { softmax, sum } from './reduce.js';
import type { Tensor } from './tensor.js';
import { transpose } from './views.js';

/**
 * softmax(q k^T * scale, masked) v in one kernel, for q (..., Tq, hs), k (..., Tk, hs), v (..., Tk, hv) of
 * one float dtype and the same batch dims (any strides: permuted head views need no copy). `causal`:
 * query i sees keys j <= i + causal (the causal softmax's offset), null for no mask. Scores and the
 * softmax are computed in float32 (float64 on the CPU); the result has the operands' dtype. A query row
 * with no key left, or whose kept scores hold a NaN or +Inf, is NaN (as the causal softmax). The graph
 * keeps q, k, v and each row's logsumexp of the scaled, masked scores (float32, -Inf for an empty row).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, attrs: AttrMap['attention']): Tensor {
  const op = 'attention';
  const shape = attentionShape(q.shape, k.shape, v.shape);
  if (!isFloat(q.dtype) || k.dtype !== q.dtype || v.dtype !== q.dtype)
    throw new OpError(
      op,
      `q, k, v need one float dtype, got ${q.dtype} ${fmtShape(q.shape)}, ${k.dtype} ${fmtShape(k.shape)}, ${v.dtype} ${fmtShape(v.shape)}`,
    );
  const { scale, causal } = attrs;
  if (!Number.isFinite(scale)) throw new OpError(op, `scale must be a finite number, got ${scale}`);
  if (causal !== null && !Number.isInteger(causal))
    throw new OpError(op, `causal offset must be an integer or null, got ${causal} for q ${fmtShape(q.shape)}`);
  return runKernel(op, [q, k, v], { scale, causal }, shape, q.dtype, {
    aux: [{ shape: shape.slice(0, -1), dtype: 'float32' }],
  });
}

/**
 * The input gradients of `attention` from q, k, v and the output gradient g, recomputing with existing
 * ops (as the composite attention's backward would): P = softmax(causal(q*scale k^T)) in float32,
 * dV = P^T g, dP = g V^T, dS = P * (dP - sum(P * dP)), dQ = dS K * scale, dK = dS^T (q*scale). Float16
 * operands take the matmuls in float16 and the softmax terms in float32. `needs[i]`: input i's gradient.
 */
export function attentionGrads(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  g: Tensor,
  attrs: AttrMap['attention'],
  needs: readonly [boolean, boolean, boolean],
): [Tensor | null, Tensor | null, Tensor | null] {
  const low = q.dtype !== 'float32';
  const lo = (t: Tensor): Tensor => (low ? cast(t, q.dtype) : t);
  const hi = (t: Tensor): Tensor => (low ? cast(t, 'float32') : t);
  const qs = binary('mul', q, attrs.scale);
  const p = softmax(hi(matmul(qs, transpose(k))), -1, { causal: attrs.causal }); // (..., Tq, Tk) f32
  const gv = needs[2] ? matmul(transpose(lo(p)), g) : null;
  if (!needs[0] && !needs[1]) return [null, null, gv];
  const dp = hi(matmul(g, transpose(v)));
  const ds = lo(binary('mul', p, binary('sub', dp, sum(binary('mul', p, dp), -1, true))));
  const gq = needs[0] ? binary('mul', matmul(ds, k), attrs.scale) : null;
  const gk = needs[1] ? matmul(transpose(ds), qs) : null;
  return [gq, gk, gv];
}
