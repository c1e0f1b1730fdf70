// Fused layer normalization on the CPU over the rows of a (rows, D) input: the forward writes y and
// each row's [mean, rstd]; the backward writes the input gradient in one pass per row and the weight /
// bias gradients as column sums, both from the saved statistics. Rows are computed in doubles, except that
// contiguous float32 rows (forward and input gradient), from a size on, run on the WASM SIMD row kernels
// (wasmrows.ts: f32 lanes, sums in f64).
import { isScalar, type Operand, type TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { readF64, scratchF64, writeF64 } from './strided.js';
import { wasmLayerNormBackwardRows, wasmLayerNormRows } from './wasmrows.js';
import { wasmLayerNormParamsF32 } from './wasmreduce.js';

/** A (D) weight or bias operand as D doubles in scratch slot `slot` (a scalar operand repeats its value). */
function param(o: Operand, d: number, slot: number): Float64Array {
  const v = scratchF64(slot, d);
  if (isScalar(o)) v.fill(o.scalar, 0, d);
  else readF64(view(o.buffer, o.dtype), o.dtype, o.offset, o.strides[0] ?? 0, d, v);
  return v;
}

/** Inputs: x (rows, D), weight (D) or 1, bias (D) or 0, then the aux output stats (rows, 2, float32). */
export function layerNorm(inputs: readonly Operand[], out: TensorSpec, eps: number): void {
  const x = inputs[0] as TensorSpec;
  const st = inputs[3] as TensorSpec;
  const [rows, d] = x.shape as [number, number];
  const [sr, sc] = x.strides as [number, number];
  const w = param(inputs[1]!, d, 1);
  const b = param(inputs[2]!, d, 2);
  const src = view(x.buffer, x.dtype);
  const dst = view(out.buffer, out.dtype);
  const sv = view(st.buffer, 'float32');
  if (
    x.dtype === 'float32' &&
    out.dtype === 'float32' &&
    sc === 1 &&
    (sr === d || rows === 1) &&
    wasmLayerNormRows(rows, d, src as Float32Array, x.offset, w, b, eps, dst as Float32Array, out.offset, sv, st.offset)
  )
    return;
  const row = scratchF64(0, d);
  for (let r = 0; r < rows; r++) {
    readF64(src, x.dtype, x.offset + r * sr, sc, d, row);
    let s = 0;
    for (let j = 0; j < d; j++) s += row[j]!;
    const mean = s / d;
    let q = 0;
    for (let j = 0; j < d; j++) {
      const e = row[j]! - mean;
      row[j] = e;
      q += e * e;
    }
    const rstd = 1 / Math.sqrt(q / d + eps);
    for (let j = 0; j < d; j++) row[j] = row[j]! * rstd * w[j]! + b[j]!;
    writeF64(row, 0, d, dst, out.dtype, out.offset + r * d, 1);
    sv[st.offset + 2 * r] = mean;
    sv[st.offset + 2 * r + 1] = rstd;
  }
}

/**
 * Inputs: x (rows, D), weight (D) or 1, stats (rows, 2), gy (rows, D), any strides. Writes the
 * contiguous gx = rstd * (gy*w - mean(gy*w) - xhat * mean(gy*w * xhat)) with xhat = (x - mean) * rstd.
 */
export function layerNormBackward(inputs: readonly Operand[], out: TensorSpec): void {
  const x = inputs[0] as TensorSpec;
  const st = inputs[2] as TensorSpec;
  const g = inputs[3] as TensorSpec;
  const [rows, d] = x.shape as [number, number];
  const w = param(inputs[1]!, d, 1);
  const xs = view(x.buffer, x.dtype);
  const gs = view(g.buffer, g.dtype);
  const sv = view(st.buffer, 'float32');
  const dst = view(out.buffer, out.dtype);
  const rowMajor = (t: TensorSpec): boolean => t.strides[1] === 1 && (t.strides[0] === d || rows === 1);
  if (
    x.dtype === 'float32' &&
    g.dtype === 'float32' &&
    out.dtype === 'float32' &&
    rowMajor(x) &&
    rowMajor(g) &&
    wasmLayerNormBackwardRows(
      rows,
      d,
      xs as Float32Array,
      x.offset,
      gs as Float32Array,
      g.offset,
      w,
      sv,
      st.offset,
      dst as Float32Array,
      out.offset,
    )
  )
    return;
  const xh = scratchF64(0, d);
  const gy = scratchF64(2, d);
  for (let r = 0; r < rows; r++) {
    readF64(xs, x.dtype, x.offset + r * x.strides[0]!, x.strides[1]!, d, xh);
    readF64(gs, g.dtype, g.offset + r * g.strides[0]!, g.strides[1]!, d, gy);
    const mean = sv[st.offset + 2 * r]!;
    const rstd = sv[st.offset + 2 * r + 1]!;
    let sa = 0;
    let sb = 0;
    for (let j = 0; j < d; j++) {
      const h = (xh[j]! - mean) * rstd;
      const v = gy[j]! * w[j]!;
      xh[j] = h;
      gy[j] = v;
      sa += v;
      sb += v * h;
    }
    const ma = sa / d;
    const mb = sb / d;
    for (let j = 0; j < d; j++) xh[j] = rstd * (gy[j]! - ma - xh[j]! * mb);
    writeF64(xh, 0, d, dst, out.dtype, out.offset + r * d, 1);
  }
}

/** Inputs: x (rows, D), stats (rows, 2), gy (rows, D). Writes out (2, D) = [sum_r gy * xhat; sum_r gy]. */
export function layerNormParamsBackward(inputs: readonly Operand[], out: TensorSpec): void {
  const x = inputs[0] as TensorSpec;
  const st = inputs[1] as TensorSpec;
  const g = inputs[2] as TensorSpec;
  const [rows, d] = x.shape as [number, number];
  const xs = view(x.buffer, x.dtype);
  const gs = view(g.buffer, g.dtype);
  const sv = view(st.buffer, 'float32');
  const dst = view(out.buffer, out.dtype);
  if (x.dtype === 'float32' && g.dtype === 'float32' && out.dtype === 'float32') {
    if (x.strides[1] === 1 && g.strides[1] === 1) {
      const xv = { arr: xs as Float32Array, off: x.offset, rs: x.strides[0]! };
      const gv = { arr: gs as Float32Array, off: g.offset, rs: g.strides[0]! };
      if (wasmLayerNormParamsF32(rows, d, xv, gv, sv, st.offset, dst as Float32Array, out.offset)) return;
    }
  }
  const xr = scratchF64(0, d);
  const gr = scratchF64(1, d);
  const gw = scratchF64(2, d).fill(0, 0, d);
  const gb = scratchF64(3, d).fill(0, 0, d);
  for (let r = 0; r < rows; r++) {
    readF64(xs, x.dtype, x.offset + r * x.strides[0]!, x.strides[1]!, d, xr);
    readF64(gs, g.dtype, g.offset + r * g.strides[0]!, g.strides[1]!, d, gr);
    const mean = sv[st.offset + 2 * r]!;
    const rstd = sv[st.offset + 2 * r + 1]!;
    for (let j = 0; j < d; j++) {
      const v = gr[j]!;
      gw[j] = gw[j]! + v * (xr[j]! - mean) * rstd;
      gb[j] = gb[j]! + v;
    }
  }
  writeF64(gw, 0, d, dst, out.dtype, out.offset, 1);
  writeF64(gb, 0, d, dst, out.dtype, out.offset + d, 1);
}
