// The optimizer base class: parameter groups with PyTorch-style defaults, per-parameter state that
// outlives tidy scopes, in-place zeroGrad, and state dicts for checkpoints. Subclasses write one
// parameter's update rule; the base runs it under noGrad inside its own tidy.
import { isFloat } from '../core/dtype.js';
import { TensorloomError, fmtShape } from '../core/errors.js';
import { Tensor, contiguousRuns, keep, noGrad, tidy, zerosLike } from '../tensor/index.js';

/** Hyperparameters every parameter group has. */
export interface GroupOptions {
  /** Learning rate (>= 0). */
  lr: number;
}

/** A parameter group: the tensors it updates and its hyperparameters (the optimizer's defaults merged in). */
export type ParamGroup<O extends GroupOptions> = O & { params: Tensor[] };

/** A parameter group as passed to a constructor: options left out take the optimizer's defaults. */
export type ParamGroupInput<O extends GroupOptions> = Partial<O> & { params: Tensor | Iterable<Tensor> };

/** What an optimizer accepts: the parameters (one group), or a list of parameter groups. */
export type Params<O extends GroupOptions> = Tensor | Iterable<Tensor> | Iterable<ParamGroupInput<O>>;

/** The state of one parameter: how many steps updated it, and its state tensors by name. */
export interface ParamState {
  /** Number of optimizer steps that updated this parameter (a host counter: reading it never syncs). */
  step: number;
  /** State tensors (momentum buffer, exp_avg, ...), same shape, dtype and device as the parameter. */
  tensors: Record<string, Tensor>;
}

/**
 * A checkpointable snapshot of an optimizer, like torch's `optimizer.state_dict()`. Parameters are
 * named by their index in group order (group 0's params first). `state` holds the optimizer's live
 * state tensors themselves (no copy, no host read), so an io layer can serialize them; serialize
 * before the next `step()`, which updates them in place. Group options are plain JSON values.
 */
export interface OptimizerStateDict<O extends GroupOptions = GroupOptions> {
  /** Per-parameter state by parameter index; parameters that were never stepped are absent. */
  state: Record<number, ParamState>;
  /** Each group's options, with `params` as the indices of its parameters. */
  paramGroups: (O & { params: number[] })[];
}

/** Options of `Optimizer.zeroGrad`. */
export interface ZeroGradOptions {
  /**
   * Dispose the gradients and set `.grad` to null instead of zeroing them in place (default false).
   * Frees their memory until the next backward, which then allocates them again.
   */
  setToNone?: boolean;
}

/** Copies option values so that groups never share mutable arrays (e.g. `betas`) with inputs. */
function copyOptions<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = Array.isArray(v) ? [...(v as unknown[])] : v;
  return out as T;
}

/** `defaults` overridden by the options of `opts` that are set (an explicit `undefined` keeps the default). */
export function withDefaults<O extends object>(defaults: O, opts: Partial<O>): O {
  return { ...defaults, ...copyOptions(opts) };
}

/** Throws unless `v` is a finite number >= 0. */
export function checkNonNegative(who: string, name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new TensorloomError(`${who}: invalid ${name} ${String(v)}; it must be a finite number >= 0`);
  }
}

/**
 * Base class of the optimizers. Parameters must be float leaf tensors with `requiresGrad`; each
 * appears in one group only. `step()` updates every parameter that has a gradient; parameters
 * whose `.grad` is null are skipped (their state and step count do not advance), as in PyTorch.
 *
 * Memory: state tensors are created once, on a parameter's first step, outside every tidy scope
 * (`keep`), then updated in place; the temporaries of an update are freed by the step's own tidy.
 * So from the second step on, a step allocates no persistent tensor and needs no host read.
 */
export abstract class Optimizer<O extends GroupOptions = GroupOptions> {
  /** The parameter groups, in order. Their options may be changed between steps (e.g. `lr`). */
  readonly paramGroups: ParamGroup<O>[] = [];
  /** The defaults new groups are completed with. */
  readonly defaults: Readonly<O>;
  /** Per-parameter state, created on a parameter's first step. */
  protected readonly state = new Map<Tensor, ParamState>();
  /** Names of the state tensors this optimizer may keep per parameter (checked by loadStateDict). */
  protected abstract readonly stateNames: readonly string[];

  /** Builds the groups from `params`, completing each with `defaults`. */
  protected constructor(params: Params<O>, defaults: O) {
    this.defaults = copyOptions(defaults);
    if (params instanceof Tensor) params = [params];
    const items = [...(params as Iterable<Tensor | ParamGroupInput<O>>)];
    if (items.length === 0) throw new TensorloomError(`${this.name}: got an empty parameter list`);
    if (items.every((x) => x instanceof Tensor)) this.addParamGroup({ params: items } as unknown as ParamGroupInput<O>);
    else if (items.some((x) => x instanceof Tensor)) {
      throw new TensorloomError(
        `${this.name}: pass either tensors or parameter groups ({ params, ...options }), not a mix`,
      );
    } else for (const g of items as ParamGroupInput<O>[]) this.addParamGroup(g);
  }

