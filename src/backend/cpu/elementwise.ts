// Elementwise kernels (unary, binary, where, cast, copy) over arbitrary strided operands: one driver
// coalesces dims, walks rows in chunks, decodes float16 operands into scratch, and calls a row loop.
// Dense float32 gelu and geluGrad, same-shape dense float32 add, sub and mul, and add, sub, mul and div of a
// dense float32 operand against a broadcast row, column or scalar, above a size threshold run on the WASM
// SIMD kernels instead (wasmelementwise.ts).
import type { DType } from '../../core/dtype.js';
import { f16BitsToF32, f32ToF16Bits } from '../../core/float16.js';
import { isContiguous, numel } from '../../core/shape.js';
import { isScalar, type Operand, type ScalarSpec, type TensorSpec } from '../backend.js';
import type { BinaryOp, UnaryOp } from '../../ops/opcodes.js';
import { rawView, view } from './buffer.js';
import { BINARY_LOOPS, F32_BINARY_LOOPS, UNARY_LOOPS, castBoolLoop, castLoop, whereLoop } from './ewloops.js';
import type { BinaryLoop, InArr, OutArr, TernaryLoop, UnaryLoop } from './ewloops.js';
import { CHUNK, RowIter, coalesce, decodeF16, encodeF16, scratchF32 } from './strided.js';
import { tiledTransposedCopy32 } from './transposed.js';
import {
  type Bcast,
  type WasmBinaryOp,
  WASM_BINARY_MIN,
  isWasmBcastOp,
  isWasmBinaryOp,
  wasmBinaryBcastF32,
  wasmBinaryF32,
  wasmGeluF32,
} from './wasmelementwise.js';
import { wasmStreamHost } from './wasmgemm.js';

/** A scalar operand as a one-element array of what its dtype stores (float16 as its decoded value). */
function scalarArray(s: ScalarSpec): InArr {
  switch (s.dtype) {
    case 'float32':
      return Float32Array.of(s.scalar);
    case 'float16':
      return Float32Array.of(f16BitsToF32(f32ToF16Bits(s.scalar)));
    case 'int32':
      return Int32Array.of(s.scalar);
    case 'uint32':
      return Uint32Array.of(s.scalar);
    case 'bool':
      return Uint8Array.of(s.scalar !== 0 ? 1 : 0);
  }
}

const EMPTY = new Float32Array(1);

/**
 * Runs row loop `fn` over `out` and its one to three operands (the loop's arity), which are already
 * broadcast to `out.shape`. Handles every dtype: float16 operands are decoded per chunk, float16 outputs are
 * encoded per chunk; others are read and written in place. `out` may be strided and may be exactly
 * one of the inputs (same offset and strides), never a partial overlap.
 */
