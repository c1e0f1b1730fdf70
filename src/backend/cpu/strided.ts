// Strided iteration for the CPU kernels: dim coalescing, a row iterator that walks several operands
// in lockstep with an odometer (no div/mod per element), float16 row decode/encode and scratch rows.
import { coalesce, type Layout } from '../../core/shape.js';
import type { DType, TypedArray } from '../../core/dtype.js';
import { f16DecodeTable, f32ToF16Bits } from '../../core/float16.js';

/** Longest run a row kernel processes at once (rows are split into chunks of at most this many elements). */
export const CHUNK = 2048;

/** An iteration shape and, for each operand, its element strides over that shape. */
/** The multi-operand layout helpers live in core (the WebGPU backend uses them too). */
export { coalesce, type Layout };

/**
 * Walks the rows of a layout (all dims but the last) for several operands at once. `off[k]` is
 * operand k's element offset at the start of the current row, `inner[k]` its stride along the row.
 * Use: `for (let r = 0; r < it.rows; r++, it.next()) { ... it.off[k] ... }`.
 */
export class RowIter {
  /** Number of rows. */
  readonly rows: number;
  /** Elements per row. */
  readonly len: number;
  /** Stride along the row, per operand. */
  readonly inner: number[];
  /** Offset of the current row's first element, per operand. */
  readonly off: number[];
  private readonly nops: number;
  private readonly outer: number[];
  private readonly st: number[];
  private readonly cnt: number[];

  constructor(layout: Layout, offsets: readonly number[]) {
    const nd = layout.shape.length;
    this.nops = offsets.length;
    this.len = nd > 0 ? layout.shape[nd - 1]! : 1;
    this.inner = layout.strides.map((s) => (nd > 0 ? s[nd - 1]! : 0));
    this.off = [...offsets];
    this.outer = layout.shape.slice(0, Math.max(0, nd - 1));
    this.rows = this.outer.reduce((a, b) => a * b, 1);
    this.st = [];
    for (let d = 0; d < this.outer.length; d++)
      for (let k = 0; k < this.nops; k++) this.st.push(layout.strides[k]![d]!);
    this.cnt = this.outer.map(() => 0);
  }

  /** Advances to the next row (wraps to the first after the last). */
  next(): void {
    const { outer, cnt, off, st, nops } = this;
    for (let d = outer.length - 1; d >= 0; d--) {
      const base = d * nops;
      if (++cnt[d]! < outer[d]!) {
        for (let k = 0; k < nops; k++) off[k]! += st[base + k]!;
        return;
      }
      const back = outer[d]! - 1;
      cnt[d] = 0;
      for (let k = 0; k < nops; k++) off[k]! -= st[base + k]! * back;
    }
  }
}

/** Decodes `n` float16 words (src[p], src[p+s], ...) into dst[0..n). */
export function decodeF16(src: Uint16Array, p: number, s: number, n: number, dst: Float32Array | Float64Array): void {
  const t = f16DecodeTable();
  for (let i = 0; i < n; i++, p += s) dst[i] = t[src[p]!]!;
}

/** Encodes src[0..n) as float16 words into dst[p], dst[p+s], ... (round to nearest even). */
export function encodeF16(src: Float32Array | Float64Array, n: number, dst: Uint16Array, p: number, s: number): void {
  for (let i = 0; i < n; i++, p += s) dst[p] = f32ToF16Bits(src[i]!);
}

/** Reads `n` elements of a `dtype` array (arr[p], arr[p+s], ...) as numbers into dst[q..q+n). */
export function readF64(
  arr: TypedArray,
  dtype: DType,
  p: number,
  s: number,
  n: number,
  dst: Float64Array,
  q = 0,
): void {
  if (dtype === 'float16') {
    const t = f16DecodeTable();
    for (let i = 0; i < n; i++, p += s) dst[q + i] = t[arr[p]!]!;
  } else {
    for (let i = 0; i < n; i++, p += s) dst[q + i] = arr[p]!;
  }
}

/**
 * Stores numbers src[q..q+n) into a `dtype` array at arr[p], arr[p+s], ... with the output conversion
 * rules: float32 rounds, float16 rounds to nearest even, int32/uint32 wrap (ToInt32/ToUint32), bool is
 * 1 for any nonzero value (NaN included).
 */
export function writeF64(
  src: Float64Array,
  q: number,
  n: number,
  arr: TypedArray,
  dtype: DType,
  p: number,
  s: number,
): void {
  if (dtype === 'float16') {
    for (let i = 0; i < n; i++, p += s) arr[p] = f32ToF16Bits(src[q + i]!);
  } else if (dtype === 'bool') {
    for (let i = 0; i < n; i++, p += s) arr[p] = src[q + i] !== 0 ? 1 : 0;
  } else {
    for (let i = 0; i < n; i++, p += s) arr[p] = src[q + i]!;
  }
}

/** Converts one number to what storing it in `dtype` keeps (the rules of `writeF64`), as a storage word. */
export function toStored(x: number, dtype: DType): number {
  switch (dtype) {
    case 'float32':
      return Math.fround(x);
    case 'float16':
      return f32ToF16Bits(x);
    case 'int32':
      return x | 0;
    case 'uint32':
      return x >>> 0;
    case 'bool':
      return x !== 0 ? 1 : 0;
  }
}

const f32Scratch: Float32Array[] = [];
const f64Scratch: Float64Array[] = [];

/** A reusable Float32Array of at least `n` elements for slot `slot` (grow-only; contents undefined). */
export function scratchF32(slot: number, n: number): Float32Array {
  let a = f32Scratch[slot];
  if (!a || a.length < n) f32Scratch[slot] = a = new Float32Array(Math.max(n, 64));
  return a;
}

/** A reusable Float64Array of at least `n` elements for slot `slot` (grow-only; contents undefined). */
export function scratchF64(slot: number, n: number): Float64Array {
  let a = f64Scratch[slot];
  if (!a || a.length < n) f64Scratch[slot] = a = new Float64Array(Math.max(n, 64));
  return a;
}
