// Batched matmul: walks the (already broadcast) batch dims of A (..., M, K) and B (..., K, N) and
// runs one strided GEMM per batch item into the contiguous output (..., M, N), or one GEMM of all items'
// rows when B is broadcast: the WASM GEMV kernels for a few rows (wasmgemv.ts, KV-cached decoding), the
// WASM SIMD GEMM where it applies (float32, large enough), else the JS kernels. An optional bias (n) is
// added to every output row after the GEMMs (the epilogue of F.linear).
import { f16BitsToF32, f32ToF16Bits } from '../../core/float16.js';
import { numel } from '../../core/shape.js';
import type { Operand, TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { counters } from './counters.js';
import { gemm, type MatRef, type OutRef } from './gemm.js';
import { RowIter, coalesce } from './strided.js';
import { wasmGemm } from './wasmgemm.js';
import { wasmGemv } from './wasmgemv.js';

/**
 * out = A @ B (+ bias) over the batch dims; float32 or float16 operands, any strides (stride 0 on
 * broadcast dims); the optional third input is a bias (n) of the output's dtype, added to every row.
 */
export function matmul(inputs: readonly Operand[], out: TensorSpec): void {
  gemms(inputs, out);
  const bias = inputs[2] as TensorSpec | undefined;
  if (bias && numel(out.shape) > 0) addBias(bias, out);
}

/** out (contiguous, rows of n) += bias (n) broadcast over every row (float16: the sum rounded again). */
function addBias(bias: TensorSpec, out: TensorSpec): void {
  const n = out.shape[out.shape.length - 1]!;
  const rows = numel(out.shape) / n;
  const bArr = matArray(bias);
  const bs = bias.strides[0]!;
  const bv = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const x = bArr[bias.offset + j * bs]!;
    bv[j] = bias.dtype === 'float16' ? f16BitsToF32(x) : x;
  }
  if (out.dtype === 'float16') {
    const o = view(out.buffer, 'float16');
    for (let r = 0, p = out.offset; r < rows; r++)
      for (let j = 0; j < n; j++, p++) o[p] = f32ToF16Bits(f16BitsToF32(o[p]!) + bv[j]!);
  } else {
    const o = view(out.buffer, 'float32');
    for (let r = 0, p = out.offset; r < rows; r++) for (let j = 0; j < n; j++, p++) o[p] = o[p]! + bv[j]!;
  }
}

function gemms(inputs: readonly Operand[], out: TensorSpec): void {
  const a = inputs[0] as TensorSpec;
  const b = inputs[1] as TensorSpec;
  const nd = out.shape.length;
  const m = out.shape[nd - 2]!;
  const n = out.shape[nd - 1]!;
  const k = a.shape[a.shape.length - 1]!;
  if (numel(out.shape) === 0) return;
  const batch = out.shape.slice(0, nd - 2);
  const aArr = matArray(a);
  const bArr = matArray(b);
  const oArr = out.dtype === 'float16' ? view(out.buffer, 'float16') : view(out.buffer, 'float32');
  const ab = batchStrides(a, batch.length);
  const bb = batchStrides(b, batch.length);
  const [ars, acs] = a.strides.slice(-2) as [number, number];
  const [brs, bcs] = b.strides.slice(-2) as [number, number];
  const f16a = a.dtype === 'float16';
  const f16b = b.dtype === 'float16';
  const rows = foldedRows(batch, ab, bb, m, ars);
  if (rows > 0) {
    // B is shared by every batch item and A's rows run on across items with one stride: one GEMM of
    // (batch * M) rows stages and packs B once (the tied 50257-wide LM head) instead of once per item.
    const am: MatRef = { arr: aArr, f16: f16a, off: a.offset, rs: ars, cs: acs };
    const bm: MatRef = { arr: bArr, f16: f16b, off: b.offset, rs: brs, cs: bcs };
    const om: OutRef = { arr: oArr, dtype: out.dtype, off: out.offset };
    if (!wasmGemv(rows, n, k, am, bm, om) && !wasmGemm(rows, n, k, am, bm, om)) {
      gemm(rows, n, k, am, bm, om);
      counters.matmulJs++;
    }
    return;
  }
  const it = new RowIter(coalesce(batch, [ab, bb]), [a.offset, b.offset]);
  let oOff = out.offset;
  for (let r = 0; r < it.rows; r++, it.next()) {
    let pa = it.off[0]!;
    let pb = it.off[1]!;
    for (let j = 0; j < it.len; j++, pa += it.inner[0]!, pb += it.inner[1]!, oOff += m * n) {
      const am: MatRef = { arr: aArr, f16: f16a, off: pa, rs: ars, cs: acs };
      const bm: MatRef = { arr: bArr, f16: f16b, off: pb, rs: brs, cs: bcs };
      const om: OutRef = { arr: oArr, dtype: out.dtype, off: oOff };
      if (!wasmGemv(m, n, k, am, bm, om) && !wasmGemm(m, n, k, am, bm, om)) {
        gemm(m, n, k, am, bm, om);
        counters.matmulJs++;
      }
    }
  }
}

/**
 * The rows of the single GEMM a batched product folds into (batch items x M), or 0 when it does not fold:
 * there must be more than one item, B's batch strides must all be 0 (broadcast) and A's row i of item b
 * must sit at i * ars + b * M * ars (its batch dims nest like one longer matrix).
 */
function foldedRows(
  batch: readonly number[],
  ab: readonly number[],
  bb: readonly number[],
  m: number,
  ars: number,
): number {
  let items = 1;
  let next = m * ars;
  for (let d = batch.length - 1; d >= 0; d--) {
    const size = batch[d]!;
    if (size === 1) continue;
    if (bb[d] !== 0 || ab[d] !== next) return 0;
    next *= size;
    items *= size;
  }
  return items > 1 && ars > 0 ? items * m : 0;
}

/** An operand's batch strides, right-aligned to `nb` batch dims (missing leading dims broadcast). */
function batchStrides(t: TensorSpec, nb: number): number[] {
  const own = t.strides.slice(0, t.strides.length - 2);
  return [...new Array<number>(Math.max(0, nb - own.length)).fill(0), ...own.slice(Math.max(0, own.length - nb))];
}

function matArray(t: TensorSpec): Float32Array | Uint16Array {
  if (t.dtype === 'float16') return view(t.buffer, 'float16');
  if (t.dtype === 'float32') return view(t.buffer, 'float32');
  throw new Error(`cpu backend: matmul supports float32 and float16, got ${t.dtype}`);
}
