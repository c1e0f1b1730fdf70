// Data types: names, sizes, typed-array storage and PyTorch-style type promotion.
import { OpError } from './errors.js';

/** The element types tensorloom supports. float16 is stored as raw 16-bit words on the CPU. */
export type DType = 'float32' | 'float16' | 'int32' | 'uint32' | 'bool';

/** All dtypes, in promotion order within each category. */
export const DTYPES: readonly DType[] = ['bool', 'uint32', 'int32', 'float16', 'float32'];

/** The typed array that stores each dtype. */
export interface DTypeArrayMap {
  float32: Float32Array;
  float16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  bool: Uint8Array;
}

/** Any typed array used as tensor storage. */
export type TypedArray = DTypeArrayMap[DType];

/** Bytes per element. */
export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  int32: 4,
  uint32: 4,
  bool: 1,
};

/** True for float32 and float16. */
export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float16';
}

/** True for int32 and uint32. */
export function isInt(d: DType): boolean {
  return d === 'int32' || d === 'uint32';
}

/** Checks that a string names a dtype. */
export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

/** Creates a zeroed typed array for `n` elements of dtype `d`. */
export function makeTypedArray<D extends DType>(d: D, n: number): DTypeArrayMap[D];
export function makeTypedArray(d: DType, n: number): TypedArray {
  switch (d) {
    case 'float32':
      return new Float32Array(n);
    case 'float16':
      return new Uint16Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'bool':
      return new Uint8Array(n);
  }
}

/** Views an ArrayBuffer region as the typed array of dtype `d`. */
export function viewAs(d: DType, buf: ArrayBufferLike, byteOffset: number, length: number): TypedArray {
  switch (d) {
    case 'float32':
      return new Float32Array(buf, byteOffset, length);
    case 'float16':
      return new Uint16Array(buf, byteOffset, length);
    case 'int32':
      return new Int32Array(buf, byteOffset, length);
    case 'uint32':
      return new Uint32Array(buf, byteOffset, length);
    case 'bool':
      return new Uint8Array(buf, byteOffset, length);
  }
}

const RANK: Readonly<Record<DType, number>> = { bool: 0, uint32: 1, int32: 1, float16: 2, float32: 3 };

/**
 * Result dtype of combining two tensors (PyTorch's rules restricted to our dtypes): bool < integer <
 * float, and the wider float wins. int32 with uint32 has no lossless common type and is refused.
 */
export function promoteTypes(a: DType, b: DType, op: string): DType {
  if (a === b) return a;
  if ((a === 'int32' && b === 'uint32') || (a === 'uint32' && b === 'int32')) {
    throw new OpError(op, `cannot mix int32 and uint32 operands; cast one of them first`);
  }
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * Result dtype of combining a tensor with a JS number (a "weak" scalar, as in PyTorch): the scalar
 * only lifts the category (an integer tensor times 0.5 becomes float32; a float16 tensor stays float16).
 */
export function promoteWithScalar(t: DType, s: number): DType {
  const sIsInt = Number.isInteger(s);
  if (isFloat(t)) return t;
  if (!sIsInt) return 'float32';
  if (t === 'bool') return 'int32';
  return t;
}