function drive(fn: UnaryLoop | BinaryLoop | TernaryLoop, inputs: readonly Operand[], out: TensorSpec): void {
  if (numel(out.shape) === 0) return;
  const tensors: TensorSpec[] = [out];
  const slot: number[] = []; // layout operand of each input, -1 for scalars
  for (const x of inputs) {
    if (isScalar(x)) slot.push(-1);
    else {
      slot.push(tensors.length);
      tensors.push(x);
    }
  }
  const it = new RowIter(
    coalesce(
      out.shape,
      tensors.map((t) => t.strides),
      0,
    ),
    tensors.map((t) => t.offset),
  );
  const nin = inputs.length;
  const arrs: InArr[] = [];
  const f16s: (Uint16Array | null)[] = [];
  for (let k = 0; k < nin; k++) {
    const x = inputs[k]!;
    if (isScalar(x)) {
      arrs.push(scalarArray(x));
      f16s.push(null);
    } else if (x.dtype === 'float16') {
      arrs.push(scratchF32(k, CHUNK));
      f16s.push(view(x.buffer, 'float16'));
    } else {
      arrs.push(view(x.buffer, x.dtype));
      f16s.push(null);
    }
  }
  while (arrs.length < 3) {
    arrs.push(EMPTY);
    f16s.push(null);
    slot.push(-1);
  }
  const outF16 = out.dtype === 'float16' ? view(out.buffer, 'float16') : null;
  const o: OutArr = outF16 ? scratchF32(3, CHUNK) : (view(out.buffer, out.dtype) as OutArr);
  const [a, b, c] = arrs as [InArr, InArr, InArr];
  const p = [0, 0, 0];
  const s = [0, 0, 0];
  const len = it.len;
  const so = it.inner[0]!;
  for (let r = 0; r < it.rows; r++, it.next()) {
    for (let start = 0; start < len; start += CHUNK) {
      const m = Math.min(CHUNK, len - start);
      for (let k = 0; k < 3; k++) {
        const l = slot[k]!;
        if (l < 0) {
          p[k] = 0;
          s[k] = 0;
          continue;
        }
        const st = it.inner[l]!;
        const base = it.off[l]! + start * st;
        const h = f16s[k];
        if (h) {
          decodeF16(h, base, st, m, arrs[k] as Float32Array);
          p[k] = 0;
          s[k] = 1;
        } else {
          p[k] = base;
          s[k] = st;
        }
      }
      const ob = it.off[0]! + start * so;
      const po = outF16 ? 0 : ob;
      const sto = outF16 ? 1 : so;
      if (nin === 1) (fn as UnaryLoop)(m, a, p[0]!, s[0]!, o, po, sto);
      else if (nin === 2) (fn as BinaryLoop)(m, a, p[0]!, s[0]!, b, p[1]!, s[1]!, o, po, sto);
      else fn(m, a, p[0]!, s[0]!, b, p[1]!, s[1]!, c, p[2]!, s[2]!, o, po, sto);
      if (outF16) encodeF16(o as Float32Array, m, outF16, ob, so);
    }
  }
}

/** A dense float32 tensor of n elements (contiguous strides), as its array and offset; null otherwise. */
function denseF32(x: Operand | undefined, n: number): [Float32Array, number] | null {
  if (!x || isScalar(x) || x.dtype !== 'float32' || numel(x.shape) !== n || !isContiguous(x.shape, x.strides))
    return null;
  return [view(x.buffer, 'float32'), x.offset];
}

/**
 * gelu (g undefined) or geluGrad of dense float32 operands on the WASM SIMD kernels (above their size
 * threshold); false when they do not apply, having written nothing.
 */
function geluFast(x: Operand, g: Operand | undefined, out: TensorSpec, grad: boolean): boolean {
  const n = numel(out.shape);
  const xs = denseF32(x, n);
  const gs = grad ? denseF32(g, n) : null;
  const os = denseF32(out, n);
  if (!xs || !os || (grad && !gs)) return false;
  return wasmGeluF32(n, xs[0], xs[1], gs ? gs[0] : null, gs ? gs[1] : 0, os[0], os[1]);
}

/**
 * The other operand `y` of a dense x as a broadcast row, column or scalar over the (rows, len) layout of a
 * contiguous out: null when y is laid out otherwise (same-shape, strided, several broadcast dims).
 */
function bcastOf(y: Operand, out: TensorSpec, x: TensorSpec): { rows: number; len: number; b: Bcast } | null {
  if (isScalar(y)) {
    if (y.dtype !== 'float32') return null;
    return { rows: 1, len: numel(out.shape), b: { kind: 'scalar', arr: Float32Array.of(y.scalar), off: 0, stride: 0 } };
  }
  if (y.dtype !== 'float32') return null;
  const lay = coalesce(out.shape, [out.strides, x.strides, y.strides], 0);
  const [os, xs, ys] = lay.strides as [number[], number[], number[]];
  const nd = lay.shape.length;
  if (nd > 2 || os.some((s, i) => s !== xs[i])) return null;
  const arr = view(y.buffer, 'float32');
  if (nd === 1) {
    if (ys[0] !== 0) return null;
    return { rows: 1, len: lay.shape[0]!, b: { kind: 'scalar', arr, off: y.offset, stride: 0 } };
  }
  const [rows, len] = lay.shape as [number, number];
  if (ys[0] === 0 && ys[1] === 1) return { rows, len, b: { kind: 'row', arr, off: y.offset, stride: 1 } };
  if (ys[1] === 0) {
    const kind = ys[0] === 0 ? 'scalar' : 'column';
    return { rows, len, b: { kind, arr, off: y.offset, stride: ys[0]! } };
  }
  return null;
}

