// Attaches the ops as Tensor methods (x.add(y), x.sum(1), x.reshape([2, 3]), ...). The functions live
// in the other files of this folder; this file only declares and wires the chaining API.
import { isFloat, type DType } from '../core/dtype.js';
import { OpError, TensorloomError } from '../core/errors.js';
import type { BinaryOp, UnaryOp } from '../ops/opcodes.js';
import type { DeviceLike } from './device.js';
import {
  binary,
  binaryInplace,
  cast,
  clamp,
  copyInto,
  fillInplace,
  unary,
  unaryInplace,
  where,
} from './elementwise.js';
import { runKernel, type Input } from './engine.js';
import { cat, gather, indexAdd, indexSelect, scatterAdd, tril, triu } from './indexing.js';
import { matmul } from './linalg.js';
import { item, toArray, toDevice, toNested, type HostArray } from './read.js';
import { argmax, argmin, logSoftmax, logSumExp, max, mean, min, softmax, sum, variance, type Axes } from './reduce.js';
import { Tensor, type GradHook } from './tensor.js';
import * as V from './views.js';

type Unary = () => Tensor;
type Binary = (other: Input) => Tensor;

declare module './tensor.js' {
  interface Tensor {
    neg: Unary;
    abs: Unary;
    sign: Unary;
    exp: Unary;
    log: Unary;
    sqrt: Unary;
    rsqrt: Unary;
    reciprocal: Unary;
    sin: Unary;
    cos: Unary;
    tanh: Unary;
    sigmoid: Unary;
    relu: Unary;
    gelu: Unary;
    floor: Unary;
    ceil: Unary;
    round: Unary;
    logicalNot: Unary;
    add: Binary;
    sub: Binary;
    mul: Binary;
    div: Binary;
    pow: Binary;
    maximum: Binary;
    minimum: Binary;
    eq: Binary;
    ne: Binary;
    lt: Binary;
    le: Binary;
    gt: Binary;
    ge: Binary;
    logicalAnd: Binary;
    logicalOr: Binary;
    /** In-place `this += other` (no autograd; use inside noGrad). */
    add_: Binary;
    sub_: Binary;
    mul_: Binary;
    div_: Binary;
    maximum_: Binary;
    minimum_: Binary;
    /** In-place unary ops. */
    neg_: Unary;
    sqrt_: Unary;
    exp_: Unary;
    /** `value` where `mask` is true, else this (torch.masked_fill). */
    maskedFill(mask: Tensor, value: number): Tensor;
    /** Clamps into [min, max]. */
    clamp(min?: number, max?: number): Tensor;
    /** Converts to another dtype (returns this when unchanged). */
    cast(dtype: DType): Tensor;
    /** A copy that autograd sees as identity. */
    clone(): Tensor;
    sum(axes?: Axes, keepdim?: boolean): Tensor;
    mean(axes?: Axes, keepdim?: boolean): Tensor;
    max(axes?: Axes, keepdim?: boolean): Tensor;
    min(axes?: Axes, keepdim?: boolean): Tensor;
    argmax(axis?: number, keepdim?: boolean): Tensor;
    argmin(axis?: number, keepdim?: boolean): Tensor;
    /** Variance (correction 1 by default). */
    var(axes?: Axes, opts?: { correction?: number; keepdim?: boolean }): Tensor;
    softmax(axis?: number): Tensor;
    logSoftmax(axis?: number): Tensor;
    logSumExp(axes?: Axes, keepdim?: boolean): Tensor;
    matmul(other: Tensor): Tensor;
    reshape(shape: readonly number[]): Tensor;
    view(shape: readonly number[]): Tensor;
    permute(dims: readonly number[]): Tensor;
    transpose(dim0?: number, dim1?: number): Tensor;
    slice(axis: number, start?: number, end?: number, step?: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    select(dim: number, index: number): Tensor;
    expand(shape: readonly number[]): Tensor;
    unsqueeze(dim: number): Tensor;
    squeeze(dim?: number): Tensor;
    flatten(start?: number, end?: number): Tensor;
    split(sizes: number | readonly number[], axis?: number): Tensor[];
    chunk(chunks: number, axis?: number): Tensor[];
    contiguous(): Tensor;
    /** A handle on the same storage, cut from the graph. */
    detach(): Tensor;
    gather(dim: number, index: Tensor): Tensor;
    scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor;
    indexSelect(dim: number, index: Tensor): Tensor;
    indexAdd(dim: number, index: Tensor, src: Tensor): Tensor;
    triu(k?: number): Tensor;
    tril(k?: number): Tensor;
    /** Concatenates this with `others` along `axis`. */
    cat(others: readonly Tensor[], axis?: number): Tensor;
    /** In-place copy of `src` (broadcast and cast as needed). */
    copy_(src: Tensor): Tensor;
    /** In-place fill. */
    fill_(value: number): Tensor;
    /** In-place fill with zeros. */
    zero_(): Tensor;
    /** Sets requiresGrad on a leaf tensor; returns this. */
    requiresGrad_(on?: boolean): Tensor;
    /** Registers a hook called with this tensor's gradient during backward; it may return a replacement. */
    registerHook(hook: GradHook): void;
    /** Values in row-major order (float16 as Float32Array). Waits for the device. */
    toArray(): Promise<HostArray>;
    /** The value of a one-element tensor. */
    item(): Promise<number>;
    /** The values as nested arrays. */
    toNested(): Promise<unknown>;
    /** A copy on another device (this tensor when already there). */
    to(device: DeviceLike): Promise<Tensor>;
  }
}

const P = Tensor.prototype;
const UNARY: readonly UnaryOp[] = [
  'neg',
  'abs',
  'sign',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'reciprocal',
  'sin',
  'cos',
  'tanh',
  'sigmoid',
  'relu',
  'gelu',
  'floor',
  'ceil',
  'round',
  'logicalNot',
];
const BINARY: readonly BinaryOp[] = [
  'add',
  'sub',
  'mul',
  'div',
  'pow',
  'maximum',
  'minimum',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'logicalAnd',
  'logicalOr',
];
for (const op of UNARY) P[op as 'neg'] = function (this: Tensor) { return unary(op, this); }; // prettier-ignore
for (const op of BINARY) P[op as 'add'] = function (this: Tensor, o: Input) { return binary(op, this, o); }; // prettier-ignore
for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const) {
  P[`${op}_`] = function (this: Tensor, o: Input) {
    return binaryInplace(op, this, o);
  };
}
for (const op of ['neg', 'sqrt', 'exp'] as const) {
  P[`${op}_`] = function (this: Tensor) {
    return unaryInplace(op, this);
  };
}

