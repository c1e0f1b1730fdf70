// The Tensor handle: shape, strides and offset over refcounted storage, dtype, device and autograd
// state. Ops live in the other files of this folder and are attached as methods by methods.ts.
import type { DType } from '../core/dtype.js';
import { TensorloomError } from '../core/errors.js';
import { isContiguous, numel, type Shape } from '../core/shape.js';
import type { DeviceName, TensorSpec } from '../backend/backend.js';
import type { Node } from './node.js';
import { track } from './scope.js';
import type { Storage } from './storage.js';

let nextId = 1;
let live = 0;

/** Number of tensor handles created and not yet disposed (saved-for-backward handles included). */
export function liveTensors(): number {
  return live;
}

/** What a garbage-collected, undisposed tensor still holds; released as a backstop. */
interface Held {
  storage: Storage;
  node: Node | null;
}

const finalizer = new FinalizationRegistry<Held>((h) => {
  live--;
  h.storage.release();
  h.node?.release();
});

/** A gradient hook: receives the gradient, may return a replacement. */
export type GradHook = (grad: Tensor) => Tensor | void;

/**
 * An n-dimensional array on a device. Create tensors with `tensor()`, `zeros()`, `randn()` and the
 * other creation functions; ops return new tensors (views share storage). Call `dispose()` or use
 * `tidy()` to free device memory early; garbage collection is only a backstop.
 */
export class Tensor {
  /** Unique id, for debugging. */
  readonly id = nextId++;
  /** True when backward should compute a gradient for this tensor. */
  requiresGrad = false;
  /** The accumulated gradient (leaf tensors, or non-leaves after `retainGrad()`). */
  grad: Tensor | null = null;
  /** @internal The node that produced this tensor (null for leaves). */
  gradFn: Node | null = null;
  /** @internal Hooks of a leaf tensor, run before its gradient is accumulated. */
  readonly leafHooks: GradHook[] = [];
  private _disposed = false;
  private readonly held: Held;

  /** @internal Use the creation functions instead. */
  constructor(
    /** @internal */ readonly storage: Storage,
    readonly shape: Shape,
    readonly strides: readonly number[],
    readonly offset: number,
    readonly dtype: DType,
    opts: { untracked?: boolean } = {},
  ) {
    live++;
    this.held = { storage, node: null };
    finalizer.register(this, this.held, this);
    if (!opts.untracked) track(this);
  }

  /** @internal Sets the producing node (takes a reference on it). */
  setGradFn(node: Node): void {
    node.retain();
    this.gradFn = node;
    this.held.node = node;
    this.requiresGrad = true;
  }

  /** The device the tensor lives on. */
  get device(): DeviceName {
    return this.storage.backend.name;
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }

  /** True when created by the user (not by a differentiable op). */
  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /** True when the elements are laid out densely in row-major order (the offset may be non-zero). */
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }

  /** The storage's in-place version counter. */
  get version(): number {
    return this.storage.version;
  }

  /** True after `dispose()`. */
  get disposed(): boolean {
    return this._disposed;
  }

  /** @internal Throws if the tensor was disposed; `op` names the caller in the message. */
  assertLive(op: string): void {
    if (this._disposed)
      throw new TensorloomError(`${op}: tensor #${this.id} (shape [${this.shape.join(', ')}]) was disposed`);
  }

  /** @internal The kernel's view of this tensor. */
  spec(): TensorSpec {
    return {
      buffer: this.storage.buffer,
      dtype: this.dtype,
      shape: this.shape,
      strides: this.strides,
      offset: this.offset,
    };
  }

  /**
   * @internal Re-points this handle at `storage` (on which the caller already took a reference for
   * it) with `offset` and `strides` over the same shape and dtype, and releases the old storage.
   * Identity, grad, hooks and autograd state are unchanged; other handles of the old storage (views,
   * saved tensors) keep it and stop aliasing this one. Only `packTensors`/`moveInto` (flat.ts) call it.
   */
  rebind(storage: Storage, offset: number, strides: readonly number[]): void {
    this.assertLive('rebind');
    const old = this.storage;
    const self = this as { storage: Storage; offset: number; strides: readonly number[] };
    self.storage = storage;
    self.offset = offset;
    self.strides = [...strides];
    this.held.storage = storage;
    old.release();
  }

  /**
   * Frees this handle. The storage is freed when no other handle (views, tensors saved for backward)
   * uses it, so disposing a tensor never breaks a later backward pass. Idempotent.
   */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    live--;
    finalizer.unregister(this);
    this.storage.release();
    this.gradFn?.release();
    this.grad?.dispose();
    this.grad = null;
  }
}
