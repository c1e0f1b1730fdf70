// Batched matmul: walks the (already broadcast) batch dims of A (..., M, K) and B (..., K, N) and
// runs one strided GEMM per batch item into the contiguous output (..., M, N), or one GEMM of all items'
// rows when B is broadcast: the WASM GEMV kernels for a few rows (wasmgemv.ts, KV-cached decoding), the
// WASM SIMD GEMM where it applies (float32, large enough), else the JS kernels. The epilogue (an optional
// bias (n), activation and residual, AttrMap.matmul) runs over the output rows after the GEMMs.
import { f16BitsToF32, f32ToF16Bits } from '../../core/float16.js';
import { isContiguous, numel } from '../../core/shape.js';
import type { AttrMap } from '../../ops/opcodes.js';
import type { Operand, TensorSpec } from '../backend.js';
import { CpuBuffer, view } from './buffer.js';
import { counters } from './counters.js';
import { UNARY_LOOPS } from './ewloops.js';
import { gemm, type MatRef, type OutRef } from './gemm.js';
import { RowIter, coalesce } from './strided.js';
import { wasmGemm } from './wasmgemm.js';
import { wasmGemmBatch } from './wasmbatch.js';
import { wasmGemv } from './wasmgemv.js';
import { wasmBinaryF32, wasmGeluF32 } from './wasmelementwise.js';

/**
 * out = act(A @ B + bias) + residual over the batch dims; float32 or float16 operands, any strides (stride 0
 * on broadcast dims). Inputs a, b, then as `attrs` says a bias (n, the operands' dtype), a residual (the
 * output's shape and dtype, any strides) and, when the engine asked for it, the aux pre-activation h.
 * A float32 output over float16 operands is the autocast epilogue (the GEMM stores float32 directly).
 */
export function matmul(inputs: readonly Operand[], out: TensorSpec, attrs: AttrMap['matmul'] = {}): void {
  if (attrs.residual && !attrs.bias && !attrs.activation && accumulateWasm(inputs, out)) return;
  if (attrs.residual) inputs = unaliasResidual(inputs, out, attrs.bias ? 3 : 2);
  gemms(inputs, out);
  if (numel(out.shape) === 0) return;
  let i = 2;
  const bias = attrs.bias ? (inputs[i++] as TensorSpec) : null;
  const residual = attrs.residual ? (inputs[i++] as TensorSpec) : null;
  const h = inputs[i] as TensorSpec | undefined;
  if (!residual && !attrs.activation) {
    if (bias) addBias(bias, out);
    return;
  }
  const ep: Epilogue = { bias, residual, act: attrs.activation ?? null, h: h ?? null };
  if (out.dtype === 'float32' && (!residual || isContiguous(out.shape, residual.strides))) epilogueF32(out, ep);
  else epilogue(out, ep);
}

/** The epilogue's operands after the GEMMs: bias (n), activation, residual and the aux pre-activation h. */
interface Epilogue {
  readonly bias: TensorSpec | null;
  readonly residual: TensorSpec | null;
  readonly act: 'gelu' | 'relu' | null;
  readonly h: TensorSpec | null;
}

/**
 * out += A @ B for a residual that is the 2-D float32 output itself (a weight gradient accumulating into
 * its .grad) on the WASM GEMM's accumulate mode: C is staged in instead of copied aside. False, having
 * written nothing, when that path does not apply.
 */
function accumulateWasm(inputs: readonly Operand[], out: TensorSpec): boolean {
  const [a, b, r] = inputs as readonly TensorSpec[];
  if (!a || !b || !r || out.shape.length !== 2 || out.dtype !== 'float32') return false;
  if (r.buffer !== out.buffer || r.offset !== out.offset || !isContiguous(out.shape, r.strides)) return false;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return false;
  const [m, n] = out.shape as [number, number];
  const k = a.shape[1]!;
  const am: MatRef = { arr: matArray(a), f16: false, off: a.offset, rs: a.strides[0]!, cs: a.strides[1]! };
  const bm: MatRef = { arr: matArray(b), f16: false, off: b.offset, rs: b.strides[0]!, cs: b.strides[1]! };
  return wasmGemm(m, n, k, am, bm, { arr: view(out.buffer, 'float32'), dtype: 'float32', off: out.offset }, true);
}

/** Scratch for a residual that is the output itself (grown to the largest seen, reused: no page faults). */
let staging: CpuBuffer | null = null;

/**
 * In-place accumulation (out += A @ B, the residual being the output itself: a leaf's gradient): the GEMMs
 * write the output before the epilogue reads the residual, so the residual is first copied to scratch and
 * read from there. Any other overlap of the residual with the output is refused.
 */
