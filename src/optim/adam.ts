// Adam and AdamW: torch.optim.Adam / AdamW's algorithm (bias correction, eps outside the square
// root, L2 or decoupled weight decay, optional AMSGrad). Float32 groups run as one fused kernel per
// group over flat buffers (packed.ts); other groups as a handful of in-place ops per parameter.
import { TensorloomError } from '../core/errors.js';
import { adamwUpdate_, type Tensor } from '../tensor/index.js';
import {
  Optimizer,
  checkNonNegative,
  withDefaults,
  type GroupOptions,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
  type Params,
} from './optimizer.js';
import { packGroup, type MomentName, type PackedGroup } from './packed.js';

/** Hyperparameters of Adam and AdamW (per group). */
export interface AdamOptions extends GroupOptions {
  /** Decay rates (β1, β2) of the first and second moment estimates, each in [0, 1) (default [0.9, 0.999]). */
  betas: readonly [number, number];
  /** Added to the denominator for numerical stability (default 1e-8). */
  eps: number;
  /** Weight decay λ: an L2 penalty added to the gradient in Adam, decoupled in AdamW. */
  weightDecay: number;
  /** Use the AMSGrad variant (the running maximum of the second moment; default false). */
  amsgrad: boolean;
  /** Maximize the objective instead of minimizing it (default false). */
  maximize: boolean;
}

/**
 * Adam, exactly torch.optim.Adam (defaults: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 0).
 * Per parameter θ with gradient ∇, at step t (state expAvg m, expAvgSq v, and maxExpAvgSq v̂ with AMSGrad):
 *
 *     g = maximize ? -∇ : ∇
 *     g = g + λ·θ                               (Adam, if weightDecay λ ≠ 0; AdamW instead does θ = θ·(1 - lr·λ))
 *     m = β1·m + (1 - β1)·g
 *     v = β2·v + (1 - β2)·g²
 *     v̂ = max(v̂, v)                             (AMSGrad only; then v̂ replaces v below)
 *     denom = sqrt(v) / sqrt(1 - β2^t) + eps
 *     θ = θ - (lr / (1 - β1^t)) · m / denom
 *
 * Fused path: when a group's parameters are float32 on one device, the constructor packs them into
 * one buffer (chunks of 128 MiB; each parameter becomes a view of its slice, still the same leaf
 * tensor) and the first step packs their gradients and moments likewise, so that a step is one
 * `adamw` kernel per chunk, whatever the number of parameters, and zeroGrad / clipGradNorm_ touch one
 * buffer. It needs every parameter of the group to have a gradient and the same step count; a step
 * where that fails (some `.grad` null, a parameter that was skipped before, a gradient that shares
 * its storage) takes the per-parameter path below, on the same state. Gradients replaced by the user
 * (or freed by zeroGrad({ setToNone: true })) are copied back into their slots on the next step.
 *
 * Per-parameter path: the last two lines run as `θ -= m / (sqrt(v)·c + eps·(1 - β1^t)/lr)` with
 * c = (1 - β1^t)/(lr·sqrt(1 - β2^t)), the same quantity folded into fewer kernels (torch's capturable
 * path does the same). The step-dependent factors are host numbers passed as kernel constants;
 * nothing is read back.
 */
export class Adam extends Optimizer<AdamOptions> {
  protected readonly stateNames: readonly string[] = ['expAvg', 'expAvgSq', 'maxExpAvgSq'];
  /** True in AdamW: weight decay shrinks the parameter directly instead of adding λ·θ to the gradient. */
  protected readonly decoupledWeightDecay: boolean = false;
  /** Each group's flat buffers (absent: not packed yet; packing is retried on every step). */
  private packs?: Map<ParamGroup<AdamOptions>, PackedGroup>;

  /** Creates the optimizer; `opts` are the defaults of every group. */
  constructor(params: Params<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(
      params,
      withDefaults<AdamOptions>(
        { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false },
        opts,
      ),
    );
    this.packs = new Map();
    for (const g of this.paramGroups) this.pack(g);
  }

