// The autograd graph as the op engine records it: one Node per differentiable op application, with
// edges to the nodes (or leaf tensors) of its inputs and the tensors its gradient rule needs. Nodes
// are refcounted by the tensors and downstream nodes that point at them, so an abandoned graph frees
// its saved tensors at once instead of waiting for garbage collection.
import type { DType } from '../core/dtype.js';
import { AutogradError } from '../core/errors.js';
import type { OpCode } from '../ops/opcodes.js';
import type { Tensor } from './tensor.js';

/** Where the gradient of one input goes: another node, a leaf tensor, or nowhere. */
export type Edge = { node: Node } | { leaf: Tensor } | null;

/** A tensor kept for backward, with the storage version it had when saved. */
export class SavedTensor {
  constructor(
    readonly tensor: Tensor,
    readonly version: number,
    private readonly op: OpCode,
  ) {}

  /** The saved tensor, after checking that nothing wrote to it in place since it was saved. */
  get(): Tensor {
    const now = this.tensor.version;
    if (now !== this.version) {
      throw new AutogradError(
        `backward of ${this.op}: a tensor it saved (shape [${this.tensor.shape.join(', ')}]) was modified by an ` +
          `in-place operation after it was saved (version ${this.version}, now ${now}). Use an out-of-place op, ` +
          `or clone the tensor before modifying it.`,
      );
    }
    return this.tensor;
  }
}

/** Static facts about an input that gradient rules need (its shape and dtype; null for scalars). */
export interface InputMeta {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** A recorded op application. */
export class Node {
  /** Handles pointing at this node: output tensors plus downstream edges. */
  private refs = 0;
  /** True once saved tensors were dropped (after backward without retainGraph, or release). */
  savedFreed = false;
  /** Gradient hooks of the output tensor (registerHook on a non-leaf). */
  readonly hooks: ((g: Tensor) => Tensor | void)[] = [];

  constructor(
    readonly op: OpCode,
    readonly attrs: unknown,
    readonly next: readonly Edge[],
    readonly inputs: readonly (InputMeta | null)[],
    readonly savedInputs: readonly (SavedTensor | null)[],
    readonly savedOutput: SavedTensor | null,
    /** Scalar (JS number) operands by input position, null for tensor inputs. */
    readonly scalars: readonly (number | null)[],
    readonly outShape: readonly number[],
    readonly outDType: DType,
    /** Auxiliary outputs of the op (row statistics), kept for its backward (SaveSpec.aux). */
    readonly savedAux: readonly SavedTensor[] = [],
  ) {
    for (const e of next) if (e && 'node' in e) e.node.retain();
  }

  /** Adds a reference. */
  retain(): void {
    this.refs++;
  }

  /** Drops a reference; when none is left, frees the saved tensors and releases upstream nodes. */
  release(): void {
    if (--this.refs > 0) return;
    this.freeSaved();
    for (const e of this.next) if (e && 'node' in e) e.node.release();
  }

  /** Disposes the saved tensors (idempotent). */
  freeSaved(): void {
    if (this.savedFreed) return;
    this.savedFreed = true;
    for (const s of this.savedInputs) s?.tensor.dispose();
    this.savedOutput?.tensor.dispose();
    for (const s of this.savedAux) s.tensor.dispose();
  }

  /** Saved input `i`, checked for in-place modification. */
  input(i: number): Tensor {
    const s = this.savedInputs[i];
    if (this.savedFreed) {
      throw new AutogradError(
        `backward of ${this.op}: the graph was already used by a backward pass and its saved tensors were freed; ` +
          `pass { retainGraph: true } to the first backward() to run it twice`,
      );
    }
    if (!s) throw new Error(`internal: ${this.op} did not save input ${i}`);
    return s.get();
  }

  /** Saved auxiliary output `i` (SaveSpec.aux). */
  aux(i: number): Tensor {
    const s = this.savedAux[i];
    if (this.savedFreed) {
      throw new AutogradError(
        `backward of ${this.op}: the graph was already used by a backward pass and its saved tensors were freed; ` +
          `pass { retainGraph: true } to the first backward() to run it twice`,
      );
    }
    if (!s) throw new Error(`internal: ${this.op} did not save auxiliary output ${i}`);
    return s.get();
  }

  /** Saved output, checked for in-place modification. */
  output(): Tensor {
    if (this.savedFreed || !this.savedOutput) {
      throw new AutogradError(
        `backward of ${this.op}: the graph was already used by a backward pass and its saved tensors were freed; ` +
          `pass { retainGraph: true } to the first backward() to run it twice`,
      );
    }
    return this.savedOutput.get();
  }
}
