// The op engine: every tensor op goes through `runKernel` or `makeView`. It checks devices and
// dtypes, allocates the output, enqueues the backend kernel and, when gradients are being recorded,
// adds a Node to the graph with exactly the tensors the op's gradient rule needs.
import { isFloat, type DType } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import { broadcastStrides, contiguousStrides, numel } from '../core/shape.js';
import type { Backend, Operand, TensorSpec } from '../backend/backend.js';
import { SAVES } from '../ops/saves.js';
import type { Attrs, KernelOp, OpCode, ViewOp } from '../ops/opcodes.js';
import { getBackend, type DeviceLike } from './device.js';
import { isGradEnabled } from './gradmode.js';
import { Node, SavedTensor, type Edge, type InputMeta } from './node.js';
import { Storage } from './storage.js';
import { Tensor } from './tensor.js';

/** An op input: a tensor, or a JS number for elementwise ops. */
export type Input = Tensor | number;

/**
 * Allocates a contiguous, uninitialized-by-contract (zero on every backend) tensor. A dtype the backend
 * cannot hold is refused with an OpError naming `op` (the function that asked for the tensor).
 */
export function allocTensor(backend: Backend, shape: readonly number[], dtype: DType, op = 'alloc'): Tensor {
  if (!backend.caps.dtypes.includes(dtype)) {
    throw new OpError(
      op,
      `dtype ${dtype} is not supported on ${backend.name} (supported: ${backend.caps.dtypes.join(', ')})`,
    );
  }
  const bytes = Math.max(4, numel(shape) * backend.caps.elementBytes[dtype]);
  const buf = backend.alloc(bytes);
  return new Tensor(new Storage(backend, buf), [...shape], contiguousStrides(shape), 0, dtype);
}

/** The backend shared by the tensor inputs, or the requested device when there are none. */
export function backendOf(op: string, inputs: readonly Input[], device?: DeviceLike): Backend {
  let b: Backend | undefined;
  for (const x of inputs) {
    if (!(x instanceof Tensor)) continue;
    x.assertLive(op);
    const xb = x.storage.backend;
    if (b && xb !== b)
      throw new OpError(op, `tensors are on different devices (${b.name} and ${xb.name}); move them with .to()`);
    b = xb;
  }
  return b ?? getBackend(device);
}

/** A tensor's spec read as if broadcast to `shape`. */
export function broadcastSpec(t: Tensor, shape: readonly number[]): TensorSpec {
  return { ...t.spec(), shape, strides: broadcastStrides(t.shape, t.strides, shape) };
}

/** Options of `runKernel`. */
export interface RunOptions {
  /** Broadcast tensor inputs to the output shape (elementwise ops). */
  broadcast?: boolean;
  /** Dtype that scalar operands are passed in (defaults to the output dtype). */
  scalarDType?: DType;
  /** Device for ops without tensor inputs. */
  device?: DeviceLike;
  /**
   * Auxiliary outputs the kernel also writes (ops with SAVES[op].aux): allocated here, passed to the
   * backend after the output, kept by the graph for the op's backward and otherwise freed at once.
   */
  aux?: readonly { readonly shape: readonly number[]; readonly dtype: DType }[];
}

/**
 * Runs kernel op `op` on `inputs`, producing a new contiguous tensor of `shape`/`dtype`, and records
 * it for autograd when any input requires grad.
 */
export function runKernel<K extends KernelOp>(
  op: K,
  inputs: readonly Input[],
  attrs: Attrs<K>,
  shape: readonly number[],
  dtype: DType,
  opts: RunOptions = {},
): Tensor {
  const backend = backendOf(op, inputs, opts.device);
  if (!backend.caps.dtypes.includes(dtype)) {
    throw new OpError(
      op,
      `dtype ${dtype} is not supported on ${backend.name} (supported: ${backend.caps.dtypes.join(', ')})`,
    );
  }
  const specs: Operand[] = inputs.map((x) => {
    if (typeof x === 'number') return { scalar: x, dtype: opts.scalarDType ?? dtype };
    return opts.broadcast ? broadcastSpec(x, shape) : x.spec();
  });
  const out = allocTensor(backend, shape, dtype);
  const aux = (opts.aux ?? []).map((a) => allocTensor(backend, a.shape, a.dtype));
  if (out.size > 0)
    backend.run(
      op,
      specs,
      out.spec(),
      attrs,
      aux.map((a) => a.spec()),
    );
  record(op, inputs, attrs, out, aux);
  for (const a of aux) a.dispose(); // the graph holds its own references to what it saved
  return out;
}

/** Creates a view of `x` (shared storage) with new shape/strides/offset, recorded for autograd. */
export function makeView<K extends ViewOp>(
  op: K,
  x: Tensor,
  attrs: Attrs<K>,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): Tensor {
  x.assertLive(op);
  x.storage.retain();
  const out = new Tensor(x.storage, [...shape], [...strides], offset, x.dtype);
  record(op, [x], attrs, out);
  return out;
}

/** @internal Records `out = op(inputs)` in the autograd graph when needed. */
function record(op: OpCode, inputs: readonly Input[], attrs: unknown, out: Tensor, aux: readonly Tensor[] = []): void {
  const save = SAVES[op];
  // integer and bool results carry no gradient (as in PyTorch), whatever op produced them
  if (save === null || !isGradEnabled() || !isFloat(out.dtype)) return;
  if (!inputs.some((x) => x instanceof Tensor && x.requiresGrad)) return;
  const next: Edge[] = [];
  const metas: (InputMeta | null)[] = [];
  const saved: (SavedTensor | null)[] = [];
  inputs.forEach((x, i) => {
    if (!(x instanceof Tensor)) {
      next.push(null);
      metas.push(null);
      saved.push(null);
      return;
    }
    next.push(!x.requiresGrad ? null : x.gradFn ? { node: x.gradFn } : { leaf: x });
    metas.push({ shape: x.shape, dtype: x.dtype });
    saved.push(save.inputs.includes(i) ? saveTensor(x, op) : null);
  });
  const savedOut = save.output || save.outputIf?.(attrs) ? saveTensor(out, op) : null;
  const savedAux = save.aux ? aux.map((a) => saveTensor(a, op)) : [];
  const scalars = inputs.map((x) => (typeof x === 'number' ? x : null));
  out.setGradFn(new Node(op, attrs, next, metas, saved, savedOut, scalars, out.shape, out.dtype, savedAux));
}

/** A new handle on `t`'s storage, owned by the graph (not by any tidy scope). */
function saveTensor(t: Tensor, op: OpCode): SavedTensor {
  t.storage.retain();
  const h = new Tensor(t.storage, t.shape, t.strides, t.offset, t.dtype, { untracked: true });
  return new SavedTensor(h, t.version, op);
}

/** Formats an op's input shapes for error messages. */
export function shapesOf(...xs: Input[]): string {
  return xs.map((x) => (typeof x === 'number' ? 'scalar' : fmtShape(x.shape))).join(', ');
}