  /** Adds a parameter group (packed at once when it can be, see the class comment). */
  override addParamGroup(input: ParamGroupInput<AdamOptions>): void {
    super.addParamGroup(input);
    if (this.packs) this.pack(this.paramGroups.at(-1)!); // the base constructor's calls come before `packs` exists
  }

  /** Packs `group` into flat buffers when possible; returns its pack or null. */
  private pack(group: ParamGroup<AdamOptions>): PackedGroup | null {
    const pg = this.packs?.get(group) ?? packGroup(group.params);
    if (pg) this.packs?.set(group, pg);
    return pg;
  }

  /** The fused step: one adamw kernel per chunk of the group (see the class comment), or false. */
  protected override stepGroup(group: ParamGroup<AdamOptions>): boolean {
    const pg = this.pack(group);
    if (!pg) return false;
    const names: MomentName[] = group.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq'] : ['expAvg', 'expAvgSq'];
    const t = pg.prepare(group.params, this.state, names);
    if (t === null) return false;
    for (const p of group.params) this.state.get(p)!.step = t + 1;
    const { lr, betas, eps, weightDecay, amsgrad, maximize } = group;
    const attrs = { lr, beta1: betas[0], beta2: betas[1], eps, weightDecay, amsgrad, maximize, step: t + 1 };
    for (const c of pg.chunks) {
      const [m, v, vmax] = names.map((n) => c.moment(n));
      adamwUpdate_(c.params, c.grads!, m!, v!, vmax ?? null, { ...attrs, decoupled: this.decoupledWeightDecay });
    }
    return true;
  }

  /** Frees every state tensor and the flat buffers; parameters and gradients keep their values. */
  override dispose(): void {
    super.dispose();
    for (const pg of this.packs?.values() ?? []) pg.dispose();
    this.packs?.clear();
  }

  protected override validateOptions(o: AdamOptions): void {
    super.validateOptions(o);
    checkNonNegative(this.name, 'eps', o.eps);
    checkNonNegative(this.name, 'weightDecay', o.weightDecay);
    const b = o.betas as readonly unknown[];
    if (!Array.isArray(b) || b.length !== 2)
      throw new TensorloomError(`${this.name}: betas must be a pair [beta1, beta2]`);
    b.forEach((beta, i) => {
      if (typeof beta !== 'number' || !(beta >= 0 && beta < 1)) {
        throw new TensorloomError(`${this.name}: invalid beta${i + 1} ${String(beta)}; it must be in [0, 1)`);
      }
    });
  }

  protected updateParam(p: Tensor, grad: Tensor, group: ParamGroup<AdamOptions>, state: ParamState): void {
    const { lr, betas, eps, weightDecay, amsgrad, maximize } = group;
    const [beta1, beta2] = betas;
    const t = state.step;
    let g = maximize ? grad.neg() : grad;
    if (weightDecay !== 0) {
      if (this.decoupledWeightDecay) p.mul_(1 - lr * weightDecay);
      else g = p.mul(weightDecay).add_(g);
    }
    const m = this.stateTensor(state, 'expAvg', p);
    const v = this.stateTensor(state, 'expAvgSq', p);
    m.mul_(beta1).add_(g.mul(1 - beta1));
    v.mul_(beta2).add_(g.mul(g).mul_(1 - beta2));
    let vUsed = v;
    if (amsgrad) vUsed = this.stateTensor(state, 'maxExpAvgSq', p).maximum_(v);
    if (lr === 0) return; // the update is zero; skipping it also avoids 0·inf in the folded constants
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    const denom = vUsed
      .sqrt()
      .mul_(bc1 / (lr * Math.sqrt(bc2)))
      .add_((eps * bc1) / lr);
    p.sub_(m.div(denom));
  }
}

/**
 * AdamW, exactly torch.optim.AdamW: Adam with decoupled weight decay `θ = θ·(1 - lr·λ)` applied
 * before the moment update (defaults as Adam's, but weightDecay 1e-2).
 */
export class AdamW extends Adam {
  protected override readonly decoupledWeightDecay: boolean = true;

  /** Creates the optimizer; `opts` are the defaults of every group. */
  constructor(params: Params<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(params, withDefaults<Partial<AdamOptions>>({ weightDecay: 1e-2 }, opts));
  }
}
