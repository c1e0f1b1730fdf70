// softmax and logSoftmax along one axis, numerically stable (the row max is subtracted first),
// computed in doubles per row and stored once in the output dtype (float32 or float16). Contiguous float32
// rows along the last axis, from a size on, run on the WASM SIMD row kernel instead (wasmrows.ts).
// The causal form (last axis of (..., Tq, Tk)) reduces only each row's valid prefix and zeroes the rest.
import { contiguousStrides, numel } from '../../core/shape.js';
import type { Operand, TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { RowIter, coalesce, readF64, scratchF64, writeF64 } from './strided.js';
import { wasmSoftmaxRows } from './wasmrows.js';

/**
 * softmax (log = false) or logSoftmax (log = true) of input 0 along `axis` into the contiguous `out`.
 * `causal` (axis last, shape (..., Tq, Tk)): row i of each (Tq, Tk) plane keeps keys j <= i + causal and
 * writes 0 (log: -Inf) at the others; a row with no key left, or whose prefix gives NaN, is NaN throughout
 * (as the old where(mask, x, -Inf) composition gives).
 */
export function softmax(
  log: boolean,
  inputs: readonly Operand[],
  out: TensorSpec,
  axis: number,
  causal: number | null = null,
): void {
  const x = inputs[0] as TensorSpec;
  if (numel(out.shape) === 0) return;
  const n = x.shape[axis] ?? 1;
  const tq = causal === null ? 1 : (x.shape[x.shape.length - 2] ?? 1);
  const sx = x.strides[axis] ?? 0;
  const oStrides = contiguousStrides(out.shape);
  const so = oStrides[axis] ?? 1;
  // Every position except the axis: walk x and out in lockstep.
  const restShape = x.shape.filter((_, d) => d !== axis);
  const xs = x.strides.filter((_, d) => d !== axis);
  const os = oStrides.filter((_, d) => d !== axis);
  if (
    x.dtype === 'float32' &&
    out.dtype === 'float32' &&
    axis === x.shape.length - 1 &&
    x.strides.every((s, d) => s === oStrides[d] || x.shape[d] === 1) &&
    wasmSoftmaxRows(
      log,
      numel(out.shape) / n,
      n,
      view(x.buffer, 'float32'),
      x.offset,
      view(out.buffer, 'float32'),
      out.offset,
      causal === null ? null : { tq, offset: causal },
    )
  )
    return;
  const it = new RowIter(coalesce(restShape, [xs, os]), [x.offset, out.offset]);
  const src = view(x.buffer, x.dtype);
  const dst = view(out.buffer, out.dtype);
  const row = scratchF64(0, n);
  for (let r = 0, lin = 0; r < it.rows; r++, it.next()) {
    let px = it.off[0]!;
    let po = it.off[1]!;
    for (let j = 0; j < it.len; j++, lin++, px += it.inner[0]!, po += it.inner[1]!) {
      // the row's valid prefix: rows run in row-major order, so lin % tq is the query index
      const lim = causal === null ? n : Math.min(n, Math.max(0, (lin % tq) + causal + 1));
      readF64(src, x.dtype, px, sx, lim, row);
      softmaxRow(log, lim, row);
      // a NaN row (no key left, or a NaN / all -Inf prefix: its first element is NaN) stays NaN throughout
      if (lim < n) row.fill(lim === 0 || Number.isNaN(row[0]) ? NaN : log ? -Infinity : 0, lim, n);
      writeF64(row, 0, n, dst, out.dtype, po, so);
    }
  }
}

/** In-place stable softmax / log-softmax of v[0..n). A row containing NaN gives NaN. */
function softmaxRow(log: boolean, n: number, v: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const y = v[i]!;
    if (y > max || y !== y) max = y;
  }
  if (max === -Infinity) max = 0; // all -Inf: exp gives 0s and sum 0, like torch (NaN for softmax)
  let sum = 0;
  if (log) {
    for (let i = 0; i < n; i++) sum += Math.exp(v[i]! - max);
    const lse = max + Math.log(sum);
    for (let i = 0; i < n; i++) v[i] = v[i]! - lse;
  } else {
    for (let i = 0; i < n; i++) {
      const e = Math.exp(v[i]! - max);
      v[i] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let i = 0; i < n; i++) v[i] = v[i]! * inv;
  }
}