function unaliasResidual(inputs: readonly Operand[], out: TensorSpec, at: number): readonly Operand[] {
  const r = inputs[at] as TensorSpec;
  if (r.buffer !== out.buffer) return inputs;
  const len = numel(out.shape);
  if (r.offset !== out.offset || r.dtype !== out.dtype || !isContiguous(out.shape, r.strides))
    throw new Error('cpu backend: matmul residual shares the output buffer but is not the output itself');
  const bytes = len * (out.dtype === 'float16' ? 2 : 4);
  if (!staging || staging.bytes < bytes) staging = new CpuBuffer(bytes);
  const src = matArray(r);
  (out.dtype === 'float16' ? staging.view('float16') : staging.view('float32')).set(
    src.subarray(r.offset, r.offset + len),
  );
  const copy: TensorSpec = { ...r, buffer: staging, offset: 0 };
  return inputs.map((x, i) => (i === at ? copy : x));
}

/**
 * The float32 epilogue over the whole contiguous output, each step on the path the unfused op would take
 * (so values match it): the bias, one copy to h, the WASM SIMD gelu (from its threshold on; else the
 * elementwise loop) and the WASM add of a contiguous residual.
 */
function epilogueF32(out: TensorSpec, { bias, residual, act, h }: Epilogue): void {
  const len = numel(out.shape);
  const o = view(out.buffer, 'float32');
  const p = out.offset;
  if (bias) addBias(bias, out);
  if (h) view(h.buffer, 'float32').set(o.subarray(p, p + len), h.offset);
  if (act === 'relu') UNARY_LOOPS.relu(len, o, p, 1, o, p, 1);
  else if (act === 'gelu' && !wasmGeluF32(len, o, p, null, 0, o, p)) UNARY_LOOPS.gelu(len, o, p, 1, o, p, 1);
  if (residual) {
    const r = view(residual.buffer, 'float32');
    const q = residual.offset;
    if (!wasmBinaryF32('add', len, o, p, r, q, o, p)) for (let i = 0; i < len; i++) o[p + i] = o[p + i]! + r[q + i]!;
  }
}

/** The bias (n) as float32 values (zeros without one). */
function biasValues(bias: TensorSpec | null, n: number): Float32Array {
  const bv = new Float32Array(n);
  if (!bias) return bv;
  const bArr = matArray(bias);
  const bs = bias.strides[0]!;
  for (let j = 0; j < n; j++) {
    const x = bArr[bias.offset + j * bs]!;
    bv[j] = bias.dtype === 'float16' ? f16BitsToF32(x) : x;
  }
  return bv;
}

/**
 * The general epilogue, row by row of out (contiguous): h = out + bias (stored to the aux h when given),
 * then act(h) (the elementwise op's own loop, so the values match the unfused gelu/relu), then + the
 * residual read through its strides, one rounding store.
 */
function epilogue(out: TensorSpec, { bias, residual, act, h }: Epilogue): void {
  const nd = out.shape.length;
  const n = out.shape[nd - 1]!;
  const rows = numel(out.shape) / n;
  const f16 = out.dtype === 'float16';
  const o = matArray(out);
  const bv = biasValues(bias, n);
  const row = new Float32Array(n);
  const hArr = h ? matArray(h) : null;
  const rArr = residual ? matArray(residual) : null;
  const idx = new Array<number>(nd - 1).fill(0); // the row's index over out's leading dims
  let roff = residual ? residual.offset : 0;
  const rcs = residual ? residual.strides[nd - 1]! : 0;
  for (let r = 0, p = out.offset; r < rows; r++, p += n) {
    for (let j = 0; j < n; j++) row[j] = (f16 ? f16BitsToF32(o[p + j]!) : o[p + j]!) + bv[j]!;
    if (hArr) {
      const q = h!.offset + r * n;
      for (let j = 0; j < n; j++) hArr[q + j] = f16 ? f32ToF16Bits(row[j]!) : row[j]!;
    }
    if (act) UNARY_LOOPS[act](n, row, 0, 1, row, 0, 1);
    if (rArr) {
      for (let j = 0, q = roff; j < n; j++, q += rcs) {
        const x = rArr[q]!;
        row[j] = row[j]! + (f16 ? f16BitsToF32(x) : x);
      }
      // next row: bump the index over the leading dims (innermost first) and move the residual offset
      for (let d = nd - 2; d >= 0; d--) {
        const s = residual!.strides[d]!;
        if (++idx[d]! < out.shape[d]!) {
          roff += s;
          break;
        }
        roff -= s * (out.shape[d]! - 1);
        idx[d] = 0;
      }
    }
    for (let j = 0; j < n; j++) o[p + j] = f16 ? f32ToF16Bits(row[j]!) : row[j]!;
  }
}

/** out (contiguous, rows of n) += bias (n) broadcast over every row (float16: the sum rounded again). */
function addBias(bias: TensorSpec, out: TensorSpec): void {
  const n = out.shape[out.shape.length - 1]!;
  const rows = numel(out.shape) / n;
  const bv = biasValues(bias, n);
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
  // many small items: whole items as pooled jobs (the same bits as the loop below)
  const a0: MatRef = { arr: aArr, f16: f16a, off: a.offset, rs: ars, cs: acs };
  const b0: MatRef = { arr: bArr, f16: f16b, off: b.offset, rs: brs, cs: bcs };
  if (wasmGemmBatch(m, n, k, batch, ab, bb, a0, b0, { arr: oArr, dtype: out.dtype, off: out.offset })) return;
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
