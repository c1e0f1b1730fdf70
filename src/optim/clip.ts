// Gradient clipping: by total norm (torch.nn.utils.clip_grad_norm_) and by value. Both work on the
// device: the norm and the clip coefficient stay tensors, so clipping never waits for the device.
import { TensorloomError } from '../core/errors.js';
import { Tensor, binary, contiguousRuns, noGrad, tidy, zeros } from '../tensor/index.js';

/** The gradients of `params` that are set (parameters whose `.grad` is null are skipped). */
function gradsOf(params: Tensor | Iterable<Tensor>): Tensor[] {
  const list = params instanceof Tensor ? [params] : [...params];
  return list.flatMap((p) => (p.grad ? [p.grad] : []));
}

/** One gradient's contribution to the total norm: sum(|g|^p), or max(|g|) for the infinity norm (float32). */
function partial(g: Tensor, normType: number): Tensor {
  const a = g.cast('float32');
  if (normType === Infinity) return a.abs().max();
  if (normType === 2) return a.mul(a).sum();
  if (normType === 1) return a.abs().sum();
  return a.abs().pow(normType).sum();
}

/**
 * Scales the gradients of `params` in place so that their total `normType`-norm (all gradients seen
 * as one vector) is at most `maxNorm`, and returns that total norm (before clipping) as a 0-d
 * float32 tensor, like torch.nn.utils.clip_grad_norm_:
 *
 *     total = (Σ_grads Σ_i |g_i|^p)^(1/p)          (p = normType; max_i |g_i| for Infinity)
 *     coef  = min(1, maxNorm / (total + 1e-6))
 *     g     = g · coef                             (for every gradient, always: no host branch)
 *
 * Everything runs on the device; nothing is read back (read the returned norm when logging).
 * Gradients that lie side by side in one buffer (an Adam optimizer packs them) are reduced and
 * scaled as one flat run, so the cost is a few kernels per buffer, not per parameter.
 * Non-finite gradients give a non-finite norm and coefficient, as in torch with
 * error_if_nonfinite=false. With no gradients it returns a zero tensor and changes nothing.
 */
export function clipGradNorm_(params: Tensor | Iterable<Tensor>, maxNorm: number, normType = 2): Tensor {
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm) || maxNorm < 0) {
    throw new TensorloomError(`clipGradNorm_: invalid maxNorm ${String(maxNorm)}; it must be a number >= 0`);
  }
  if (typeof normType !== 'number' || !(normType > 0)) {
    throw new TensorloomError(`clipGradNorm_: invalid normType ${String(normType)}; it must be > 0 (or Infinity)`);
  }
  const grads = gradsOf(params);
  return noGrad(() =>
    tidy(() => {
      if (grads.length === 0) return zeros([]);
      const runs = contiguousRuns(grads); // packed gradients (see optim/packed.ts) are one run per buffer
      let acc = partial(runs[0]!, normType);
      for (const g of runs.slice(1))
        acc = normType === Infinity ? acc.maximum(partial(g, normType)) : acc.add(partial(g, normType));
      const total = normType === Infinity || normType === 1 ? acc : normType === 2 ? acc.sqrt() : acc.pow(1 / normType);
      const coef = binary('div', maxNorm, total.add(1e-6)).minimum(1);
      for (const g of runs) g.mul_(coef.cast(g.dtype));
      return total;
    }),
  );
}

/**
 * Clamps every gradient element of `params` into [-clipValue, clipValue] in place, like
 * torch.nn.utils.clip_grad_value_. NaN elements stay NaN.
 */
export function clipGradValue_(params: Tensor | Iterable<Tensor>, clipValue: number): void {
  if (typeof clipValue !== 'number' || Number.isNaN(clipValue) || clipValue < 0) {
    throw new TensorloomError(`clipGradValue_: invalid clipValue ${String(clipValue)}; it must be a number >= 0`);
  }
  const grads = gradsOf(params);
  noGrad(() => {
    for (const g of grads) g.maximum_(-clipValue).minimum_(clipValue);
  });
}
