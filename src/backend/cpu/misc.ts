// Kernels that create or assemble tensors: concat, fill, arange and the counter-based random fills
// (randUniform, randNormal), which reproduce core/random.ts's Threefry stream element for element.
import { numel, contiguousStrides } from '../../core/shape.js';
import { f16BitsToF32, f32ToF16Bits } from '../../core/float16.js';
import { u32PairToNormal, u32ToUnit } from '../../core/random.js';
import type { Operand, TensorSpec } from '../backend.js';
import type { AttrMap } from '../../ops/opcodes.js';
import { view } from './buffer.js';
import { copy } from './elementwise.js';
import { CHUNK, scratchF64, toStored, writeF64 } from './strided.js';

/** Concatenates the inputs along `axis` into the contiguous `out` (inputs of another dtype are cast). */
export function concat(inputs: readonly Operand[], out: TensorSpec, axis: number): void {
  const os = contiguousStrides(out.shape);
  let at = 0;
  for (const x of inputs) {
    const t = x as TensorSpec;
    copy([t], { ...out, shape: t.shape, strides: os, offset: out.offset + at * os[axis]! });
    at += t.shape[axis]!;
  }
}

/** Sets every element of the contiguous `out` to `value` (converted to out's dtype). */
export function fill(out: TensorSpec, value: number): void {
  const n = numel(out.shape);
  view(out.buffer, out.dtype).fill(toStored(value, out.dtype), out.offset, out.offset + n);
}

/** 1-D out[i] = start + i * step, converted to out's dtype. */
export function arange(out: TensorSpec, start: number, step: number): void {
  const n = numel(out.shape);
  const tmp = scratchF64(0, CHUNK);
  const arr = view(out.buffer, out.dtype);
  for (let s = 0; s < n; s += CHUNK) {
    const m = Math.min(CHUNK, n - s);
    for (let i = 0; i < m; i++) tmp[i] = start + (s + i) * step;
    writeF64(tmp, 0, m, arr, out.dtype, out.offset + s, 1);
  }
}

const w0 = new Uint32Array(CHUNK);
const w1 = new Uint32Array(CHUNK);

/**
 * Fills w0/w1[0..n) with threefry2x32(k0, k1, c0 = first + i, c1) for i < n: the same 20-round
 * Threefry-2x32 as core/random.ts, fully unrolled into int32 arithmetic so it allocates nothing.
 */
// prettier-ignore
function threefryChunk(k0: number, k1: number, c1: number, first: number, n: number): void {
  const key0 = k0 | 0;
  const key1 = k1 | 0;
  const k2 = 0x1bd11bda ^ k0 ^ k1;
  for (let i = 0; i < n; i++) {
    let x0 = (((first + i) | 0) + key0) | 0;
    let x1 = ((c1 | 0) + key1) | 0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 13) | (x1 >>> 19)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 15) | (x1 >>> 17)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 26) | (x1 >>> 6)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 6) | (x1 >>> 26)) ^ x0;
    x0 = (x0 + key1) | 0; x1 = (x1 + k2 + 1) | 0; // key injection 1
    x0 = (x0 + x1) | 0; x1 = ((x1 << 17) | (x1 >>> 15)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 29) | (x1 >>> 3)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 16) | (x1 >>> 16)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 24) | (x1 >>> 8)) ^ x0;
    x0 = (x0 + k2) | 0; x1 = (x1 + key0 + 2) | 0; // key injection 2
    x0 = (x0 + x1) | 0; x1 = ((x1 << 13) | (x1 >>> 19)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 15) | (x1 >>> 17)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 26) | (x1 >>> 6)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 6) | (x1 >>> 26)) ^ x0;
    x0 = (x0 + key0) | 0; x1 = (x1 + key1 + 3) | 0; // key injection 3
    x0 = (x0 + x1) | 0; x1 = ((x1 << 17) | (x1 >>> 15)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 29) | (x1 >>> 3)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 16) | (x1 >>> 16)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 24) | (x1 >>> 8)) ^ x0;
    x0 = (x0 + key1) | 0; x1 = (x1 + k2 + 4) | 0; // key injection 4
    x0 = (x0 + x1) | 0; x1 = ((x1 << 13) | (x1 >>> 19)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 15) | (x1 >>> 17)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 26) | (x1 >>> 6)) ^ x0; x0 = (x0 + x1) | 0; x1 = ((x1 << 6) | (x1 >>> 26)) ^ x0;
    x0 = (x0 + k2) | 0; x1 = (x1 + key0 + 5) | 0; // key injection 5
    w0[i] = x0;
    w1[i] = x1;
  }
}

const f32Word = new Float32Array(1);
const i32Word = new Int32Array(f32Word.buffer);

/** The largest float32 (or float16) value strictly below x (x finite or +Inf). */
function largestBelow(x: number, dtype: 'float32' | 'float16'): number {
  if (dtype === 'float16') {
    let h = f32ToF16Bits(x);
    while (f16BitsToF32(h) >= x) h = (h & 0x7fff) === 0 ? 0x8001 : h & 0x8000 ? h + 1 : h - 1;
    return f16BitsToF32(h);
  }
  f32Word[0] = x;
  while (f32Word[0] >= x)
    i32Word[0] =
      (i32Word[0]! & 0x7fffffff) === 0 ? 0x80000001 | 0 : i32Word[0]! < 0 ? i32Word[0]! + 1 : i32Word[0]! - 1;
  return f32Word[0];
}

/**
 * randUniform: out[i] = low + (high - low) * u32ToUnit(w0) with [w0, w1] = threefry(key, (i, counter)),
 * except that a value which would round up to `high` in the output dtype is stored as the largest
 * value below it, so the range stays [low, high) (float16 has only 11 significant bits).
 */
export function randUniform(out: TensorSpec, a: AttrMap['randUniform']): void {
  const n = numel(out.shape);
  const tmp = scratchF64(0, CHUNK);
  const arr = view(out.buffer, out.dtype);
  const span = a.high - a.low;
  const d = out.dtype;
  const limit = span > 0 && (d === 'float32' || d === 'float16') ? largestBelow(a.high, d) : Infinity;
  for (let s = 0; s < n; s += CHUNK) {
    const m = Math.min(CHUNK, n - s);
    threefryChunk(a.key0, a.key1, a.counter, s, m);
    for (let i = 0; i < m; i++) tmp[i] = Math.min(a.low + span * u32ToUnit(w0[i]!), limit);
    writeF64(tmp, 0, m, arr, out.dtype, out.offset + s, 1);
  }
}

/** randNormal: out[i] = mean + std * u32PairToNormal(w0, w1) with [w0, w1] = threefry(key, (i, counter)). */
export function randNormal(out: TensorSpec, a: AttrMap['randNormal']): void {
  const n = numel(out.shape);
  const tmp = scratchF64(0, CHUNK);
  const arr = view(out.buffer, out.dtype);
  for (let s = 0; s < n; s += CHUNK) {
    const m = Math.min(CHUNK, n - s);
    threefryChunk(a.key0, a.key1, a.counter, s, m);
    for (let i = 0; i < m; i++) tmp[i] = a.mean + a.std * u32PairToNormal(w0[i]!, w1[i]!);
    writeF64(tmp, 0, m, arr, out.dtype, out.offset + s, 1);
  }
}
