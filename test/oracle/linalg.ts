// Float64 references of matrix products: torch.matmul (1-D operands, broadcast batch dims),
// nn.Linear, and causal scaled-dot-product self-attention composed from them.
import { broadcastShape, broadcastTo, coordsOf, nd, reshape, transpose, type ND } from './ndarray.js';
import { add, mul, where } from './elementwise.js';
import { softmax } from './reduce.js';

/**
 * torch.matmul: 1-D @ 1-D is a dot product (0-d result); a 1-D left operand is a row vector and a
 * 1-D right operand a column vector, the added dim removed afterwards; dims before the last two
 * broadcast as batch dims. Plain triple loop, float64 accumulation.
 */
export function matmul(a: ND, b: ND): ND {
  if (a.shape.length === 0 || b.shape.length === 0) throw new Error('matmul: operands must be at least 1-D');
  const aVec = a.shape.length === 1;
  const bVec = b.shape.length === 1;
  const A0 = aVec ? reshape(a, [1, a.shape[0]!]) : a;
  const B0 = bVec ? reshape(b, [b.shape[0]!, 1]) : b;
  const m = A0.shape[A0.shape.length - 2]!;
  const k = A0.shape[A0.shape.length - 1]!;
  const k2 = B0.shape[B0.shape.length - 2]!;
  const n = B0.shape[B0.shape.length - 1]!;
  if (k !== k2) throw new Error(`matmul: [${a.shape.join(', ')}] @ [${b.shape.join(', ')}]: inner dims ${k} vs ${k2}`);
  const batch = broadcastShape(A0.shape.slice(0, -2), B0.shape.slice(0, -2));
  const A = broadcastTo(A0, [...batch, m, k]);
  const B = broadcastTo(B0, [...batch, k, n]);
  const outShape = [...batch, m, n];
  const out = nd(outShape);
  for (let o = 0; o < out.data.length; o++) {
    const c = coordsOf(o, outShape);
    const i = c[c.length - 2]!;
    const j = c[c.length - 1]!;
    const bIdx = Math.floor(o / (m * n)); // flat batch index, same in A, B and out
    let s = 0;
    for (let p = 0; p < k; p++) s += A.data[bIdx * m * k + i * k + p]! * B.data[bIdx * k * n + p * n + j]!;
    out.data[o] = s;
  }
  let shape = outShape;
  if (aVec) shape = [...shape.slice(0, -2), shape[shape.length - 1]!];
  if (bVec) shape = shape.slice(0, -1);
  return reshape(out, shape);
}

/** nn.functional.linear: x @ weight^T + bias, weight (out, in), bias (out). */
export function linear(x: ND, weight: ND, bias?: ND): ND {
  const y = matmul(x, transpose(weight, 0, 1));
  return bias ? add(y, bias) : y;
}

/** Options of `attention`. */
export interface AttentionOptions {
  /** Mask keys after the query position (key j > query i, top-left aligned as torch's is_causal). Default true. */
  causal?: boolean;
  /** Score scale; default 1/sqrt(head size). */
  scale?: number;
}

/**
 * Scaled dot-product attention, q (..., Tq, hs), k (..., Tk, hs), v (..., Tk, hv), e.g. (B, nh, T, hs):
 * softmax(q k^T * scale + mask) v with the mask -Inf where key j > query i when causal.
 */
export function attention(q: ND, k: ND, v: ND, opts: AttentionOptions = {}): ND {
  const hs = q.shape[q.shape.length - 1]!;
  const scale = opts.scale ?? 1 / Math.sqrt(hs);
  let scores = mul(matmul(q, transpose(k)), scale);
  if (opts.causal ?? true) {
    const tq = scores.shape[scores.shape.length - 2]!;
    const tk = scores.shape[scores.shape.length - 1]!;
    const allowed = nd([tq, tk]);
    for (let i = 0; i < tq; i++) for (let j = 0; j < tk; j++) allowed.data[i * tk + j] = j <= i ? 1 : 0;
    scores = where(allowed, scores, -Infinity);
  }
  return matmul(softmax(scores, -1), v);
}
