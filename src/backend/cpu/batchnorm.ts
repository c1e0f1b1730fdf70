// Batch normalization on the CPU over x viewed as (N, C, L): per-channel statistics in two passes
// (mean, then squared deviations) in doubles, the normalize+affine map, and the backward pair (the
// per-channel sums [sum gy * xhat; sum gy], then the input gradient that uses them). Each (n, c) row of
// L elements is read through its strides into a contiguous row of doubles.
import type { TypedArray } from '../../core/dtype.js';
import { isScalar, type Operand, type TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { readF64, scratchF64, writeF64 } from './strided.js';

/** A (C) operand as C doubles in scratch slot `slot` (a scalar operand repeats its value). */
function perChannel(o: Operand, c: number, slot: number): Float64Array {
  const v = scratchF64(slot, c);
  if (isScalar(o)) v.fill(o.scalar, 0, c);
  else readF64(view(o.buffer, o.dtype), o.dtype, o.offset, o.strides[0] ?? 0, c, v);
  return v;
}

/** Reads row (n, c) of a (N, C, L) spec into dst[0 .. L). */
function readRow(t: TensorSpec, arr: TypedArray, n: number, c: number, dst: Float64Array): void {
  const [sn, sc, sl] = t.strides as [number, number, number];
  readF64(arr, t.dtype, t.offset + n * sn + c * sc, sl, t.shape[2]!, dst);
}

/** Per-channel rstd = 1 / sqrt(var + eps) in scratch slot `slot`. */
function rstdOf(variance: Float64Array, c: number, eps: number, slot: number): Float64Array {
  const r = scratchF64(slot, c);
  for (let i = 0; i < c; i++) r[i] = 1 / Math.sqrt(variance[i]! + eps);
  return r;
}

/** Input: x (N, C, L). Writes out (2, C) float32: [mean; biased variance] over N and L per channel. */
export function batchNormStats(inputs: readonly Operand[], out: TensorSpec): void {
  const x = inputs[0] as TensorSpec;
  const [n, c, l] = x.shape as [number, number, number];
  const src = view(x.buffer, x.dtype);
  const dst = view(out.buffer, out.dtype);
  const row = scratchF64(0, l);
  const m = n * l;
  for (let ci = 0; ci < c; ci++) {
    let s = 0;
    for (let ni = 0; ni < n; ni++) {
      readRow(x, src, ni, ci, row);
      for (let j = 0; j < l; j++) s += row[j]!;
    }
    const mean = s / m;
    let q = 0;
    for (let ni = 0; ni < n; ni++) {
      readRow(x, src, ni, ci, row);
      for (let j = 0; j < l; j++) {
        const e = row[j]! - mean;
        q += e * e;
      }
    }
    dst[out.offset + ci] = mean;
    dst[out.offset + c + ci] = q / m;
  }
}

/**
 * Inputs: x (N, C, L), mean (C), var (C), weight (C) or scalar, bias (C) or scalar[, residual (N, C, L)
 * when `residual`]. Writes y (N, C, L) = the affine map, plus the residual, clamped at 0 when `relu`.
 */
export function batchNorm(
  inputs: readonly Operand[],
  out: TensorSpec,
  eps: number,
  relu = false,
  residual = false,
): void {
  const x = inputs[0] as TensorSpec;
  const [n, c, l] = x.shape as [number, number, number];
  const mean = perChannel(inputs[1]!, c, 1);
  const rstd = rstdOf(perChannel(inputs[2]!, c, 2), c, eps, 3);
  const w = perChannel(inputs[3]!, c, 4);
  const b = perChannel(inputs[4]!, c, 5);
  const src = view(x.buffer, x.dtype);
  const dst = view(out.buffer, out.dtype);
  const row = scratchF64(0, l);
  const r = residual ? (inputs[5] as TensorSpec) : null;
  const rs = r ? view(r.buffer, r.dtype) : null;
  const rrow = r ? scratchF64(6, l) : null;
  for (let ni = 0; ni < n; ni++) {
    for (let ci = 0; ci < c; ci++) {
      // y = x * scale + shift, the affine map folded per channel
      const scale = rstd[ci]! * w[ci]!;
      const shift = b[ci]! - mean[ci]! * scale;
      readRow(x, src, ni, ci, row);
      for (let j = 0; j < l; j++) row[j] = row[j]! * scale + shift;
      if (r && rrow) {
        readRow(r, rs!, ni, ci, rrow);
        for (let j = 0; j < l; j++) row[j] = row[j]! + rrow[j]!;
      }
      if (relu) for (let j = 0; j < l; j++) row[j] = Math.max(row[j]!, 0);
      writeF64(row, 0, l, dst, out.dtype, out.offset + (ni * c + ci) * l, 1);
    }
  }
}

/** Inputs: x, mean, var, gy (N, C, L). Writes out (2, C): [sum gy * xhat; sum gy] per channel. */
export function batchNormParamsBackward(inputs: readonly Operand[], out: TensorSpec, eps: number): void {
  const x = inputs[0] as TensorSpec;
  const g = inputs[3] as TensorSpec;
  const [n, c, l] = x.shape as [number, number, number];
  const mean = perChannel(inputs[1]!, c, 1);
  const rstd = rstdOf(perChannel(inputs[2]!, c, 2), c, eps, 3);
  const xs = view(x.buffer, x.dtype);
  const gs = view(g.buffer, g.dtype);
  const dst = view(out.buffer, out.dtype);
  const xr = scratchF64(0, l);
  const gr = scratchF64(4, l);
  const sums = scratchF64(5, 2 * c);
  for (let ci = 0; ci < c; ci++) {
    let sxh = 0;
    let sg = 0;
    for (let ni = 0; ni < n; ni++) {
      readRow(x, xs, ni, ci, xr);
      readRow(g, gs, ni, ci, gr);
      const mu = mean[ci]!;
      for (let j = 0; j < l; j++) {
        const v = gr[j]!;
        sxh += v * (xr[j]! - mu);
        sg += v;
      }
    }
    sums[ci] = sxh * rstd[ci]!;
    sums[c + ci] = sg;
  }
  writeF64(sums, 0, 2 * c, dst, out.dtype, out.offset, 1);
}

/**
 * Inputs: x, mean, var, weight (C) or scalar, gy (N, C, L), sums (2, C) or scalar 0 (eval mode: the
 * statistics are constants). Writes gx = w * rstd * (gy - (sums[1] + xhat * sums[0]) / (N * L)).
 */
export function batchNormBackward(inputs: readonly Operand[], out: TensorSpec, eps: number): void {
  const x = inputs[0] as TensorSpec;
  const g = inputs[4] as TensorSpec;
  const so = inputs[5]!;
  const [n, c, l] = x.shape as [number, number, number];
  const mean = perChannel(inputs[1]!, c, 1);
  const rstd = rstdOf(perChannel(inputs[2]!, c, 2), c, eps, 3);
  const w = perChannel(inputs[3]!, c, 4);
  const sums = scratchF64(5, 2 * c);
  if (isScalar(so)) sums.fill(so.scalar, 0, 2 * c);
  else {
    const sv = view(so.buffer, so.dtype);
    readF64(sv, so.dtype, so.offset, so.strides[1]!, c, sums, 0);
    readF64(sv, so.dtype, so.offset + so.strides[0]!, so.strides[1]!, c, sums, c);
  }
  const m = n * l;
  const xs = view(x.buffer, x.dtype);
  const gs = view(g.buffer, g.dtype);
  const dst = view(out.buffer, out.dtype);
  const xr = scratchF64(0, l);
  const gr = scratchF64(6, l);
  for (let ni = 0; ni < n; ni++) {
    for (let ci = 0; ci < c; ci++) {
      readRow(x, xs, ni, ci, xr);
      readRow(g, gs, ni, ci, gr);
      const [mu, r] = [mean[ci]!, rstd[ci]!];
      const k = w[ci]! * r;
      const s0 = sums[ci]! / m;
      const s1 = sums[c + ci]! / m;
      for (let j = 0; j < l; j++) xr[j] = k * (gr[j]! - s1 - (xr[j]! - mu) * r * s0);
      writeF64(xr, 0, l, dst, out.dtype, out.offset + (ni * c + ci) * l, 1);
    }
  }
}
