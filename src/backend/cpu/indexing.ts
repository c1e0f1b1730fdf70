// Index-driven kernels: gather, scatterAdd, indexSelect (embedding lookup) and indexAdd (embedding
// backward). Every index is range-checked; a bad one throws an OpError naming value, position, range.
import type { DType, TypedArray } from '../../core/dtype.js';
import { OpError } from '../../core/errors.js';
import { f16DecodeTable, f32ToF16Bits } from '../../core/float16.js';
import { contiguousStrides, isContiguous, numel } from '../../core/shape.js';
import type { Operand, TensorSpec } from '../backend.js';
import { rawView, view } from './buffer.js';
import { copyRaw } from './elementwise.js';
import { RowIter, coalesce } from './strided.js';

/** The index operand's elements (int32 or uint32). */
function indexArray(op: string, t: TensorSpec): Int32Array | Uint32Array {
  if (t.dtype === 'int32') return view(t.buffer, 'int32');
  if (t.dtype === 'uint32') return view(t.buffer, 'uint32');
  throw new OpError(op, `index must be int32 or uint32, got ${t.dtype}`);
}

/** The OpError for index value `v` found at flat position `flat` of an index of shape `shape`. */
function rangeError(op: string, v: number, flat: number, shape: readonly number[], dim: number, size: number): OpError {
  const pos = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    pos[d] = flat % n;
    flat = Math.floor(flat / n);
  }
  const range = size > 0 ? `[0, ${size}) (0 to ${size - 1})` : 'empty (dim has size 0)';
  return new OpError(
    op,
    `index ${v} at position [${pos.join(', ')}] is out of range for dim ${dim} of size ${size}; valid range ${range}`,
  );
}

/** A spec's strides with dim `dim` zeroed (its coordinate is supplied by the index instead). */
function withoutDim(strides: readonly number[], dim: number): number[] {
  return strides.map((s, d) => (d === dim ? 0 : s));
}

/** out = a contiguous copy of `self` (the starting point of the out-of-place add ops). */
function copySelf(self: TensorSpec, out: TensorSpec): void {
  copyRaw(self, { ...out, shape: self.shape, strides: contiguousStrides(self.shape) });
}

/** gather(self, index) along `dim`: out[p] = self[p with coordinate dim = index[p]]. */
export function gather(inputs: readonly Operand[], out: TensorSpec, dim: number): void {
  const self = inputs[0] as TensorSpec;
  const index = inputs[1] as TensorSpec;
  if (numel(index.shape) === 0) return;
  const ix = indexArray('gather', index);
  const src = rawView(self.buffer, self.dtype);
  const o = rawView(out.buffer, out.dtype);
  const size = self.shape[dim]!;
  const sd = self.strides[dim]!;
  const layout = coalesce(index.shape, [index.strides, withoutDim(self.strides, dim), contiguousStrides(index.shape)]);
  const it = new RowIter(layout, [index.offset, self.offset, out.offset]);
  for (let r = 0; r < it.rows; r++, it.next()) {
    let pi = it.off[0]!;
    let ps = it.off[1]!;
    let po = it.off[2]!;
    const [si, ss, so] = it.inner as [number, number, number];
    for (let j = 0; j < it.len; j++, pi += si, ps += ss, po += so) {
      const v = ix[pi]!;
      if (v < 0 || v >= size) throw rangeError('gather', v, po - out.offset, index.shape, dim, size);
      o[po] = src[ps + v * sd]!;
    }
  }
}

/** scatterAdd(self, index, src) along `dim`: out = self; out[p with dim = index[p]] += src[p]. */
export function scatterAdd(inputs: readonly Operand[], out: TensorSpec, dim: number): void {
  const self = inputs[0] as TensorSpec;
  const index = inputs[1] as TensorSpec;
  const src = inputs[2] as TensorSpec;
  copySelf(self, out);
  if (numel(index.shape) === 0) return;
  const ix = indexArray('scatterAdd', index);
  const s = view(src.buffer, src.dtype);
  const sTbl = src.dtype === 'float16' ? f16DecodeTable() : null;
  const o = view(out.buffer, out.dtype);
  const size = self.shape[dim]!;
  const os = contiguousStrides(self.shape);
  const od = os[dim]!;
  const flat = contiguousStrides(index.shape);
  const layout = coalesce(index.shape, [index.strides, src.strides, withoutDim(os, dim), flat]);
  const it = new RowIter(layout, [index.offset, src.offset, out.offset, 0]);
  for (let r = 0; r < it.rows; r++, it.next()) {
    let pi = it.off[0]!;
    let ps = it.off[1]!;
    let po = it.off[2]!;
    let pf = it.off[3]!;
    const [si, ss, so, sf] = it.inner as [number, number, number, number];
    for (let j = 0; j < it.len; j++, pi += si, ps += ss, po += so, pf += sf) {
      const v = ix[pi]!;
      if (v < 0 || v >= size) throw rangeError('scatterAdd', v, pf, index.shape, dim, size);
      addAt(o, out.dtype, po + v * od, sTbl ? sTbl[s[ps]!]! : s[ps]!);
    }
  }
}

/** o[q] += x in dtype `d`'s arithmetic (float16 decoded and re-rounded, bool kept 0/1). */
function addAt(o: TypedArray, d: DType, q: number, x: number): void {
  if (d === 'float16') o[q] = f32ToF16Bits(f16DecodeTable()[o[q]!]! + x);
  else if (d === 'bool') o[q] = o[q]! + x !== 0 ? 1 : 0;
  else o[q]! += x;
}

