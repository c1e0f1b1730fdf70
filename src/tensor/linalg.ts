// Matrix multiplication with torch.matmul semantics: 1-D operands are promoted and the added dim
// removed afterwards; batch dims broadcast through stride-0 views, so the kernel never copies them. The
// kernel's epilogue can add a bias, apply an activation and add a residual (F.linear, the GPT block).
import { isFloat } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import type { AttrMap, MatmulActivation } from '../ops/opcodes.js';
import { matmulBiasShape, matmulShape } from '../ops/shapes.js';
import { checkInplace } from './elementwise.js';
import { backendOf, runKernel } from './engine.js';
import { isGradEnabled } from './gradmode.js';
import { tidy } from './scope.js';
import type { Tensor } from './tensor.js';
import { expand, reshape, unsqueeze } from './views.js';

/** The fused epilogue of `matmul` beyond the bias. */
export interface MatmulEpilogue {
  /** Applied to a @ b + bias: 'gelu' (tanh approximation, as the `gelu` op) or 'relu'. */
  activation?: MatmulActivation | null;
  /**
   * Added after the activation; it must have the output's shape (any strides). Its dtype is the
   * operands' or, with float16 operands, float32: the result is then float32 (the autocast epilogue:
   * float16 products, float32 accumulation and store).
   */
  residual?: Tensor | null;
}

/**
 * Matrix product of `a` and `b` (torch.matmul semantics, including 1-D operands and batch broadcasting).
 * With `bias` (n), the last dim of the output, same dtype), `a @ b + bias` with the bias broadcast over
 * every row, added in the kernel's epilogue (one kernel, no separate add); `b` must then be at least 2-D.
 * `opts` extends the epilogue: `act(a @ b + bias) + residual`, still one kernel (see MatmulEpilogue).
 */
export function matmul(a: Tensor, b: Tensor, bias?: Tensor | null, opts: MatmulEpilogue = {}): Tensor {
  a.assertLive('matmul');
  b.assertLive('matmul');
  bias?.assertLive('matmul');
  const residual = opts.residual ?? null;
  const activation = opts.activation ?? null;
  residual?.assertLive('matmul');
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
  if (activation !== null && activation !== 'gelu' && activation !== 'relu')
    throw new OpError('matmul', `activation must be 'gelu' or 'relu', got ${String(activation)}`);
  if (residual) checkResidual(a, b, residual);
  const ep: Epilogue = { bias: bias ?? null, residual, activation };
  if (a.ndim >= 2 && b.ndim >= 2) return matmul2(a, b, ep);
  return tidy(() => {
    const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
    const b2 = b.ndim === 1 ? unsqueeze(b, -1) : b;
    // the residual has the final shape: give it back the dims the 1-D operands lose
    let r2 = residual;
    if (r2 && b.ndim === 1) r2 = unsqueeze(r2, -1);
    if (r2 && a.ndim === 1) r2 = unsqueeze(r2, -2);
    const out = matmul2(a2, b2, { ...ep, residual: r2 });
    const shape = [...out.shape];
    if (b.ndim === 1) shape.pop();
    if (a.ndim === 1) shape.splice(shape.length - (b.ndim === 1 ? 1 : 2), 1);
    return reshape(out, shape);
  });
}

/** The output shape of a @ b (torch.matmul's, 1-D operands' dims dropped). */
function outShape(a: Tensor, b: Tensor): number[] {
  const as = a.ndim === 1 ? [1, a.shape[0]!] : a.shape;
  const bs = b.ndim === 1 ? [b.shape[0]!, 1] : b.shape;
  const { batch, m, n } = matmulShape(as, bs);
  const shape = [...batch, m, n];
  if (b.ndim === 1) shape.pop();
  if (a.ndim === 1) shape.splice(shape.length - (b.ndim === 1 ? 1 : 2), 1);
  return shape;
}

/** The residual must have the output's shape and the operands' dtype (or float32 over float16 operands). */
function checkResidual(a: Tensor, b: Tensor, r: Tensor): void {
  const shape = outShape(a, b);
  if (r.ndim !== shape.length || r.shape.some((d, i) => d !== shape[i]))
    throw new OpError(
      'matmul',
      `residual must have the output's shape ${fmtShape(shape)} (${fmtShape(a.shape)} @ ${fmtShape(b.shape)}), got ${fmtShape(r.shape)}`,
    );
  if (r.dtype !== a.dtype && !(a.dtype === 'float16' && r.dtype === 'float32'))
    throw new OpError(
      'matmul',
      `residual must have the operands' dtype ${a.dtype}${a.dtype === 'float16' ? ' or float32' : ''}, got ${r.dtype}`,
    );
}

