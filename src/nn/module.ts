// Module: the base class of every layer. It finds parameters, buffers and child modules by walking the
// instance's own fields, so a model is plain class code; names and order follow PyTorch's state_dict.
import { TensorloomError, fmtShape } from '../core/errors.js';
import { Tensor, contiguousRuns, keep, noGrad, tidy, toDevice, type DeviceLike } from '../tensor/index.js';

/** A trainable tensor: a leaf with `requiresGrad` that modules report from `parameters()`. */
export type Parameter = Tensor;

const parameterSet = new WeakSet<Tensor>();

/**
 * Marks `t` as a parameter (like `nn.Parameter(t)`): sets `requiresGrad`, and removes it from every
 * open `tidy` scope so that it lives until disposed. Must be a leaf tensor. Returns `t`.
 */
export function parameter(t: Tensor): Parameter {
  if (!t.isLeaf)
    throw new TensorloomError(
      `parameter: tensor #${t.id} (shape ${fmtShape(t.shape)}) is not a leaf; use detach() first`,
    );
  t.requiresGrad = true;
  parameterSet.add(t);
  return keep(t);
}

/** True when `t` was marked by `parameter()` (or `Module.param()`). */
export function isParameter(t: unknown): t is Parameter {
  return t instanceof Tensor && parameterSet.has(t);
}

/** Options of `registerBuffer`. */
export interface BufferOptions {
  /** Included in `stateDict()` (default true); false for caches that can be recomputed. */
  persistent?: boolean;
}

/** Buffer names (and whether they persist) of each module, kept off the instance's own fields. */
const bufferNames = new WeakMap<Module, Map<string, boolean>>();

/** What `loadStateDict` reports (with `strict: false`; with `strict: true` either list non-empty throws). */
export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** A named slot holding a tensor: the object and key it is stored under (for `to()`). */
interface Slot {
  name: string;
  owner: object;
  key: string | number;
  tensor: Tensor;
}

/**
 * Base class of neural-network layers. Subclasses assign parameters (from `this.param()` or
 * `parameter()`), buffers (`registerBuffer`) and child modules to fields; arrays of modules act as
 * module lists. Each subclass defines its own typed `forward(...)`, which is what callers invoke.
 */
export abstract class Module {
  /** True in training mode (dropout active); set by `train()` / `eval()` on the whole tree. */
  training = true;

  /** Marks `t` as a parameter of this module (see `parameter()`); assign the result to a field. */
  protected param(t: Tensor): Parameter {
    return parameter(t);
  }

  /**
   * Stores `t` as buffer `name` (a field of that name): saved in `stateDict()` unless not
   * persistent, moved by `to()`, disposed by `dispose()`, but never trained. `t` is kept out of
   * enclosing `tidy` scopes.
   */
  registerBuffer(name: string, t: Tensor, opts: BufferOptions = {}): Tensor {
    let names = bufferNames.get(this);
    if (!names) bufferNames.set(this, (names = new Map<string, boolean>()));
    names.set(name, opts.persistent ?? true);
    (this as unknown as Record<string, unknown>)[name] = keep(t);
    return t;
  }

  /**
   * The own fields that take part in the tree, in definition order: `[name, value]` where value is a
   * Module, a Tensor, or an array of them. Overridden by containers that store children elsewhere.
   */
  protected ownEntries(): [string, unknown][] {
    return Object.entries(this);
  }

  /** This module's direct slots: parameters and buffers, and child modules (arrays flattened as name.i). */
  private directSlots(): { params: Slot[]; buffers: (Slot & { persistent: boolean })[]; children: [string, Module][] } {
    const names = bufferNames.get(this);
    const params: Slot[] = [];
    const buffers: (Slot & { persistent: boolean })[] = [];
    const children: [string, Module][] = [];
    const visit = (
      name: string,
      owner: object,
      key: string | number,
      v: unknown,
      bufferPersistent: boolean | undefined,
    ) => {
      if (v instanceof Module) children.push([name, v]);
      else if (v instanceof Tensor) {
        if (bufferPersistent !== undefined) buffers.push({ name, owner, key, tensor: v, persistent: bufferPersistent });
        else if (parameterSet.has(v)) params.push({ name, owner, key, tensor: v });
      }
    };
    for (const [key, v] of this.ownEntries()) {
      const persistent = names?.get(key);
      if (Array.isArray(v)) v.forEach((x, i) => visit(`${key}.${i}`, v, i, x, persistent));
      else visit(key, this, key, v, persistent);
    }
    return { params, buffers, children };
  }

  /** `[name, module]` for this module and every descendant, pre-order, each module once ('' is this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const walk = (m: Module, name: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [n, c] of m.directSlots().children) walk(c, name ? `${name}.${n}` : n);
    };
    walk(this, prefix);
    return out;
  }

  /** This module and every descendant, pre-order. */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** `[name, module]` of the direct children, each module once. */
  namedChildren(): [string, Module][] {
    const seen = new Set<Module>();
    return this.directSlots().children.filter(([, m]) => !seen.has(m) && !!seen.add(m));
  }

  /** The direct child modules. */
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** Every parameter slot with its dotted name, pre-order over modules; `unique` drops tied repeats. */
  private paramSlots(prefix: string, unique: boolean): Slot[] {
    const out: Slot[] = [];
    const seen = new Set<Tensor>();
    for (const [mName, m] of this.namedModules(prefix)) {
      for (const s of m.directSlots().params) {
        if (unique && seen.has(s.tensor)) continue;
        seen.add(s.tensor);
        out.push({ ...s, name: mName ? `${mName}.${s.name}` : s.name });
      }
    }
    return out;
  }