  /** The optimizer's name in error messages. */
  get name(): string {
    return this.constructor.name;
  }

  /** Checks one group's merged options; subclasses add their own checks and call super. */
  protected validateOptions(o: O): void {
    checkNonNegative(this.name, 'learning rate', o.lr);
  }

  /**
   * One parameter's update. Runs under noGrad inside the step's tidy, after `state.step` was
   * incremented. Create state tensors with `stateTensor` (it keeps them); change `param` in place.
   */
  protected abstract updateParam(param: Tensor, grad: Tensor, group: ParamGroup<O>, state: ParamState): void;

  /** Adds a parameter group; options it leaves out take the defaults. */
  addParamGroup(input: ParamGroupInput<O>): void {
    if (typeof input !== 'object' || input === null || !('params' in input)) {
      throw new TensorloomError(`${this.name}: a parameter group must be an object with a 'params' list`);
    }
    const gi = this.paramGroups.length;
    const params = input.params instanceof Tensor ? [input.params] : [...input.params];
    if (params.length === 0) throw new TensorloomError(`${this.name}: parameter group ${gi} has no parameters`);
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    params.forEach((p, i) => {
      const what = `${this.name}: parameter ${i} of group ${gi}`;
      if (!(p instanceof Tensor)) throw new TensorloomError(`${what} is not a Tensor`);
      const desc = `${what} (shape ${fmtShape(p.shape)}, ${p.dtype})`;
      if (p.disposed) throw new TensorloomError(`${desc} was disposed`);
      if (!isFloat(p.dtype))
        throw new TensorloomError(`${desc} is not a float tensor; only float32 and float16 tensors can be optimized`);
      if (!p.requiresGrad)
        throw new TensorloomError(
          `${desc} does not require grad; create it with { requiresGrad: true } or call requiresGrad_()`,
        );
      if (!p.isLeaf)
        throw new TensorloomError(`${desc} is not a leaf tensor (an op computed it); optimize the leaf it came from`);
      if (seen.has(p)) throw new TensorloomError(`${desc} appears more than once in the optimizer's parameter groups`);
      seen.add(p);
    });
    const { params: _ignored, ...opts } = input;
    const group = { ...this.defaults, ...copyOptions(opts), params } as ParamGroup<O>;
    this.validateOptions(group);
    this.paramGroups.push(group);
  }

  /** Every parameter, in group order (the order state-dict indices refer to). */
  params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The learning rate of the first group. */
  get lr(): number {
    return this.paramGroups[0]!.lr;
  }

  /** Sets the learning rate of every group. */
  set lr(v: number) {
    checkNonNegative(this.name, 'learning rate', v);
    for (const g of this.paramGroups) g.lr = v;
  }

  /** Steps taken by the first parameter that has state (0 before the first step). */
  get stepCount(): number {
    for (const p of this.params()) {
      const s = this.state.get(p);
      if (s) return s.step;
    }
    return 0;
  }

  /**
   * Updates every parameter that has a gradient, in place. Runs under noGrad (in-place writes to
   * tensors that require grad are refused otherwise) and inside its own tidy, so temporaries are
   * freed before it returns. Never waits for the device.
   */
  step(): void {
    noGrad(() =>
      tidy(() => {
        for (const group of this.paramGroups) {
          if (this.stepGroup(group)) continue;
          for (const p of group.params) {
            const g = p.grad;
            if (!g) continue;
            p.assertLive(`${this.name}.step`);
            if (g.ndim !== p.ndim || g.shape.some((d, i) => d !== p.shape[i])) {
              throw new TensorloomError(
                `${this.name}.step: gradient shape ${fmtShape(g.shape)} does not match its parameter's ${fmtShape(p.shape)}`,
              );
            }
            let st = this.state.get(p);
            if (!st) this.state.set(p, (st = { step: 0, tensors: {} }));
            st.step++;
            this.updateParam(p, g, group, st);
          }
        }
      }),
    );
  }

  /**
   * Updates a whole group at once (a fused kernel) and returns true, or returns false to have `step`
   * call `updateParam` per parameter. Runs under noGrad inside the step's tidy. The default: false.
   */
  protected stepGroup(_group: ParamGroup<O>): boolean {
    return false;
  }

  /**
   * State tensor `name` of a parameter, created as zeros like `param` (or by `init`) on first use.
   * Created tensors are kept: they survive every enclosing tidy until `dispose()`.
   */
  protected stateTensor(state: ParamState, name: string, param: Tensor, init?: () => Tensor): Tensor {
    const t = state.tensors[name];
    if (t) return t;
    return (state.tensors[name] = keep(init ? init() : zerosLike(param)));
  }

