// Dtype rules of the elementwise families: which input dtypes each op takes and what it returns.
import { OpError } from '../core/errors.js';
import { isFloat, type DType } from '../core/dtype.js';
import type { BinaryOp, UnaryOp } from './opcodes.js';

const FLOAT_RESULT: ReadonlySet<UnaryOp> = new Set([
  'exp', 'log', 'sqrt', 'rsqrt', 'reciprocal', 'sin', 'cos', 'tanh', 'sigmoid', 'gelu',
] as const); // prettier-ignore
const COMPARE: ReadonlySet<BinaryOp> = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const);
const LOGICAL: ReadonlySet<BinaryOp> = new Set(['logicalAnd', 'logicalOr'] as const);

/** Result dtype of a unary op: transcendental ops lift integer/bool inputs to float32. */
export function unaryResultDType(op: UnaryOp, x: DType): DType {
  if (op === 'logicalNot') return 'bool';
  if (FLOAT_RESULT.has(op)) return isFloat(x) ? x : 'float32';
  if (x === 'bool') throw new OpError(op, `not defined for bool tensors; cast to a number type first`);
  return x;
}

/**
 * Result dtype of a binary op given the already promoted operand dtype `common`
 * (see core/dtype.ts promoteTypes): comparisons and logical ops give bool, true division and
 * GELU's gradient give a float.
 */
export function binaryResultDType(op: BinaryOp, common: DType): DType {
  if (COMPARE.has(op) || LOGICAL.has(op)) return 'bool';
  if (common === 'bool')
    throw new OpError(op, `arithmetic on two bool operands is not defined; cast one to int32 or float32`);
  if (op === 'div' || op === 'geluGrad') return isFloat(common) ? common : 'float32';
  return common;
}

/** The dtype both operands of a binary op are computed in (inputs are cast to this first). */
export function binaryComputeDType(op: BinaryOp, common: DType): DType {
  if (LOGICAL.has(op)) return 'bool';
  if ((op === 'div' || op === 'geluGrad') && !isFloat(common)) return 'float32';
  return common;
}