  /** Every buffer slot with its dotted name. */
  private bufferSlots(prefix: string): (Slot & { persistent: boolean })[] {
    const out: (Slot & { persistent: boolean })[] = [];
    for (const [mName, m] of this.namedModules(prefix)) {
      for (const s of m.directSlots().buffers) out.push({ ...s, name: mName ? `${mName}.${s.name}` : s.name });
    }
    return out;
  }

  /**
   * `[name, parameter]` pairs with dotted names like `blocks.0.attn.c_attn.weight`, in PyTorch's
   * order (each module's own parameters in field order, then its children). A tensor shared by two
   * fields (tied weights) is listed once, under its first name.
   */
  namedParameters(prefix = ''): [string, Parameter][] {
    return this.paramSlots(prefix, true).map((s) => [s.name, s.tensor]);
  }

  /** Every parameter once (tied weights once), in `namedParameters()` order. */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** `[name, buffer]` pairs with dotted names, persistent or not. */
  namedBuffers(prefix = ''): [string, Tensor][] {
    return this.bufferSlots(prefix).map((s) => [s.name, s.tensor]);
  }

  /** Every buffer. */
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /**
   * Parameters and persistent buffers by dotted name, as the LIVE tensors (not copies): what a
   * checkpoint saves. Per module, parameters come before buffers, then the children (PyTorch's
   * order); tied weights appear under each name.
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [mName, m] of this.namedModules()) {
      const { params, buffers } = m.directSlots();
      const full = (n: string) => (mName ? `${mName}.${n}` : n);
      for (const s of params) out.set(full(s.name), s.tensor);
      for (const s of buffers) if (s.persistent) out.set(full(s.name), s.tensor);
    }
    return out;
  }

  /**
   * Copies values from `state` into this module's parameters and persistent buffers, in place and
   * without autograd (so optimizers holding the tensors keep working). Everything is checked before
   * anything is copied: a shape, dtype or device mismatch throws naming the key; with `strict`
   * (default) so do missing and unexpected keys. Returns the missing and unexpected keys.
   */
  loadStateDict(
    state: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>,
    opts: { strict?: boolean } = {},
  ): LoadResult {
    const strict = opts.strict ?? true;
    const src: ReadonlyMap<string, unknown> = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !src.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !own.has(k));
    const problems: string[] = [];
    if (strict && missingKeys.length) problems.push(`missing keys: ${missingKeys.join(', ')}`);
    if (strict && unexpectedKeys.length) problems.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
    const pairs: [Tensor, Tensor][] = [];
    for (const [k, dst] of own) {
      const v = src.get(k);
      if (!v) continue;
      if (!(v instanceof Tensor)) problems.push(`${k}: expected a Tensor, got ${typeof v}`);
      else if (v.disposed) problems.push(`${k}: the source tensor was disposed`);
      else if (v.ndim !== dst.ndim || v.shape.some((d, i) => d !== dst.shape[i])) {
        problems.push(
          `size mismatch for ${k}: checkpoint has shape ${fmtShape(v.shape)}, the module has ${fmtShape(dst.shape)}`,
        );
      } else if (v.dtype !== dst.dtype)
        problems.push(`dtype mismatch for ${k}: checkpoint has ${v.dtype}, the module has ${dst.dtype}`);
      else if (v.device !== dst.device)
        problems.push(`device mismatch for ${k}: checkpoint is on ${v.device}, the module on ${dst.device}`);
      else pairs.push([dst, v]);
    }
    if (problems.length) throw new TensorloomError(`loadStateDict: ${problems.join('; ')}`);
    noGrad(() => {
      for (const [dst, v] of pairs) if (dst !== v) dst.copy_(v);
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode (`on`, default true) on this module and all descendants. Returns this. */
  train(on = true): this {
    for (const m of this.modules()) m.training = on;
    return this;
  }

  /** Sets evaluation mode (dropout off) on the whole tree. Returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Calls `fn` on every descendant, children before parents, and then on this module (PyTorch's order). Returns this. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /**
   * Clears the gradients of every parameter: zeroed in place when present (the buffers are reused,
   * so a steady-state training step allocates none), or freed with `setToNone`.
   */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    noGrad(() => {
      if (!opts.setToNone) {
        // gradients packed side by side by an optimizer are zeroed by one fill per buffer
        const grads = this.parameters().flatMap((p) => (p.grad ? [p.grad] : []));
        tidy(() => contiguousRuns(grads).forEach((run) => run.zero_()));
        return;
      }
      for (const p of this.parameters()) {
        p.grad?.dispose();
        p.grad = null;
      }
    });
  }

  /** Number of parameter elements (tied weights counted once). */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** Frees every parameter (with its gradient) and buffer. The module is unusable afterwards. */
  dispose(): void {
    for (const t of new Set([...this.paramSlots('', false).map((s) => s.tensor), ...this.buffers()])) t.dispose();
  }

  /**
   * Moves parameters and buffers to `device` (each field then holds a new tensor; tied weights stay
   * tied; gradients are dropped). Optimizers must be created after the move.
   */
  async to(device: DeviceLike): Promise<this> {
    const slots = [...this.paramSlots('', false), ...this.bufferSlots('')];
    const moved = new Map<Tensor, Tensor>();
    for (const s of slots) {
      if (moved.has(s.tensor)) continue;
      const t = await toDevice(s.tensor, device);
      moved.set(s.tensor, t === s.tensor ? t : isParameter(s.tensor) ? parameter(t) : keep(t));
    }
    for (const s of slots) (s.owner as Record<string | number, unknown>)[s.key] = moved.get(s.tensor);
    for (const [old, t] of moved) if (old !== t) old.dispose();
    return this;
  }
}