  /**
   * Resets the gradients of all parameters. By default they are zeroed in place: the gradient
   * buffers are reused, backward accumulates into them in place, and a training step allocates no
   * gradient memory. With `setToNone` they are disposed and set to null (torch's set_to_none),
   * which frees that memory between steps but makes the next backward allocate it again.
   */
  zeroGrad({ setToNone = false }: ZeroGradOptions = {}): void {
    noGrad(() => {
      if (!setToNone) {
        // gradients packed side by side (see packed.ts) are zeroed by one fill per buffer
        const grads = this.params().flatMap((p) => (p.grad ? [p.grad] : []));
        tidy(() => contiguousRuns(grads).forEach((run) => run.zero_()));
        return;
      }
      for (const p of this.params()) {
        p.grad?.dispose();
        p.grad = null;
      }
    });
  }

  /** A snapshot for checkpoints: see `OptimizerStateDict` (the state tensors are the live ones). */
  stateDict(): OptimizerStateDict<O> {
    const state: Record<number, ParamState> = {};
    const paramGroups: (O & { params: number[] })[] = [];
    let index = 0;
    for (const group of this.paramGroups) {
      const ids: number[] = [];
      for (const p of group.params) {
        const st = this.state.get(p);
        if (st) state[index] = { step: st.step, tensors: { ...st.tensors } };
        ids.push(index++);
      }
      const { params: _ignored, ...opts } = group;
      paramGroups.push({ ...copyOptions(opts), params: ids } as unknown as O & { params: number[] });
    }
    return { state, paramGroups };
  }

  /**
   * Restores a snapshot from `stateDict()` (of an optimizer of the same kind over parameters of the
   * same shapes, in the same group layout). Group options (lr included) are replaced by the saved
   * ones; state tensors are copied (into the existing state where shapes match), so the dict can
   * be disposed afterwards. They must be on the parameters' device. Parameters absent from the
   * dict lose their state.
   */
  loadStateDict(sd: OptimizerStateDict<O>): void {
    const who = `${this.name}.loadStateDict`;
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new TensorloomError(
        `${who}: the dict has ${sd.paramGroups.length} parameter groups, this optimizer ${this.paramGroups.length}`,
      );
    }
    const byIndex = new Map<number, Tensor>();
    sd.paramGroups.forEach((sg, gi) => {
      const group = this.paramGroups[gi]!;
      if (sg.params.length !== group.params.length) {
        throw new TensorloomError(
          `${who}: group ${gi} has ${sg.params.length} parameters in the dict, ${group.params.length} here`,
        );
      }
      sg.params.forEach((id, i) => byIndex.set(id, group.params[i]!));
    });
    // validate everything before changing anything
    const entries = Object.entries(sd.state).map(([key, entry]) => {
      const p = byIndex.get(Number(key));
      if (!p) throw new TensorloomError(`${who}: state for parameter ${key}, which no group lists`);
      if (!Number.isInteger(entry.step) || entry.step < 0)
        throw new TensorloomError(`${who}: parameter ${key} has an invalid step count ${entry.step}`);
      for (const [name, t] of Object.entries(entry.tensors)) {
        if (!this.stateNames.includes(name)) {
          throw new TensorloomError(
            `${who}: unknown state '${name}' for parameter ${key} (${this.name} keeps: ${this.stateNames.join(', ')})`,
          );
        }
        if (!(t instanceof Tensor) || t.disposed)
          throw new TensorloomError(`${who}: state '${name}' of parameter ${key} is not a live Tensor`);
        if (t.ndim !== p.ndim || t.shape.some((d, i) => d !== p.shape[i])) {
          throw new TensorloomError(
            `${who}: state '${name}' of parameter ${key} has shape ${fmtShape(t.shape)}, the parameter ${fmtShape(p.shape)}`,
          );
        }
      }
      return { p, entry };
    });
    const options = sd.paramGroups.map((sg, gi) => {
      const { params: _ignored, ...opts } = sg;
      const merged = { ...this.paramGroups[gi]!, ...copyOptions(opts) } as ParamGroup<O>;
      this.validateOptions(merged);
      return merged;
    });
    noGrad(() =>
      tidy(() => {
        const fresh = new Map<Tensor, ParamState>();
        for (const { p, entry } of entries) {
          const old = this.state.get(p);
          const st: ParamState = { step: entry.step, tensors: {} };
          for (const [name, src] of Object.entries(entry.tensors)) {
            const mine = old?.tensors[name];
            if (mine === src)
              st.tensors[name] = mine; // loading our own dict
            else st.tensors[name] = mine ? mine.copy_(src) : keep(zerosLike(p).copy_(src));
          }
          fresh.set(p, st);
        }
        for (const [p, old] of this.state) {
          for (const [name, t] of Object.entries(old.tensors)) if (fresh.get(p)?.tensors[name] !== t) t.dispose();
        }
        this.state.clear();
        for (const [p, st] of fresh) this.state.set(p, st);
      }),
    );
    options.forEach((o, gi) => Object.assign(this.paramGroups[gi]!, o));
  }

  /** Frees every state tensor; the next step starts from fresh state. Parameters and grads are untouched. */
  dispose(): void {
    for (const st of this.state.values()) for (const t of Object.values(st.tensors)) t.dispose();
    this.state.clear();
  }
}
