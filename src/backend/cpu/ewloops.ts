// The per-op row loops of the elementwise kernels: o[po + i*so] = f(a[pa + i*sa], ...) for i < n.
// One small function per op: V8 peels and check-hoists loops of small functions (a single big switch
// over all ops measured 2-3x slower). Math is done in doubles; the typed-array store applies the output
// conversion (float32 rounding, ToInt32/ToUint32 wrap). Float16 operands arrive decoded into Float32Array
// scratch and float16 outputs go through Float32Array scratch; bool outputs only ever get 0/1 here.
import type { BinaryOp, UnaryOp } from '../../ops/opcodes.js';

/** An operand array as the row loops read it (float16 arrives decoded as Float32Array). */
export type InArr = Float32Array | Int32Array | Uint32Array | Uint8Array;
/** An output array as the row loops write it (float16 outputs go through Float32Array scratch). */
export type OutArr = Float32Array | Int32Array | Uint32Array | Uint8Array;

/** A row loop of one operand. */
export type UnaryLoop = (n: number, a: InArr, pa: number, sa: number, o: OutArr, po: number, so: number) => void;
/** A row loop of two operands. */
export type BinaryLoop = (
  n: number,
  a: InArr,
  pa: number,
  sa: number,
  b: InArr,
  pb: number,
  sb: number,
  o: OutArr,
  po: number,
  so: number,
) => void;
/** A row loop of three operands. */
export type TernaryLoop = (
  n: number, a: InArr, pa: number, sa: number, b: InArr, pb: number, sb: number, c: InArr, pc: number, sc: number,
  o: OutArr, po: number, so: number,
) => void; // prettier-ignore

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** Rounds half to even (torch.round), keeping the sign of a zero result. */
function roundEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return r === 0 ? x * 0 : r;
}

/** C's pow (what torch uses): unlike Math.pow, pow(1, NaN) = 1 and pow(-1, ±Inf) = 1. */
function cPow(a: number, b: number): number {
  if (a === 1 || (a === -1 && (b === Infinity || b === -Infinity))) return 1;
  return Math.pow(a, b);
}

/**
 * Integer power with 32-bit wraparound (square and multiply with Math.imul). A negative exponent
 * (which torch refuses for integer tensors) gives the truncated real result: 1 or ±1 for bases 1 and
 * -1, else 0.
 */
function iPow(a: number, e: number): number {
  if (e < 0) return a === 1 ? 1 : a === -1 ? (e % 2 === 0 ? 1 : -1) : 0;
  let r = 1;
  let base = a | 0;
  while (e > 0) {
    if (e & 1) r = Math.imul(r, base);
    base = Math.imul(base, base);
    e >>>= 1;
  }
  return r;
}

/** The row loop of each unary op. */
export const UNARY_LOOPS: Readonly<Record<UnaryOp, UnaryLoop>> = {
  neg: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = -a[pa]!; },
  abs: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = Math.abs(a[pa]!); },
  // torch's (0 < x) - (x < 0): NaN and ±0 give 0
  sign: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) { const x = a[pa]!; o[po] = x > 0 ? 1 : x < 0 ? -1 : 0; } },
  exp: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = Math.exp(a[pa]!); },
  log: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = Math.log(a[pa]!); },
  sqrt: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = Math.sqrt(a[pa]!); },
  rsqrt: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = 1 / Math.sqrt(a[pa]!); },
  reciprocal: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = 1 / a[pa]!; },
  sin: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = Math.sin(a[pa]!); },
  cos: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = Math.cos(a[pa]!); },
  tanh: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = Math.tanh(a[pa]!); },
  sigmoid: (n, a, pa, sa, o, po, so) => {
    for (let i = 0; i < n; i++, pa += sa, po += so) {
      const x = a[pa]!;
      if (x >= 0) o[po] = 1 / (1 + Math.exp(-x));
      else { const e = Math.exp(x); o[po] = e / (1 + e); } // stable for large negative x
    }
  },
  relu: (n, a, pa, sa, o, po, so) => {
    for (let i = 0; i < n; i++, pa += sa, po += so) { const x = a[pa]!; o[po] = x <= 0 ? 0 : x; } // NaN stays NaN
  },
  gelu: (n, a, pa, sa, o, po, so) => {
    for (let i = 0; i < n; i++, pa += sa, po += so) {
      const x = a[pa]!;
      o[po] = 0.5 * x * (1 + Math.tanh(GELU_C * (x + GELU_A * x * x * x)));
    }
  },
  floor: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = Math.floor(a[pa]!); },
  ceil: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = Math.ceil(a[pa]!); },
  round: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = roundEven(a[pa]!); },
  logicalNot: (n, a, pa, sa, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = a[pa] === 0 ? 1 : 0; },
}; // prettier-ignore

