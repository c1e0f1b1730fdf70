// Elementwise ops: unary math, binary arithmetic and comparisons with broadcasting and scalar
// operands, where/clamp, casts, and the in-place variants used by optimizers.
import { promoteTypes, promoteWithScalar, type DType } from '../core/dtype.js';
import { AutogradError, OpError } from '../core/errors.js';
import { broadcastShapes, shapesEqual } from '../core/shape.js';
import type { BinaryOp, UnaryOp } from '../ops/opcodes.js';
import { binaryComputeDType, binaryResultDType, unaryResultDType } from '../ops/dtypes.js';
import { backendOf, broadcastSpec, runKernel, type Input } from './engine.js';
import { isGradEnabled } from './gradmode.js';
import { Tensor } from './tensor.js';

/** Applies a unary elementwise op. */
export function unary(op: UnaryOp, x: Tensor): Tensor {
  x.assertLive(op);
  return runKernel(op, [x], {}, x.shape, unaryResultDType(op, x.dtype), { broadcast: true });
}

/** The common dtype of a binary op's operands (tensor dtypes promote; scalars are weak). */
function commonDType(op: string, a: Input, b: Input): DType {
  if (a instanceof Tensor && b instanceof Tensor) return promoteTypes(a.dtype, b.dtype, op);
  if (a instanceof Tensor) return promoteWithScalar(a.dtype, b as number);
  if (b instanceof Tensor) return promoteWithScalar(b.dtype, a);
  throw new OpError(op, 'needs at least one tensor operand');
}

/** Applies a binary elementwise op with broadcasting; either operand may be a number. */
export function binary(op: BinaryOp, a: Input, b: Input): Tensor {
  const common = commonDType(op, a, b);
  const shape = broadcastShapes(op, a instanceof Tensor ? a.shape : [], b instanceof Tensor ? b.shape : []);
  return runKernel(op, [a, b], {}, shape, binaryResultDType(op, common), {
    broadcast: true,
    scalarDType: binaryComputeDType(op, common),
  });
}

/** `cond ? a : b` elementwise, broadcasting all three; `cond` must be bool. */
export function where(cond: Tensor, a: Input, b: Input): Tensor {
  if (cond.dtype !== 'bool') throw new OpError('where', `condition must be bool, got ${cond.dtype}`);
  const common = commonDType('where', a, b);
  const shape = broadcastShapes(
    'where',
    cond.shape,
    a instanceof Tensor ? a.shape : [],
    b instanceof Tensor ? b.shape : [],
  );
  return runKernel('where', [cond, a, b], {}, shape, common, { broadcast: true });
}

/** Converts to another dtype (a copy; returns `x` itself when the dtype already matches). */
export function cast(x: Tensor, dtype: DType): Tensor {
  x.assertLive('cast');
  if (x.dtype === dtype) return x;
  return runKernel('cast', [x], { dtype }, x.shape, dtype, { broadcast: true });
}

/** Clamps into [min, max]; either bound may be omitted. */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  let y = x;
  if (min !== undefined) y = binary('maximum', y, min);
  if (max !== undefined) {
    const z = binary('minimum', y, max);
    if (y !== x) y.dispose();
    y = z;
  }
  return y;
}

/** Refuses in-place writes that would corrupt a recorded graph. */
export function checkInplace(op: string, target: Tensor, inputs: readonly Input[]): void {
  target.assertLive(op);
  if (isGradEnabled() && (target.requiresGrad || inputs.some((x) => x instanceof Tensor && x.requiresGrad))) {
    throw new AutogradError(
      `${op}: in-place ops are not recorded by autograd, and this one touches a tensor that requires grad ` +
        `(shape [${target.shape.join(', ')}]). Run it inside noGrad(), as optimizers do, or use the out-of-place op.`,
    );
  }
}

/** Runs an elementwise kernel writing into `target` in place (through its strides) and bumps its version. */
function inplace(
  op: UnaryOp | BinaryOp | 'cast' | 'copy',
  target: Tensor,
  inputs: readonly Input[],
  scalarDType: DType,
): Tensor {
  checkInplace(`${op}_`, target, inputs);
  const backend = backendOf(`${op}_`, [target, ...inputs]);
  const temps: Tensor[] = [];
  const specs = inputs.map((x) => {
    if (typeof x === 'number') return { scalar: x, dtype: scalarDType };
    if (x.storage === target.storage && !sameView(x, target)) {
      // an input that overlaps the target through another view would be read after being written:
      // read it from a copy instead (PyTorch refuses such calls; a copy gives the obvious result)
      x = runKernel('copy', [x], {}, x.shape, x.dtype, { broadcast: true });
      temps.push(x);
    }
    const s = broadcastShapes(`${op}_`, target.shape, x.shape);
    if (!shapesEqual(s, target.shape)) {
      throw new OpError(
        `${op}_`,
        `cannot broadcast [${x.shape.join(', ')}] to the in-place target [${target.shape.join(', ')}]`,
      );
    }
    return broadcastSpec(x, target.shape);
  });
  if (target.size > 0) backend.run(op, specs, target.spec(), op === 'cast' ? { dtype: target.dtype } : {});
  for (const t of temps) t.dispose();
  target.storage.version++;
  return target;
}

/** True when two tensors are the same view of the same storage (elementwise reads then write each element once). */
function sameView(a: Tensor, b: Tensor): boolean {
  return a.offset === b.offset && shapesEqual(a.shape, b.shape) && shapesEqual(a.strides, b.strides);
}

/** In-place binary op: `target = target op b`. The result dtype must equal the target's. */
export function binaryInplace(op: BinaryOp, target: Tensor, b: Input): Tensor {
  const common = commonDType(op, target, b);
  const res = binaryResultDType(op, common);
  if (res !== target.dtype)
    throw new OpError(`${op}_`, `result dtype ${res} cannot be stored in the ${target.dtype} target`);
  return inplace(op, target, [target, b], binaryComputeDType(op, common));
}

/** In-place unary op. */
export function unaryInplace(op: UnaryOp, target: Tensor): Tensor {
  const res = unaryResultDType(op, target.dtype);
  if (res !== target.dtype)
    throw new OpError(`${op}_`, `result dtype ${res} cannot be stored in the ${target.dtype} target`);
  return inplace(op, target, [target], target.dtype);
}

/** Copies `src` (broadcast, cast if needed) into `target` in place. */
export function copyInto(target: Tensor, src: Tensor): Tensor {
  return inplace(src.dtype === target.dtype ? 'copy' : 'cast', target, [src], target.dtype);
}

/** Fills `target` with a number in place (through its strides). */
export function fillInplace(target: Tensor, value: number): Tensor {
  checkInplace('fill_', target, []);
  if (target.size === 0) return target;
  if (target.isContiguous) {
    target.storage.backend.run('fill', [], target.spec(), { value });
    target.storage.version++;
    return target;
  }
  const tmp = runKernel('fill', [], { value }, target.shape, target.dtype, { device: target.device });
  copyInto(target, tmp);
  tmp.dispose();
  return target;
}