/** Elements from which a transposing copy takes the tiled loop (below, the row loop is as fast). */
const TILED_MIN = 4096;

/** add/sub/mul/div of a dense float32 operand against a broadcast one on the WASM kernel; false if not. */
function bcastFast(op: BinaryOp, inputs: readonly Operand[], out: TensorSpec): boolean {
  if (!isWasmBcastOp(op) || out.dtype !== 'float32' || !isContiguous(out.shape, out.strides)) return false;
  const n = numel(out.shape);
  for (const k of [0, 1]) {
    const xs = denseF32(inputs[k], n);
    if (!xs) continue;
    const bc = bcastOf(inputs[1 - k]!, out, inputs[k] as TensorSpec);
    if (!bc) continue;
    const o = view(out.buffer, 'float32');
    return wasmBinaryBcastF32(op, bc.rows, bc.len, xs[0], xs[1], bc.b, k === 1, o, out.offset);
  }
  return false;
}

/**
 * add/sub/mul/div of a strided float32 operand x (full shape, rows of at least 16 contiguous floats, such as
 * attention's head views) against a scalar, a broadcast or a dense operand: x is first copied into the
 * contiguous out (row copies at memcpy speed), then the WASM kernels run on out in place; the strided row
 * loops ran ~4 ns an element. False, having written nothing, when that does not apply.
 */
function stagedFast(op: BinaryOp, inputs: readonly Operand[], out: TensorSpec): boolean {
  if (!isWasmBcastOp(op) || out.dtype !== 'float32' || !isContiguous(out.shape, out.strides)) return false;
  const n = numel(out.shape);
  if (n < WASM_BINARY_MIN || !wasmStreamHost()) return false;
  for (const k of [0, 1]) {
    const x = inputs[k]!;
    const y = inputs[1 - k]!;
    if (isScalar(x) || x.dtype !== 'float32' || x.buffer === out.buffer || denseF32(x, n)) continue;
    if (x.strides.some((st, d) => st === 0 && x.shape[d] !== 1)) continue; // a broadcast x: not full
    if (!isScalar(y) && y.buffer === out.buffer) continue;
    const lay = coalesce(out.shape, [out.strides, x.strides], 0);
    const last = lay.shape.length - 1;
    if (lay.strides[1]![last] !== 1 || lay.shape[last]! < 16) continue;
    const o = view(out.buffer, 'float32');
    const ys = op !== 'div' ? denseF32(y, n) : null;
    const bc = ys ? null : bcastOf(y, out, out);
    if (!ys && !bc) continue;
    copyRaw(x, out);
    if (ys) {
      const [a, b] = k === 0 ? [o, ys[0]] : [ys[0], o];
      const [ao, bo] = k === 0 ? [out.offset, ys[1]] : [ys[1], out.offset];
      if (wasmBinaryF32(op as WasmBinaryOp, n, a, ao, b, bo, o, out.offset)) return true;
    } else if (wasmBinaryBcastF32(op, bc!.rows, bc!.len, o, out.offset, bc!.b, k === 1, o, out.offset)) return true;
    return false; // the row loops still read x from its own buffer: out's copy of it does no harm
  }
  return false;
}

/** Unary elementwise op `op`: out = op(x). */
export function unary(op: UnaryOp, inputs: readonly Operand[], out: TensorSpec): void {
  if (op === 'gelu' && geluFast(inputs[0]!, undefined, out, false)) return;
  drive(UNARY_LOOPS[op], inputs, out);
}

