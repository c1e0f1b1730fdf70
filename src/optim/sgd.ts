// Stochastic gradient descent with momentum, dampening, Nesterov momentum, L2 weight decay and
// maximize: torch.optim.SGD's update rule, written as in-place tensor ops.
import { TensorloomError } from '../core/errors.js';
import type { Tensor } from '../tensor/index.js';
import {
  Optimizer,
  checkNonNegative,
  withDefaults,
  type GroupOptions,
  type ParamGroup,
  type ParamState,
  type Params,
} from './optimizer.js';

/** Hyperparameters of SGD (per group). */
export interface SGDOptions extends GroupOptions {
  /** Momentum factor μ (default 0: plain SGD, no state). */
  momentum: number;
  /** Dampening τ of the momentum (default 0). */
  dampening: number;
  /** L2 penalty λ, added to the gradient (default 0). */
  weightDecay: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov: boolean;
  /** Maximize the objective instead of minimizing it (default false). */
  maximize: boolean;
}

/**
 * SGD, exactly torch.optim.SGD (defaults: lr 1e-3, momentum 0, dampening 0, weightDecay 0). Per
 * parameter θ with gradient ∇, at step t:
 *
 *     g = maximize ? -∇ : ∇
 *     g = g + λ·θ                                  (if weightDecay λ ≠ 0)
 *     b = t == 1 ? g : μ·b + (1 - τ)·g             (if momentum μ ≠ 0; b is the momentumBuffer state)
 *     g = nesterov ? g + μ·b : b                   (if momentum μ ≠ 0)
 *     θ = θ - lr·g
 *
 * Note that the first step copies the gradient into the buffer without dampening, as torch does.
 */
export class SGD extends Optimizer<SGDOptions> {
  protected readonly stateNames = ['momentumBuffer'] as const;

  /** Creates the optimizer; `opts` are the defaults of every group. */
  constructor(params: Params<SGDOptions>, opts: Partial<SGDOptions> = {}) {
    super(
      params,
      withDefaults<SGDOptions>(
        { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false },
        opts,
      ),
    );
  }

  protected override validateOptions(o: SGDOptions): void {
    super.validateOptions(o);
    checkNonNegative(this.name, 'momentum', o.momentum);
    checkNonNegative(this.name, 'weightDecay', o.weightDecay);
    if (typeof o.dampening !== 'number' || !Number.isFinite(o.dampening)) {
      throw new TensorloomError(`${this.name}: invalid dampening ${String(o.dampening)}; it must be a finite number`);
    }
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw new TensorloomError(
        `${this.name}: Nesterov momentum needs momentum > 0 and dampening 0 (got momentum ${o.momentum}, dampening ${o.dampening})`,
      );
    }
  }

  protected updateParam(p: Tensor, grad: Tensor, group: ParamGroup<SGDOptions>, state: ParamState): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    let g = maximize ? grad.neg() : grad;
    if (weightDecay !== 0) g = p.mul(weightDecay).add_(g);
    if (momentum !== 0) {
      const first = state.tensors.momentumBuffer === undefined;
      const buf = this.stateTensor(state, 'momentumBuffer', p, () => g.clone());
      if (!first) buf.mul_(momentum).add_(dampening === 0 ? g : g.mul(1 - dampening));
      g = nesterov ? buf.mul(momentum).add_(g) : buf;
    }
    p.sub_(g.mul(lr));
  }
}
