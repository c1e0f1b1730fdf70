// Rounding a float64 value to each tensorloom dtype, written from the IEEE 754 definitions without
// the library's code: float16 round-to-nearest-even, float32 via Math.fround, int32/uint32 wrap, bool.
import type { DType } from '../../src/core/dtype.js';
import { mapND, type ND } from './ndarray.js';

/** Largest finite float16 value. */
export const F16_MAX = 65504;
/** Smallest positive (subnormal) float16 value, 2^-24. */
export const F16_MIN_SUBNORMAL = 2 ** -24;
/** Smallest positive normal float16 value, 2^-14. */
export const F16_MIN_NORMAL = 2 ** -14;

/** Rounds to the nearest integer, ties to even (torch.round); keeps the sign of zero and of -0.5 -> -0. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const frac = x - f; // exact for every double
  let r: number;
  if (frac < 0.5) r = f;
  else if (frac > 0.5) r = f + 1;
  else r = f % 2 === 0 ? f : f + 1;
  return r === 0 && (x < 0 || Object.is(x, -0)) ? -0 : r;
}

/**
 * Rounds a float64 to the nearest float16 value, ties to even, in one rounding step (no detour
 * through float32). Values that round past 65504 become ±Infinity; tiny values go to subnormals
 * or ±0; NaN stays NaN.
 */
export function roundF16(x: number): number {
  if (Number.isNaN(x) || x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  // Binade exponent e with 2^e <= a < 2^(e+1); every value below 2^-14 shares the subnormal spacing.
  let e = -14;
  while (e < 15 && 2 ** (e + 1) <= a) e++;
  const quantum = 2 ** (e - 10); // 10 fraction bits
  const r = roundHalfEven(a / quantum) * quantum; // scaling by a power of two is exact
  if (r > F16_MAX) return x < 0 ? -Infinity : Infinity;
  return x < 0 ? -r : r;
}

/** Decodes a float16 bit pattern (0..65535) to its value. */
export function f16FromBits(h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * frac * 2 ** -24;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Encodes a number as the float16 bit pattern of its nearest float16 value (NaN -> 0x7e00). */
export function f16ToBits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const r = roundF16(x);
  const sign = r < 0 || Object.is(r, -0) ? 0x8000 : 0;
  const a = Math.abs(r);
  if (a === Infinity) return sign | 0x7c00;
  if (a < F16_MIN_NORMAL) return sign | (a / F16_MIN_SUBNORMAL); // subnormal or zero: exact integer
  let e = -14;
  while (2 ** (e + 1) <= a) e++;
  const frac = (a / 2 ** e - 1) * 1024; // exact integer 0..1023
  return sign | ((e + 15) << 10) | frac;
}

/**
 * Rounds/converts a float64 to what a tensor of `dtype` would hold: float32 by Math.fround, float16 by
 * roundF16, int32 by ECMAScript ToInt32 (truncate toward zero, wrap mod 2^32, NaN/Inf -> 0),
 * uint32 by ToUint32, bool as nonzero -> 1 (NaN counts as nonzero, as in torch).
 */
export function roundTo(dtype: DType, x: number): number {
  switch (dtype) {
    case 'float32':
      return Math.fround(x);
    case 'float16':
      return roundF16(x);
    case 'int32':
      return x | 0;
    case 'uint32':
      return x >>> 0;
    case 'bool':
      return x !== 0 ? 1 : 0;
  }
}

/** `roundTo` applied to every element (this is also the oracle of the `cast` op). */
export function roundND(a: ND, dtype: DType): ND {
  return mapND(a, (x) => roundTo(dtype, x));
}

/** True for the float dtypes. */
export function isFloatDType(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16';
}

/** Machine epsilon (spacing above 1) of a float dtype; 0 for the exact integer/bool dtypes. */
export function epsilonOf(dtype: DType): number {
  return dtype === 'float32' ? 2 ** -23 : dtype === 'float16' ? 2 ** -10 : 0;
}

/** The storage typed array of a dtype, as the library stores it. */
export type StorageArray = Float32Array | Uint16Array | Int32Array | Uint32Array | Uint8Array;

/** Packs values into the storage layout of `dtype` (rounded first; float16 as raw bit patterns). */
export function toStorage(dtype: DType, values: ArrayLike<number>): StorageArray {
  const n = values.length;
  const get = (i: number): number => roundTo(dtype, values[i]!);
  switch (dtype) {
    case 'float32':
      return Float32Array.from({ length: n }, (_, i) => get(i));
    case 'float16':
      return Uint16Array.from({ length: n }, (_, i) => f16ToBits(values[i]!));
    case 'int32':
      return Int32Array.from({ length: n }, (_, i) => get(i));
    case 'uint32':
      return Uint32Array.from({ length: n }, (_, i) => get(i));
    case 'bool':
      return Uint8Array.from({ length: n }, (_, i) => get(i));
  }
}

/** Unpacks a storage array of `dtype` to float64 values (float16 bit patterns are decoded). */
export function fromStorage(dtype: DType, storage: ArrayLike<number>): Float64Array {
  const out = new Float64Array(storage.length);
  for (let i = 0; i < storage.length; i++) {
    const v = storage[i]!;
    out[i] = dtype === 'float16' ? f16FromBits(v) : v;
  }
  return out;
}