/** Binary elementwise op `op`: out = a op b (either may be a scalar); int mul/pow wrap exactly. */
export function binary(op: BinaryOp, inputs: readonly Operand[], out: TensorSpec): void {
  if (op === 'geluGrad' && geluFast(inputs[0]!, inputs[1], out, true)) return;
  if (isWasmBinaryOp(op) && out.dtype === 'float32') {
    const n = numel(out.shape);
    const as = denseF32(inputs[0], n);
    const bs = as && denseF32(inputs[1], n);
    const os = bs && denseF32(out, n);
    if (os && wasmBinaryF32(op, n, as[0], as[1], bs[0], bs[1], os[0], os[1])) return;
  }
  if (bcastFast(op, inputs, out)) return;
  if (stagedFast(op, inputs, out)) return;
  const f32 = F32_BINARY_LOOPS[op];
  if (f32 && out.dtype === 'float32' && inputs.every((x) => x.dtype === 'float32')) {
    drive(f32, inputs, out);
    return;
  }
  const intOut = out.dtype === 'int32' || out.dtype === 'uint32';
  drive(BINARY_LOOPS[intOut && op === 'mul' ? 'imul' : intOut && op === 'pow' ? 'ipow' : op], inputs, out);
}

/** where(cond, a, b): out = cond ? a : b, cond truthy when nonzero. */
export function where(inputs: readonly Operand[], out: TensorSpec): void {
  drive(whereLoop, inputs, out);
}

/** Converts the input to `out.dtype` (same dtype: a bit-exact copy). */
export function cast(inputs: readonly Operand[], out: TensorSpec): void {
  const x = inputs[0]!;
  if (!isScalar(x) && x.dtype === out.dtype) copyRaw(x, out);
  else drive(out.dtype === 'bool' ? castBoolLoop : castLoop, inputs, out);
}

/** Copies the input into `out` (a possibly strided view) element by element; same dtype, bit exact. */
export function copy(inputs: readonly Operand[], out: TensorSpec): void {
  const x = inputs[0]!;
  if (isScalar(x) || x.dtype !== out.dtype) cast(inputs, out);
  else copyRaw(x, out);
}

/** Bit-exact strided copy between two specs of the same dtype and shape (memcpy for contiguous rows). */
export function copyRaw(x: TensorSpec, out: TensorSpec): void {
  if (numel(out.shape) === 0) return;
  const d: DType = out.dtype;
  if (transposedCopy(x, out)) return;
  const it = new RowIter(coalesce(out.shape, [out.strides, x.strides], 0), [out.offset, x.offset]);
  const o = rawView(out.buffer, d);
  const src = rawView(x.buffer, d);
  const len = it.len;
  const so = it.inner[0]!;
  const sx = it.inner[1]!;
  for (let r = 0; r < it.rows; r++, it.next()) {
    let po = it.off[0]!;
    let px = it.off[1]!;
    if (so === 1 && sx === 1 && len >= 16) o.set(src.subarray(px, px + len), po);
    else if (o instanceof Int32Array) copyRow32(len, src as Int32Array, px, sx, o, po, so);
    else for (let i = 0; i < len; i++, px += sx, po += so) o[po] = src[px]!;
  }
}

/** A copy of 32-bit elements whose source is transposed against out (tiled, transposed.ts); false if not. */
function transposedCopy(x: TensorSpec, out: TensorSpec): boolean {
  if (numel(out.shape) < TILED_MIN || (x.dtype !== 'float32' && x.dtype !== 'int32' && x.dtype !== 'uint32'))
    return false;
  const lay = coalesce(out.shape, [out.strides, x.strides], 0);
  if (lay.shape.length !== 2 || Math.min(lay.shape[0]!, lay.shape[1]!) < 8) return false;
  const [os, xs] = lay.strides as [number[], number[]];
  if (os[1] !== 1 || xs[0] !== 1 || xs[1]! <= 1) return false;
  const [rows, cols] = lay.shape as [number, number];
  const o = rawView(out.buffer, out.dtype) as Int32Array;
  tiledTransposedCopy32(rows, cols, rawView(x.buffer, x.dtype) as Int32Array, x.offset, xs[1]!, o, out.offset, os[0]!);
  return true;
}

function copyRow32(n: number, x: Int32Array, px: number, sx: number, o: Int32Array, po: number, so: number): void {
  for (let i = 0; i < n; i++, px += sx, po += so) o[po] = x[px]!;
}
