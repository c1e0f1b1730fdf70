// Autocast: a scope in which the matmul-heavy layers (F.linear, the attention matmuls, a GPT's head)
// compute in float16 while parameters stay float32 masters, as torch.autocast does for matmuls. The
// casts are ordinary differentiable ops, so gradients flow back to the float32 parameters.
import { TensorloomError } from '../core/errors.js';
import { isFloat, type DType } from '../core/dtype.js';
import type { Tensor } from '../tensor/index.js';

/** The compute dtype of the innermost autocast scope (null outside any). */
let current: DType | null = null;

/**
 * Runs `fn` with matmul-heavy layers computing in `dtype` (float16 for mixed precision; float32 turns a
 * surrounding scope off). Synchronous only: a promise result is refused, since the scope would end
 * before the awaited work ran. Normalization, softmax and loss statistics stay in float32.
 */
export function autocast<T>(dtype: 'float16' | 'float32', fn: () => T): T {
  if (dtype !== 'float16' && dtype !== 'float32')
    throw new TensorloomError(`autocast: dtype must be 'float16' or 'float32', got ${String(dtype)}`);
  const outer = current;
  current = dtype === 'float32' ? null : dtype;
  try {
    const r = fn();
    if (r instanceof Promise) throw new TensorloomError('autocast: fn must be synchronous (it returned a promise)');
    return r;
  } finally {
    current = outer;
  }
}

/** The dtype matmuls compute in under the current autocast scope, or null when none is active. */
export function autocastDType(): DType | null {
  return current;
}

/** `t` cast to the autocast compute dtype when a scope is active and `t` is float; else `t` itself. */
export function autocastOperand(t: Tensor): Tensor {
  return current && isFloat(t.dtype) ? t.cast(current) : t;
}
