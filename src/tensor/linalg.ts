// Matrix multiplication with torch.matmul semantics: 1-D operands are promoted and the added dim
// removed afterwards; batch dims broadcast through stride-0 views, so the kernel never copies them.
import { isFloat } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import { matmulBiasShape, matmulShape } from '../ops/shapes.js';
import { runKernel } from './engine.js';
import { tidy } from './scope.js';
import type { Tensor } from './tensor.js';
import { expand, reshape, unsqueeze } from './views.js';

/**
 * Matrix product of `a` and `b` (torch.matmul semantics, including 1-D operands and batch broadcasting).
 * With `bias` (n), the last dim of the output, same dtype), `a @ b + bias` with the bias broadcast over
 * every row, added in the kernel's epilogue (one kernel, no separate add); `b` must then be at least 2-D.
 */
export function matmul(a: Tensor, b: Tensor, bias?: Tensor | null): Tensor {
  a.assertLive('matmul');
  b.assertLive('matmul');
  bias?.assertLive('matmul');
  if (a.ndim === 0 || b.ndim === 0)
    throw new OpError('matmul', `operands must have at least 1 dim, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  if (!isFloat(a.dtype) || a.dtype !== b.dtype) {
    throw new OpError('matmul', `operands must be float tensors of the same dtype, got ${a.dtype} and ${b.dtype}`);
  }
  const ka = a.shape[a.ndim - 1]!;
  const kb = b.ndim === 1 ? b.shape[0]! : b.shape[b.ndim - 2]!;
  if (ka !== kb)
    throw new OpError('matmul', `inner dims differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} (${ka} vs ${kb})`);
  if (bias) {
    if (b.ndim < 2) throw new OpError('matmul', `a bias needs a 2-D (or batched) b, got ${fmtShape(b.shape)}`);
    matmulBiasShape(bias.shape, b.shape[b.ndim - 1]!);
    if (bias.dtype !== a.dtype)
      throw new OpError('matmul', `bias must have the operands' dtype ${a.dtype}, got ${bias.dtype}`);
  }
  if (a.ndim >= 2 && b.ndim >= 2) return matmul2(a, b, bias ?? null);
  return tidy(() => {
    const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
    const b2 = b.ndim === 1 ? unsqueeze(b, -1) : b;
    const out = matmul2(a2, b2, bias ?? null);
    const shape = [...out.shape];
    if (b.ndim === 1) shape.pop();
    if (a.ndim === 1) shape.splice(shape.length - (b.ndim === 1 ? 1 : 2), 1);
    return reshape(out, shape);
  });
}

function matmul2(a: Tensor, b: Tensor, bias: Tensor | null): Tensor {
  const { batch, m, k, n } = matmulShape(a.shape, b.shape);
  const ins = (x: Tensor, y: Tensor) => (bias ? [x, y, bias] : [x, y]);
  const needA = a.ndim !== batch.length + 2 || a.shape.slice(0, -2).some((d, i) => d !== batch[i]);
  const needB = b.ndim !== batch.length + 2 || b.shape.slice(0, -2).some((d, i) => d !== batch[i]);
  if (!needA && !needB) return runKernel('matmul', ins(a, b), {}, [...batch, m, n], a.dtype);
  if (b.ndim === 2 && !needA) {
    // A weight shared across a batch (Linear layers, the tied GPT head): one (rows, k) @ (k, n) product.
    // Its gradient is then one (k, rows) @ (rows, n) product too, instead of a per-item product summed
    // over the batch afterwards through a (batch, k, n) temporary (400+ MB for a GPT-2 head).
    return tidy(() =>
      reshape(runKernel('matmul', ins(reshape(a, [-1, k]), b), {}, [batch.reduce((p, d) => p * d, m), n], a.dtype), [
        ...batch,
        m,
        n,
      ]),
    );
  }
  return tidy(() => {
    const ae = needA ? expand(a, [...batch, m, k]) : a;
    const be = needB ? expand(b, [...batch, k, n]) : b;
    return runKernel('matmul', ins(ae, be), {}, [...batch, m, n], a.dtype);
  });
}
