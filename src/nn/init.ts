// In-place parameter initializers (torch.nn.init): overwrite a tensor's values without autograd, so
// they work on parameters that require grad. Each returns the tensor it filled.
import { OpError } from '../core/errors.js';
import { isFloat } from '../core/dtype.js';
import { noGrad, rand, randn, type Generator, type Tensor } from '../tensor/index.js';

function floatTarget(op: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new OpError(op, `needs a float tensor, got ${t.dtype}`);
}

/** Fills `t` with samples of N(mean, std^2). */
export function normal_(t: Tensor, mean = 0, std = 1, generator?: Generator): Tensor {
  floatTarget('normal_', t);
  return noGrad(() => {
    const r = randn(t.shape, { mean, std, generator, device: t.device, dtype: t.dtype });
    t.copy_(r);
    r.dispose();
    return t;
  });
}

/** Fills `t` with samples of U[low, high). */
export function uniform_(t: Tensor, low = 0, high = 1, generator?: Generator): Tensor {
  floatTarget('uniform_', t);
  return noGrad(() => {
    const r = rand(t.shape, { low, high, generator, device: t.device, dtype: t.dtype });
    t.copy_(r);
    r.dispose();
    return t;
  });
}

/** Fills `t` with `value`. */
export function constant_(t: Tensor, value: number): Tensor {
  return noGrad(() => t.fill_(value));
}

/** Fills `t` with zeros. */
export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

/** Fills `t` with ones. */
export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}
