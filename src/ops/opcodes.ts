// The closed list of primitive ops: the contract between the tensor frontend and the backends.
// Composite ops (mean, var, layerNorm, crossEntropy, attention, optimizers) are built from these.
// Every per-op table elsewhere is a mapped type over these unions, so a missing entry fails to compile.
import type { DType } from '../core/dtype.js';

/** Elementwise ops of one input. */
export const UNARY_OPS = [
  'neg', 'abs', 'sign', 'exp', 'log', 'sqrt', 'rsqrt', 'reciprocal', 'sin', 'cos', 'tanh',
  'sigmoid', 'relu', 'gelu', 'floor', 'ceil', 'round', 'logicalNot',
] as const; // prettier-ignore
/** Elementwise ops of two inputs (either may be a scalar). */
export const BINARY_OPS = [
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
  'logicalAnd', 'logicalOr', 'geluGrad',
] as const; // prettier-ignore
/** Reductions over a set of axes. */
export const REDUCE_OPS = ['sum', 'max', 'min', 'argmax', 'argmin'] as const;

/** A unary elementwise op. */
export type UnaryOp = (typeof UNARY_OPS)[number];
/** A binary elementwise op. `geluGrad(x, g)` is GELU's backward: g * gelu'(x). */
export type BinaryOp = (typeof BINARY_OPS)[number];
/** A reduction op. */
export type ReduceOp = (typeof REDUCE_OPS)[number];

/** Ops that run a kernel on a backend. */
export type KernelOp =
  | UnaryOp
  | BinaryOp
  | ReduceOp
  | 'where' // (cond, a, b) -> cond ? a : b
  | 'cast'
  | 'copy' // materialize a strided view (also the engine of in-place assignment)
  | 'matmul' // batched, broadcasting, operands read through their strides (transposes are free)
  | 'softmax'
  | 'logSoftmax'
  | 'gather' // torch.gather(self, dim, index)
  | 'scatterAdd' // self + scatter_add(dim, index, src), out of place
  | 'indexSelect' // torch.index_select(self, dim, index); embedding is indexSelect on dim 0
  | 'indexAdd' // self + index_add(dim, index, src), out of place
  | 'concat'
  | 'fill'
  | 'arange'
  | 'randUniform'
  | 'randNormal';

/** Ops that only re-describe storage (shape/strides/offset) and run no kernel. */
export type ViewOp = 'reshape' | 'permute' | 'slice' | 'expand';

/** Every op. */
export type OpCode = KernelOp | ViewOp;

/** Attributes of each op (normalized by the frontend before they reach a backend). */
export interface AttrMap {
  reduce: { axes: number[]; keepdim: boolean };
  where: Record<string, never>;
  cast: { dtype: DType };
  copy: Record<string, never>;
  matmul: Record<string, never>;
  softmax: { axis: number };
  logSoftmax: { axis: number };
  gather: { dim: number };
  scatterAdd: { dim: number };
  indexSelect: { dim: number };
  indexAdd: { dim: number };
  concat: { axis: number };
  fill: { value: number };
  arange: { start: number; step: number };
  /** Threefry key words and draw counter; see core/random.ts. */
  randUniform: { key0: number; key1: number; counter: number; low: number; high: number };
  randNormal: { key0: number; key1: number; counter: number; mean: number; std: number };
  reshape: { shape: number[] };
  permute: { dims: number[] };
  slice: { axis: number; start: number; end: number; step: number };
  expand: { shape: number[] };
}

/** The attribute type of op K. */
export type Attrs<K extends OpCode> = K extends UnaryOp | BinaryOp
  ? Record<string, never>
  : K extends ReduceOp
    ? AttrMap['reduce']
    : K extends keyof AttrMap
      ? AttrMap[K]
      : never;

const unarySet: ReadonlySet<string> = new Set(UNARY_OPS);
const binarySet: ReadonlySet<string> = new Set(BINARY_OPS);
const reduceSet: ReadonlySet<string> = new Set(REDUCE_OPS);

/** Narrowing helpers for the op families. */
export const isUnary = (op: OpCode): op is UnaryOp => unarySet.has(op);
export const isBinary = (op: OpCode): op is BinaryOp => binarySet.has(op);
export const isReduce = (op: OpCode): op is ReduceOp => reduceSet.has(op);