interface Epilogue {
  bias: Tensor | null;
  residual: Tensor | null;
  activation: MatmulActivation | null;
}

/** Whether r's leading dims (all but the last) fold into one row dim without a copy. */
function foldsRows(r: Tensor): boolean {
  let next = -1; // the stride the next outer (non-unit) dim must have
  for (let d = r.ndim - 2; d >= 0; d--) {
    const size = r.shape[d]!;
    if (size === 1) continue;
    if (next >= 0 && r.strides[d] !== next) return false;
    next = r.strides[d]! * size;
  }
  return true;
}

function matmul2(a: Tensor, b: Tensor, ep: Epilogue): Tensor {
  const { batch, m, k, n } = matmulShape(a.shape, b.shape);
  const { bias, residual, activation } = ep;
  const attrs: AttrMap['matmul'] = {};
  if (bias) attrs.bias = true;
  if (residual) attrs.residual = true;
  if (activation) attrs.activation = activation;
  const dtype = residual ? residual.dtype : a.dtype;
  // The pre-activation h is written only when a backward may need it (the rule's activation gradient).
  const needH =
    activation !== null && isGradEnabled() && [a, b, bias, residual].some((t) => t !== null && t.requiresGrad);
  const run = (x: Tensor, y: Tensor, r: Tensor | null, shape: number[]): Tensor => {
    const ins = [x, y];
    if (bias) ins.push(bias);
    if (r) ins.push(r);
    return runKernel('matmul', ins, attrs, shape, dtype, needH ? { aux: [{ shape, dtype }] } : {});
  };
  const needA = a.ndim !== batch.length + 2 || a.shape.slice(0, -2).some((d, i) => d !== batch[i]);
  const needB = b.ndim !== batch.length + 2 || b.shape.slice(0, -2).some((d, i) => d !== batch[i]);
  if (!needA && !needB) return run(a, b, residual, [...batch, m, n]);
  if (b.ndim === 2 && !needA && (!residual || foldsRows(residual))) {
    // A weight shared across a batch (Linear layers, the tied GPT head): one (rows, k) @ (k, n) product.
    // Its gradient is then one (k, rows) @ (rows, n) product too, instead of a per-item product summed
    // over the batch afterwards through a (batch, k, n) temporary (400+ MB for a GPT-2 head).
    const rows = batch.reduce((p, d) => p * d, m);
    return tidy(() =>
      reshape(run(reshape(a, [-1, k]), b, residual && reshape(residual, [rows, n]), [rows, n]), [...batch, m, n]),
    );
  }
  return tidy(() => {
    const ae = needA ? expand(a, [...batch, m, k]) : a;
    const be = needB ? expand(b, [...batch, k, n]) : b;
    return run(ae, be, residual, [...batch, m, n]);
  });
}

/**
 * @internal target += x @ y in one matmul kernel whose residual is `target` itself (it is both the
 * residual input and the output): gradient accumulation into a leaf's `.grad` with no temporary and no
 * separate add. 2-D operands of the target's (float) dtype; the target is contiguous and shares no
 * storage with them. Bumps the target's version like the other in-place ops.
 */
export function matmulAccumulate_(target: Tensor, x: Tensor, y: Tensor): Tensor {
  const op = 'matmulAccumulate_';
  checkInplace(op, target, [x, y]);
  const shapes = `${fmtShape(target.shape)} += ${fmtShape(x.shape)} @ ${fmtShape(y.shape)}`;
  if (target.ndim !== 2 || x.ndim !== 2 || y.ndim !== 2)
    throw new OpError(op, `needs a 2-D target and 2-D operands, got ${shapes}`);
  if (x.shape[1] !== y.shape[0] || target.shape[0] !== x.shape[0] || target.shape[1] !== y.shape[1])
    throw new OpError(op, `shapes do not match: ${shapes}`);
  if (!isFloat(target.dtype) || x.dtype !== target.dtype || y.dtype !== target.dtype)
    throw new OpError(
      op,
      `operands must have the target's float dtype, got ${target.dtype} += ${x.dtype} @ ${y.dtype}`,
    );
  if (!target.isContiguous)
    throw new OpError(op, `the target must be contiguous, got strides ${fmtShape(target.strides)} (${shapes})`);
  if (x.storage === target.storage || y.storage === target.storage)
    throw new OpError(op, `an operand shares the target's storage (${shapes})`);
  const t = target.spec();
  backendOf(op, [target, x, y]).run('matmul', [x.spec(), y.spec(), t], t, { residual: true });
  target.storage.version++;
  return target;
}