/**
 * The row loop of each binary op; 'imul' and 'ipow' are mul and pow into an int32/uint32 output
 * (exact wraparound, like repeated int32 multiplication).
 */
export const BINARY_LOOPS: Readonly<Record<BinaryOp | 'imul' | 'ipow', BinaryLoop>> = {
  add: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! + b[pb]!; },
  sub: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! - b[pb]!; },
  mul: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! * b[pb]!; },
  imul: (n, a, pa, sa, b, pb, sb, o, po, so) => {
    for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = Math.imul(a[pa]!, b[pb]!);
  },
  div: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! / b[pb]!; },
  pow: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = cPow(a[pa]!, b[pb]!); },
  ipow: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = iPow(a[pa]!, b[pb]!); },
  maximum: (n, a, pa, sa, b, pb, sb, o, po, so) => {
    for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) { const x = a[pa]!, y = b[pb]!; o[po] = x > y || x !== x ? x : y; }
  },
  minimum: (n, a, pa, sa, b, pb, sb, o, po, so) => {
    for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) { const x = a[pa]!, y = b[pb]!; o[po] = x < y || x !== x ? x : y; }
  },
  eq: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa] === b[pb] ? 1 : 0; },
  ne: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa] !== b[pb] ? 1 : 0; },
  lt: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! < b[pb]! ? 1 : 0; },
  le: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! <= b[pb]! ? 1 : 0; },
  gt: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! > b[pb]! ? 1 : 0; },
  ge: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! >= b[pb]! ? 1 : 0; },
  logicalAnd: (n, a, pa, sa, b, pb, sb, o, po, so) => {
    for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa] !== 0 && b[pb] !== 0 ? 1 : 0;
  },
  logicalOr: (n, a, pa, sa, b, pb, sb, o, po, so) => {
    for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa] !== 0 || b[pb] !== 0 ? 1 : 0;
  },
  // geluGrad(x, g) = g * d/dx 0.5x(1 + tanh(u)), u = c(x + a x^3):  0.5(1 + t) + 0.5x(1 - t^2) c (1 + 3a x^2)
  geluGrad: (n, a, pa, sa, b, pb, sb, o, po, so) => {
    for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) {
      const x = a[pa]!;
      const x2 = x * x;
      const t = Math.tanh(GELU_C * (x + GELU_A * x * x2));
      o[po] = b[pb]! * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * GELU_A * x2));
    }
  },
}; // prettier-ignore

/**
 * add, sub, mul and div on float32 arrays only: the same loops as BINARY_LOOPS, but separate functions, so
 * that V8 sees one array type (BINARY_LOOPS's are megamorphic across dtypes, ~5x slower on short strided
 * rows such as attention's head views).
 */
export const F32_BINARY_LOOPS: Readonly<Partial<Record<BinaryOp, BinaryLoop>>> = {
  add: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! + b[pb]!; },
  sub: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! - b[pb]!; },
  mul: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! * b[pb]!; },
  div: (n, a, pa, sa, b, pb, sb, o, po, so) => { for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) o[po] = a[pa]! / b[pb]!; },
}; // prettier-ignore

/** where(cond = a, b, c): cond is truthy when nonzero (NaN included). */
export const whereLoop: TernaryLoop = (n, a, pa, sa, b, pb, sb, c, pc, sc, o, po, so) => {
  for (let i = 0; i < n; i++, pa += sa, pb += sb, pc += sc, po += so) o[po] = a[pa] !== 0 ? b[pb]! : c[pc]!;
};

/** Conversion that stores the value (the typed-array store truncates/wraps into int32/uint32). */
export const castLoop: UnaryLoop = (n, a, pa, sa, o, po, so) => {
  for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = a[pa]!;
};

/** Conversion to bool: nonzero (NaN included) is 1. */
export const castBoolLoop: UnaryLoop = (n, a, pa, sa, o, po, so) => {
  for (let i = 0; i < n; i++, pa += sa, po += so) o[po] = a[pa] !== 0 ? 1 : 0;
};
