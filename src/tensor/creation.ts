// Creating tensors: from host data, filled, ranges, and seeded random draws. Random tensors use the
// counter-based Threefry generator, so the same seed gives the same values on every backend.
import { isDType, isFloat, makeTypedArray, type DType, type TypedArray } from '../core/dtype.js';
import { OpError } from '../core/errors.js';
import { f32ToF16Bits } from '../core/float16.js';
import { seedToKey } from '../core/random.js';
import { validateShape } from '../core/shape.js';
import { allocTensor, runKernel } from './engine.js';
import { getBackend, type DeviceLike } from './device.js';
import type { Tensor } from './tensor.js';

/** Options shared by the creation functions. */
export interface CreateOptions {
  dtype?: DType;
  device?: DeviceLike;
  requiresGrad?: boolean;
}

/** Nested arrays of numbers or booleans, as accepted by `tensor()`. */
export type NestedArray = number | boolean | readonly NestedArray[];

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = (cur as readonly NestedArray[])[0]!;
  }
  return shape;
}

function firstLeaf(data: NestedArray): NestedArray | undefined {
  let cur: NestedArray | undefined = data;
  while (Array.isArray(cur)) cur = (cur as readonly NestedArray[])[0];
  return cur;
}

function flatten(data: NestedArray, shape: readonly number[], depth: number, out: number[]): void {
  if (depth === shape.length) {
    if (Array.isArray(data)) throw new OpError('tensor', `ragged nested array: expected a number at depth ${depth}`);
    out.push(typeof data === 'boolean' ? (data ? 1 : 0) : (data as number));
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new OpError(
      'tensor',
      `ragged nested array: expected length ${shape[depth]} at depth ${depth}, got ${Array.isArray(data) ? data.length : 'a scalar'}`,
    );
  }
  for (const x of data as readonly NestedArray[]) flatten(x, shape, depth + 1, out);
}

function dtypeOfArray(a: TypedArray | Float64Array): DType {
  if (a instanceof Float32Array || a instanceof Float64Array) return 'float32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof Uint8Array) return 'bool';
  throw new OpError(
    'tensor',
    'a Uint16Array is ambiguous; pass { dtype: "float16" } with float values, or use fromFloat16Bits()',
  );
}

/** Converts host numbers to the storage representation of `dtype`. */
function encode(values: ArrayLike<number>, dtype: DType): TypedArray {
  const out = makeTypedArray(dtype, values.length);
  if (dtype === 'float16') {
    for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]!);
  } else if (dtype === 'bool') {
    for (let i = 0; i < values.length; i++) out[i] = values[i] !== 0 ? 1 : 0;
  } else if (dtype === 'int32' || dtype === 'uint32') {
    for (let i = 0; i < values.length; i++) out[i] = Math.trunc(values[i]!);
  } else out.set(values);
  return out;
}

/**
 * Creates a tensor from host data: a number, nested arrays, or a typed array with `shape`. The dtype
 * defaults to float32 for numbers, bool for booleans, and the typed array's own type otherwise.
 */
export function tensor(
  data: NestedArray | TypedArray | Float64Array | readonly number[],
  opts: CreateOptions & { shape?: readonly number[] } = {},
): Tensor {
  let values: ArrayLike<number>;
  let shape: readonly number[];
  let dtype: DType;
  if (ArrayBuffer.isView(data)) {
    values = data;
    shape = opts.shape ?? [data.length];
    dtype = opts.dtype ?? dtypeOfArray(data);
  } else {
    shape = inferShape(data);
    const flat: number[] = [];
    flatten(data, shape, 0, flat);
    values = flat;
    if (opts.shape) shape = opts.shape;
    dtype = opts.dtype ?? (typeof firstLeaf(data) === 'boolean' ? 'bool' : 'float32');
  }
  if (opts.dtype !== undefined && !isDType(opts.dtype))
    throw new OpError('tensor', `unknown dtype '${String(opts.dtype)}'`);
  validateShape('tensor', shape);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== values.length)
    throw new OpError('tensor', `shape [${shape.join(', ')}] needs ${n} values, got ${values.length}`);
  const backend = getBackend(opts.device);
  const t = allocTensor(backend, shape, dtype, 'tensor');
  if (n > 0) backend.write(t.storage.buffer, dtype, encode(values, dtype), 0);
  return withGrad(t, opts.requiresGrad);
}

