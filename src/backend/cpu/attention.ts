// Fused attention on the CPU: a straightforward reference (per batch-head, per query row, two passes in
// doubles) so that the op runs on every backend. It is not fast: scaledDotProductAttention keeps the
// composite path (WASM matmuls and the causal softmax row kernel) on the CPU.
import type { Attrs } from '../../ops/opcodes.js';
import type { Operand, TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { readF64, scratchF64, writeF64 } from './strided.js';

/** Element offset of batch index `b` (row-major over `batch`) in an operand with strides `st`. */
function batchOffset(b: number, batch: readonly number[], st: readonly number[], base: number): number {
  let off = base;
  for (let d = batch.length - 1; d >= 0; d--) {
    const n = batch[d]!;
    off += (b % n) * st[d]!;
    b = Math.floor(b / n);
  }
  return off;
}

/**
 * Inputs q (..., Tq, hs), k (..., Tk, hs), v (..., Tk, hv) (any strides), then the aux lse (..., Tq) f32;
 * writes out (..., Tq, hv) contiguous. Row i keeps keys j < clamp(i + causal + 1, 0, Tk); a kept score
 * that is NaN or +Inf makes the row NaN (lse NaN); no finite kept score: NaN row, lse -Inf.
 */
export function attention(inputs: readonly Operand[], out: TensorSpec, attrs: Attrs<'attention'>): void {
  const [q, k, v, lse] = inputs as [TensorSpec, TensorSpec, TensorSpec, TensorSpec];
  const r = q.shape.length;
  const batch = q.shape.slice(0, -2);
  const nb = batch.reduce((a, b) => a * b, 1);
  const [tq, hs] = [q.shape[r - 2]!, q.shape[r - 1]!];
  const tk = k.shape[r - 2]!;
  const hv = v.shape[r - 1]!;
  const [qa, ka, va] = [q, k, v].map((t) => view(t.buffer, t.dtype));
  const oa = view(out.buffer, out.dtype);
  const la = view(lse.buffer, 'float32');
  const qrow = scratchF64(0, hs);
  const kmat = scratchF64(1, tk * hs);
  const vmat = scratchF64(2, tk * hv);
  const s = scratchF64(3, tk);
  const acc = scratchF64(4, hv);
  for (let b = 0; b < nb; b++) {
    const [qb, kb, vb] = [q, k, v].map((t) => batchOffset(b, batch, t.strides, t.offset)) as [number, number, number];
    for (let j = 0; j < tk; j++) {
      readF64(ka!, k.dtype, kb + j * k.strides[r - 2]!, k.strides[r - 1]!, hs, kmat, j * hs);
      readF64(va!, v.dtype, vb + j * v.strides[r - 2]!, v.strides[r - 1]!, hv, vmat, j * hv);
    }
    for (let i = 0; i < tq; i++) {
      readF64(qa!, q.dtype, qb + i * q.strides[r - 2]!, q.strides[r - 1]!, hs, qrow);
      const lim = attrs.causal === null ? tk : Math.min(tk, Math.max(0, i + attrs.causal + 1));
      let m = -Infinity;
      let bad = false;
      for (let j = 0; j < lim; j++) {
        let d = 0;
        for (let c = 0; c < hs; c++) d += qrow[c]! * kmat[j * hs + c]!;
        const x = d * attrs.scale;
        s[j] = x;
        if (Number.isNaN(x) || x === Infinity) bad = true;
        else if (x > m) m = x;
      }
      const row = b * tq + i;
      acc.fill(0, 0, hv);
      let l = 0;
      if (!bad && m !== -Infinity) {
        for (let j = 0; j < lim; j++) {
          const p = Math.exp(s[j]! - m);
          l += p;
          for (let c = 0; c < hv; c++) acc[c] = acc[c]! + p * vmat[j * hv + c]!;
        }
        for (let c = 0; c < hv; c++) acc[c] = acc[c]! / l;
        la[lse.offset + row] = m + Math.log(l);
      } else {
        acc.fill(NaN, 0, hv);
        la[lse.offset + row] = bad ? NaN : -Infinity;
      }
      writeF64(acc, 0, hv, oa, out.dtype, out.offset + row * hv, 1);
    }
  }
}
