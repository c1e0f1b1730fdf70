// Float64 references of the elementwise kernel ops (unary, binary with broadcasting, where) with
// PyTorch semantics, plus exact wrapping integer arithmetic when the compute dtype is int32/uint32.
import type { DType } from '../../src/core/dtype.js';
import type { BinaryOp, UnaryOp } from '../../src/ops/opcodes.js';
import { roundHalfEven, roundTo } from './dtypes.js';
import { broadcastShape, broadcastTo, mapND, nd, scalar, zipND, type ND } from './ndarray.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** GELU, tanh approximation (torch's approximate='tanh'): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_A * x * x * x)));
}

/**
 * Derivative of `gelu`, by the product and chain rules: with u = c (x + a x^3), t = tanh(u),
 * gelu = 0.5 x (1 + t), so gelu' = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
 */
export function geluDerivative(x: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_A * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_A * x * x);
}

/** Logistic sigmoid 1 / (1 + e^-x). */
export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** C/C++ `pow` (what torch uses), which differs from Math.pow at pow(1, NaN) = 1 and pow(-1, ±Inf) = 1. */
export function cPow(a: number, b: number): number {
  if (a === 1) return 1;
  if (a === -1 && (b === Infinity || b === -Infinity)) return 1;
  return Math.pow(a, b);
}

/** Scalar functions of every unary op (float64, before rounding to a dtype). */
export const UNARY_FN: Readonly<Record<UnaryOp, (x: number) => number>> = {
  neg: (x) => -x,
  abs: (x) => Math.abs(x),
  // torch's kernel is (0 < x) - (x < 0): NaN gives 0, ±0 gives 0.
  sign: (x) => (x > 0 ? 1 : 0) - (x < 0 ? 1 : 0),
  exp: (x) => Math.exp(x),
  log: (x) => Math.log(x),
  sqrt: (x) => Math.sqrt(x),
  rsqrt: (x) => 1 / Math.sqrt(x),
  reciprocal: (x) => 1 / x,
  sin: (x) => Math.sin(x),
  cos: (x) => Math.cos(x),
  tanh: (x) => Math.tanh(x),
  sigmoid,
  relu: (x) => (Number.isNaN(x) ? NaN : x > 0 ? x : 0),
  gelu,
  floor: (x) => Math.floor(x),
  ceil: (x) => Math.ceil(x),
  round: roundHalfEven,
  logicalNot: (x) => (x === 0 ? 1 : 0),
};

const truthy = (x: number): boolean => x !== 0; // NaN is truthy, as in torch

/** Scalar functions of every binary op (float64, before rounding to a dtype). Comparisons give 0/1. */
export const BINARY_FN: Readonly<Record<BinaryOp, (a: number, b: number) => number>> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: cPow,
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  logicalAnd: (a, b) => (truthy(a) && truthy(b) ? 1 : 0),
  logicalOr: (a, b) => (truthy(a) || truthy(b) ? 1 : 0),
  geluGrad: (x, g) => g * geluDerivative(x),
};

const BOOL_RESULT: ReadonlySet<string> = new Set([
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'logicalAnd',
  'logicalOr',
  'logicalNot',
]);
const FLOAT_ONLY: ReadonlySet<string> = new Set(['div', 'geluGrad']);

function asND(x: ND | number): ND {
  return typeof x === 'number' ? scalar(x) : x;
}

/** Wrapping integer multiply/power (exact via BigInt, then reduced mod 2^32). */
function intArith(op: 'mul' | 'pow', a: number, b: number, dtype: 'int32' | 'uint32'): number {
  const wrap = (v: bigint): bigint => (dtype === 'int32' ? BigInt.asIntN(32, v) : BigInt.asUintN(32, v));
  if (op === 'mul') return Number(wrap(BigInt(a) * BigInt(b)));
  if (b < 0) throw new Error('pow: integers to negative integer powers are not allowed (torch)');
  let acc = 1n;
  for (let i = 0; i < b; i++) acc = wrap(acc * BigInt(a));
  return Number(acc);
}

/**
 * Reference of a unary op. Without `dtype` the float64 result is returned; with `dtype` (the op's
 * RESULT dtype, e.g. float32 for exp of an int32 tensor) the result is rounded to it (int32/uint32
 * wrap, e.g. neg/abs of -2^31).
 * Bool-result ops (logicalNot) always give 0/1.
 */
export function unary(op: UnaryOp, a: ND, dtype?: DType): ND {
  const f = UNARY_FN[op];
  return mapND(a, (x) => {
    const y = f(x);
    return dtype === undefined || BOOL_RESULT.has(op) ? y : roundTo(dtype, y);
  });
}

/**
 * Reference of a binary op with broadcasting (a number operand is a 0-d tensor). `dtype` is the
 * compute dtype the operands were promoted to: float dtypes round the result; int32/uint32 use exact
 * wrapping integer arithmetic (operands must be integers); div and geluGrad on an integer dtype are
 * computed in float32 (true division). Comparisons and logical ops give 0/1.
 */
export function binary(op: BinaryOp, a: ND | number, b: ND | number, dtype?: DType): ND {
  const f = BINARY_FN[op];
  return zipND(asND(a), asND(b), (x, y) => {
    if (dtype === undefined || BOOL_RESULT.has(op)) return f(x, y);
    if ((dtype === 'int32' || dtype === 'uint32') && !FLOAT_ONLY.has(op)) {
      if (op === 'mul' || op === 'pow') return intArith(op, x, y, dtype);
      return roundTo(dtype, f(x, y)); // add/sub/max/min are exact in float64 for 32-bit operands
    }
    return roundTo(FLOAT_ONLY.has(op) && dtype !== 'float16' ? 'float32' : dtype, f(x, y));
  });
}

/** torch.where(cond, a, b): broadcast all three; picks `a` where cond is nonzero (NaN counts as true). */
export function where(cond: ND | number, a: ND | number, b: ND | number): ND {
  const C = asND(cond);
  const A = asND(a);
  const B = asND(b);
  const shape = broadcastShape(C.shape, A.shape, B.shape);
  const c = broadcastTo(C, shape);
  const x = broadcastTo(A, shape);
  const y = broadcastTo(B, shape);
  const out = nd(shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = truthy(c.data[i]!) ? x.data[i]! : y.data[i]!;
  return out;
}

/** Shorthands for the common cases (float64, no rounding). */
export const add = (a: ND | number, b: ND | number): ND => binary('add', a, b);
export const sub = (a: ND | number, b: ND | number): ND => binary('sub', a, b);
export const mul = (a: ND | number, b: ND | number): ND => binary('mul', a, b);
export const div = (a: ND | number, b: ND | number): ND => binary('div', a, b);