Object.assign(P, {
  maskedFill(this: Tensor, mask: Tensor, value: number) { return where(mask, value, this); },
  clamp(this: Tensor, lo?: number, hi?: number) { return clamp(this, lo, hi); },
  cast(this: Tensor, dtype: DType) { return cast(this, dtype); },
  clone(this: Tensor) { return runKernel('copy', [this], {}, this.shape, this.dtype, { broadcast: true }); },
  sum(this: Tensor, axes?: Axes, keepdim?: boolean) { return sum(this, axes, keepdim); },
  mean(this: Tensor, axes?: Axes, keepdim?: boolean) { return mean(this, axes, keepdim); },
  max(this: Tensor, axes?: Axes, keepdim?: boolean) { return max(this, axes, keepdim); },
  min(this: Tensor, axes?: Axes, keepdim?: boolean) { return min(this, axes, keepdim); },
  argmax(this: Tensor, axis?: number, keepdim?: boolean) { return argmax(this, axis, keepdim); },
  argmin(this: Tensor, axis?: number, keepdim?: boolean) { return argmin(this, axis, keepdim); },
  var(this: Tensor, axes?: Axes, opts?: { correction?: number; keepdim?: boolean }) { return variance(this, axes, opts); },
  softmax(this: Tensor, axis?: number) { return softmax(this, axis); },
  logSoftmax(this: Tensor, axis?: number) { return logSoftmax(this, axis); },
  logSumExp(this: Tensor, axes?: Axes, keepdim?: boolean) { return logSumExp(this, axes, keepdim); },
  matmul(this: Tensor, o: Tensor) { return matmul(this, o); },
  reshape(this: Tensor, s: readonly number[]) { return V.reshape(this, s); },
  view(this: Tensor, s: readonly number[]) { return V.view(this, s); },
  permute(this: Tensor, d: readonly number[]) { return V.permute(this, d); },
  transpose(this: Tensor, a?: number, b?: number) { return V.transpose(this, a, b); },
  slice(this: Tensor, axis: number, start?: number, end?: number, step?: number) { return V.slice(this, axis, start, end, step); },
  narrow(this: Tensor, dim: number, start: number, length: number) { return V.narrow(this, dim, start, length); },
  select(this: Tensor, dim: number, index: number) { return V.select(this, dim, index); },
  expand(this: Tensor, s: readonly number[]) { return V.expand(this, s); },
  unsqueeze(this: Tensor, d: number) { return V.unsqueeze(this, d); },
  squeeze(this: Tensor, d?: number) { return V.squeeze(this, d); },
  flatten(this: Tensor, s?: number, e?: number) { return V.flatten(this, s, e); },
  split(this: Tensor, sizes: number | readonly number[], axis?: number) { return V.split(this, sizes, axis); },
  chunk(this: Tensor, n: number, axis?: number) { return V.chunk(this, n, axis); },
  contiguous(this: Tensor) { return V.contiguous(this); },
  detach(this: Tensor) { return V.detach(this); },
  gather(this: Tensor, dim: number, index: Tensor) { return gather(this, dim, index); },
  scatterAdd(this: Tensor, dim: number, index: Tensor, src: Tensor) { return scatterAdd(this, dim, index, src); },
  indexSelect(this: Tensor, dim: number, index: Tensor) { return indexSelect(this, dim, index); },
  indexAdd(this: Tensor, dim: number, index: Tensor, src: Tensor) { return indexAdd(this, dim, index, src); },
  triu(this: Tensor, k?: number) { return triu(this, k); },
  tril(this: Tensor, k?: number) { return tril(this, k); },
  cat(this: Tensor, others: readonly Tensor[], axis?: number) { return cat([this, ...others], axis); },
  copy_(this: Tensor, src: Tensor) { return copyInto(this, src); },
  fill_(this: Tensor, v: number) { return fillInplace(this, v); },
  zero_(this: Tensor) { return fillInplace(this, 0); },
  requiresGrad_(this: Tensor, on = true) {
    if (!this.isLeaf) throw new TensorloomError('requiresGrad_: only leaf tensors can change requiresGrad; use detach() first');
    if (on && !isFloat(this.dtype)) throw new OpError('requiresGrad_', `only float tensors can require gradients, got ${this.dtype}`);
    this.requiresGrad = on;
    return this;
  },
  registerHook(this: Tensor, hook: GradHook) {
    if (!this.requiresGrad) throw new TensorloomError('registerHook: the tensor does not require grad');
    if (this.gradFn) this.gradFn.hooks.push(hook);
    else this.leafHooks.push(hook);
  },
  toArray(this: Tensor) { return toArray(this); },
  item(this: Tensor) { return item(this); },
  toNested(this: Tensor) { return toNested(this); },
  to(this: Tensor, device: DeviceLike) { return toDevice(this, device); },
}); // prettier-ignore

Tensor.prototype.toString = function (this: Tensor) {
  return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ', requiresGrad' : ''})`;
};