/** Sets requiresGrad on a new leaf; only float tensors can require grad (as in PyTorch). */
export function withGrad(t: Tensor, on: boolean | undefined): Tensor {
  if (on && !isFloat(t.dtype)) {
    t.dispose();
    throw new OpError('requiresGrad', `only float tensors can require gradients, got ${t.dtype}`);
  }
  t.requiresGrad = on ?? false;
  return t;
}

/** Creates a float16 tensor from raw IEEE binary16 bit patterns. */
export function fromFloat16Bits(
  bits: Uint16Array,
  shape: readonly number[],
  opts: { device?: DeviceLike } = {},
): Tensor {
  validateShape('fromFloat16Bits', shape);
  const n = shape.reduce((a, b) => a * b, 1);
  if (bits.length !== n)
    throw new OpError('fromFloat16Bits', `shape [${shape.join(', ')}] needs ${n} values, got ${bits.length}`);
  const backend = getBackend(opts.device);
  const t = allocTensor(backend, shape, 'float16', 'fromFloat16Bits');
  backend.write(t.storage.buffer, 'float16', bits, 0);
  return t;
}

/** A tensor of `shape` with every element `value`. */
export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  validateShape('full', shape);
  const t = runKernel('fill', [], { value }, shape, opts.dtype ?? 'float32', { device: opts.device });
  return withGrad(t, opts.requiresGrad);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  validateShape('zeros', shape);
  const t = allocTensor(getBackend(opts.device), shape, opts.dtype ?? 'float32', 'zeros'); // backends zero-fill
  return withGrad(t, opts.requiresGrad);
}

/** A tensor of ones. */
export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}

/** Zeros with the shape, dtype and device of `t` (overridable). */
export function zerosLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  return zeros(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}

/** Ones with the shape, dtype and device of `t` (overridable). */
export function onesLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, device: t.device, ...opts });
}

/** Values start, start+step, ... below `end` (like torch.arange). `arange(n)` is 0..n-1. */
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(step))
    throw new OpError('arange', `step must be finite and non-zero, got ${step}`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const allInt = [start, end, step].every(Number.isInteger);
  return runKernel('arange', [], { start, step }, [n], opts.dtype ?? (allInt ? 'int32' : 'float32'), {
    device: opts.device,
  });
}

/** A seeded random stream. Each draw uses a fresh counter, so draws never overlap. */
export class Generator {
  private key: [number, number];
  private counter = 0;
  constructor(seed = 0) {
    this.key = seedToKey(seed);
  }
  /** Restarts the stream from `seed`. */
  manualSeed(seed: number): this {
    this.key = seedToKey(seed);
    this.counter = 0;
    return this;
  }
  /** @internal Reserves the next draw. */
  next(): { key0: number; key1: number; counter: number } {
    const c = this.counter;
    this.counter = (this.counter + 1) >>> 0;
    return { key0: this.key[0], key1: this.key[1], counter: c };
  }
  /** The generator's state (for checkpoints). */
  getState(): { key: [number, number]; counter: number } {
    return { key: [...this.key], counter: this.counter };
  }
  /** Restores a state from `getState()`. */
  setState(s: { key: [number, number]; counter: number }): void {
    this.key = [s.key[0] >>> 0, s.key[1] >>> 0];
    this.counter = s.counter >>> 0;
  }
}

/** The default generator used when none is passed. */
export const defaultGenerator = new Generator(0);

/** Seeds the default generator. */
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}

/** Options of the random creation functions. */
export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

function floatDType(op: string, opts: CreateOptions): DType {
  const d = opts.dtype ?? 'float32';
  if (d !== 'float32' && d !== 'float16') throw new OpError(op, `dtype must be float32 or float16, got ${d}`);
  return d;
}

/** Uniform samples in [low, high). */
export function rand(shape: readonly number[], opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  validateShape('rand', shape);
  const g = (opts.generator ?? defaultGenerator).next();
  const t = runKernel(
    'randUniform',
    [],
    { ...g, low: opts.low ?? 0, high: opts.high ?? 1 },
    shape,
    floatDType('rand', opts),
    { device: opts.device },
  );
  return withGrad(t, opts.requiresGrad);
}

/** Normal samples with the given mean and standard deviation (default 0, 1). */
export function randn(shape: readonly number[], opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  validateShape('randn', shape);
  const g = (opts.generator ?? defaultGenerator).next();
  const t = runKernel(
    'randNormal',
    [],
    { ...g, mean: opts.mean ?? 0, std: opts.std ?? 1 },
    shape,
    floatDType('randn', opts),
    { device: opts.device },
  );
  return withGrad(t, opts.requiresGrad);
}
