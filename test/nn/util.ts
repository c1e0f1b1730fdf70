// Helpers shared by the nn tests: moving float64 oracle arrays into tensors and back, and reading the
// gradients of a list of tensors as float64 arrays for the gradient checks.
import { tensor, type Tensor } from '../../src/index.js';
import { nd, type ND } from '../oracle/ndarray.js';

/** A float32 tensor holding `a`'s values (rounded to float32). */
export function toTensor(a: ND, opts: { requiresGrad?: boolean } = {}): Tensor {
  return tensor(Float32Array.from(a.data), { shape: a.shape, requiresGrad: opts.requiresGrad ?? false });
}

/** An int32 tensor holding `a`'s (integer) values. */
export function toIntTensor(a: ND): Tensor {
  return tensor(Int32Array.from(a.data), { shape: a.shape });
}

/** A tensor's values as a float64 ND of the same shape. */
export async function toND(t: Tensor): Promise<ND> {
  return nd(t.shape, await t.toArray());
}

/** The `.grad` of each tensor as float64 arrays (throws when one has none). */
export async function gradsOf(ts: readonly Tensor[]): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  for (const t of ts) {
    if (!t.grad) throw new Error(`tensor #${t.id} (shape [${t.shape.join(', ')}]) has no grad`);
    out.push(Float64Array.from(await t.grad.toArray()));
  }
  return out;
}

/** The ND of a tensor rounded to float32, as the oracle should see inputs the library saw. */
export function f32(a: ND): ND {
  return nd(a.shape, Float32Array.from(a.data));
}