/** Checks every entry of a 1-D index against [0, size); returns the values as numbers. */
function readIndex1d(op: string, index: TensorSpec, dim: number, size: number): number[] {
  const ix = indexArray(op, index);
  const n = index.shape[0] ?? 1;
  const st = index.strides[0] ?? 0;
  const out = new Array<number>(n);
  for (let i = 0, p = index.offset; i < n; i++, p += st) {
    const v = ix[p]!;
    if (v < 0 || v >= size) throw rangeError(op, v, i, [n], dim, size);
    out[i] = v;
  }
  return out;
}

/** indexSelect(self, index) along `dim`: out's slice i along dim = self's slice index[i]. */
export function indexSelect(inputs: readonly Operand[], out: TensorSpec, dim: number): void {
  const self = inputs[0] as TensorSpec;
  const index = inputs[1] as TensorSpec;
  const idx = readIndex1d('indexSelect', index, dim, self.shape[dim]!);
  const rowShape = self.shape.filter((_, d) => d !== dim);
  const rowSize = numel(rowShape);
  if (idx.length === 0 || rowSize === 0) return;
  const sd = self.strides[dim]!;
  const os = contiguousStrides(out.shape);
  const selfRow = self.strides.filter((_, d) => d !== dim);
  if (dim === 0 && isContiguous(rowShape, selfRow)) {
    // Embedding lookup: each selected row is one contiguous block.
    const src = rawView(self.buffer, self.dtype);
    const o = rawView(out.buffer, out.dtype);
    for (let i = 0; i < idx.length; i++) {
      const p = self.offset + idx[i]! * sd;
      o.set(src.subarray(p, p + rowSize), out.offset + i * rowSize);
    }
    return;
  }
  const outRow = os.filter((_, d) => d !== dim);
  for (let i = 0; i < idx.length; i++) {
    copyRaw(
      { ...self, shape: rowShape, strides: selfRow, offset: self.offset + idx[i]! * sd },
      { ...out, shape: rowShape, strides: outRow, offset: out.offset + i * os[dim]! },
    );
  }
}

/** indexAdd(self, index, src) along `dim`: out = self; out's slice index[i] += src's slice i. */
export function indexAdd(inputs: readonly Operand[], out: TensorSpec, dim: number): void {
  const self = inputs[0] as TensorSpec;
  const index = inputs[1] as TensorSpec;
  const src = inputs[2] as TensorSpec;
  const idx = readIndex1d('indexAdd', index, dim, self.shape[dim]!);
  copySelf(self, out);
  const rowShape = self.shape.filter((_, d) => d !== dim);
  if (idx.length === 0 || numel(rowShape) === 0) return;
  const os = contiguousStrides(self.shape);
  const od = os[dim]!;
  const layout = coalesce(rowShape, [os.filter((_, d) => d !== dim), src.strides.filter((_, d) => d !== dim)]);
  const s = view(src.buffer, src.dtype);
  const o = view(out.buffer, out.dtype);
  const sd = src.strides[dim]!;
  const fast = out.dtype === 'float32' && src.dtype === 'float32' && layout.shape.length === 1;
  if (fast && layout.strides[0]![0] === 1 && layout.strides[1]![0] === 1) {
    // the embedding backward: contiguous rows, no row iterator per index (it cost more than the adds)
    addRowsF32(idx, layout.shape[0]!, o as Float32Array, out.offset, od, s as Float32Array, src.offset, sd);
    return;
  }
  for (let i = 0; i < idx.length; i++) {
    const it = new RowIter(layout, [out.offset + idx[i]! * od, src.offset + i * sd]);
    for (let r = 0; r < it.rows; r++, it.next()) {
      if (fast)
        addRowF32(it.len, o as Float32Array, it.off[0]!, it.inner[0]!, s as Float32Array, it.off[1]!, it.inner[1]!);
      else addRow(it.len, o, out.dtype, it.off[0]!, it.inner[0]!, s, src.dtype, it.off[1]!, it.inner[1]!);
    }
  }
}

/** For each i: o[oo + idx[i] * od + j] += s[so + i * sd + j], j < n (float32, in index order). */
function addRowsF32(
  idx: readonly number[],
  n: number,
  o: Float32Array,
  oo: number,
  od: number,
  s: Float32Array,
  so: number,
  sd: number,
): void {
  for (let i = 0; i < idx.length; i++) {
    const po = oo + idx[i]! * od;
    const ps = so + i * sd;
    for (let j = 0; j < n; j++) o[po + j]! += s[ps + j]!;
  }
}

/** o[po + j*so] += s[ps + j*ss] for float32 (the embedding-backward hot loop). */
function addRowF32(n: number, o: Float32Array, po: number, so: number, s: Float32Array, ps: number, ss: number): void {
  for (let j = 0; j < n; j++, po += so, ps += ss) o[po]! += s[ps]!;
}

/** The general form of addRowF32 for any pair of dtypes. */
function addRow(
  n: number,
  o: TypedArray,
  od: DType,
  po: number,
  so: number,
  s: TypedArray,
  sd: DType,
  ps: number,
  ss: number,
): void {
  const tbl = sd === 'float16' ? f16DecodeTable() : null;
  for (let j = 0; j < n; j++, po += so, ps += ss) addAt(o, od, po, tbl ? tbl[s[ps]!]! : s[ps]!);
}
