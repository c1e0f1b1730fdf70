// Index-driven ops (gather, scatterAdd, indexSelect, indexAdd, oneHot), joining (cat, stack) and
// triangular masks.
import { promoteTypes, type DType } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import { normAxis } from '../core/shape.js';
import { concatShape, gatherShape, indexAddShape, indexSelectShape, scatterShape } from '../ops/shapes.js';
import { arange, ones, zeros } from './creation.js';
import { binary, cast, checkInplace, where } from './elementwise.js';
import { backendOf, runKernel } from './engine.js';
import { tidy } from './scope.js';
import type { Tensor } from './tensor.js';
import { reshape, unsqueeze } from './views.js';

function checkIndex(op: string, index: Tensor): void {
  index.assertLive(op);
  if (index.dtype !== 'int32' && index.dtype !== 'uint32')
    throw new OpError(op, `index must be int32 or uint32, got ${index.dtype}`);
}

/** torch.gather: `out[i][j] = x[index[i][j]][j]` for dim 0, and likewise for other dims. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  checkIndex('gather', index);
  const d = normAxis('gather', dim, x.ndim);
  return runKernel('gather', [x, index], { dim: d }, gatherShape('gather', x.shape, d, index.shape), x.dtype);
}

/** Out-of-place torch.scatter_add: `x` plus `src` summed into the positions `index` names along `dim`. */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  checkIndex('scatterAdd', index);
  const d = normAxis('scatterAdd', dim, x.ndim);
  if (src.dtype !== x.dtype)
    throw new OpError('scatterAdd', `src dtype ${src.dtype} differs from self dtype ${x.dtype}`);
  return runKernel(
    'scatterAdd',
    [x, index, src],
    { dim: d },
    scatterShape('scatterAdd', x.shape, d, index.shape, src.shape),
    x.dtype,
  );
}

/** torch.index_select: the slices of `x` along `dim` named by a 1-D index (rows of a table for dim 0). */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  checkIndex('indexSelect', index);
  const d = normAxis('indexSelect', dim, x.ndim);
  return runKernel('indexSelect', [x, index], { dim: d }, indexSelectShape(x.shape, d, index.shape), x.dtype);
}

/** Out-of-place torch.index_add: `x` with `src`'s slices added at the positions a 1-D index names along `dim`. */
export function indexAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  checkIndex('indexAdd', index);
  const d = normAxis('indexAdd', dim, x.ndim);
  if (src.dtype !== x.dtype) throw new OpError('indexAdd', `src dtype ${src.dtype} differs from self dtype ${x.dtype}`);
  return runKernel('indexAdd', [x, index, src], { dim: d }, indexAddShape(x.shape, d, index.shape, src.shape), x.dtype);
}

/**
 * In-place index_add: adds `src`'s slices into the contiguous `target` at the positions a 1-D index
 * names along `dim`. This is how an embedding gradient accumulates into an existing `.grad` buffer
 * without a dense temporary. Not recorded by autograd (run under noGrad).
 */
export function indexAddInplace(target: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  checkInplace('indexAdd_', target, [index, src]);
  checkIndex('indexAdd_', index);
  const d = normAxis('indexAdd_', dim, target.ndim);
  if (!target.isContiguous)
    throw new OpError('indexAdd_', `the target must be contiguous, got strides ${fmtShape(target.strides)}`);
  if (src.dtype !== target.dtype)
    throw new OpError('indexAdd_', `src dtype ${src.dtype} differs from target dtype ${target.dtype}`);
  indexAddShape(target.shape, d, index.shape, src.shape);
  backendOf('indexAdd_', [target, index, src]).run(
    'indexAdd',
    [target.spec(), index.spec(), src.spec()],
    target.spec(),
    { dim: d },
  );
  target.storage.version++;
  return target;
}

/** Rows of `weight` (V, D) for every id in `ids` (any shape): output (...ids.shape, D). */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  if (weight.ndim !== 2)
    throw new OpError('embedding', `weight must be 2-D (vocab, dim), got ${fmtShape(weight.shape)}`);
  return tidy(() => reshape(indexSelect(weight, 0, reshape(ids, [-1])), [...ids.shape, weight.shape[1]!]));
}

/** Concatenates tensors along `axis` (dtypes promote). */
export function cat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new OpError('cat', 'needs at least one tensor');
  const a = normAxis('cat', axis, xs[0]!.ndim);
  const shape = concatShape(
    xs.map((x) => x.shape),
    a,
    'cat',
  );
  let dtype: DType = xs[0]!.dtype;
  for (const x of xs) dtype = promoteTypes(dtype, x.dtype, 'cat');
  return tidy(() =>
    runKernel(
      'concat',
      xs.map((x) => cast(x, dtype)),
      { axis: a },
      shape,
      dtype,
    ),
  );
}

/** Stacks same-shaped tensors along a new dim `axis`. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new OpError('stack', 'needs at least one tensor');
  const first = xs[0]!;
  for (const x of xs) {
    if (x.shape.length !== first.shape.length || x.shape.some((d, i) => d !== first.shape[i])) {
      throw new OpError(
        'stack',
        `all tensors must have the same shape, got ${xs.map((t) => fmtShape(t.shape)).join(', ')}`,
      );
    }
  }
  return tidy(() =>
    cat(
      xs.map((x) => unsqueeze(x, axis)),
      axis,
    ),
  );
}

/** Bool mask (rows, cols) that is true where col - row >= k (upper) or <= k (lower). */
function triMask(rows: number, cols: number, k: number, upper: boolean, device: Tensor['device']): Tensor {
  return tidy(() => {
    const r = reshape(arange(0, rows, 1, { device }), [rows, 1]);
    const c = reshape(arange(0, cols, 1, { device }), [1, cols]);
    const diff = binary('sub', c, r);
    return binary(upper ? 'ge' : 'le', diff, k);
  });
}

/** Zeroes elements below the k-th diagonal of the last two dims (torch.triu). */
export function triu(x: Tensor, k = 0): Tensor {
  if (x.ndim < 2) throw new OpError('triu', `needs at least 2 dims, got ${fmtShape(x.shape)}`);
  return tidy(() =>
    where(
      triMask(x.shape[x.ndim - 2]!, x.shape[x.ndim - 1]!, k, true, x.device),
      x,
      zeros([], { dtype: x.dtype, device: x.device }),
    ),
  );
}

/** Zeroes elements above the k-th diagonal of the last two dims (torch.tril). */
export function tril(x: Tensor, k = 0): Tensor {
  if (x.ndim < 2) throw new OpError('tril', `needs at least 2 dims, got ${fmtShape(x.shape)}`);
  return tidy(() =>
    where(
      triMask(x.shape[x.ndim - 2]!, x.shape[x.ndim - 1]!, k, false, x.device),
      x,
      zeros([], { dtype: x.dtype, device: x.device }),
    ),
  );
}

/**
 * One-hot encoding of integer ids: output (...ids.shape, numClasses) of `dtype` (default float32). An id
 * outside [0, numClasses) is refused by the scatterAdd it is built on: a backend that checks while the
 * op runs (cpu) throws here, renamed to oneHot; one that checks on the device (webgpu) cannot, and the
 * next read throws the scatterAdd's error (same value, position and range).
 */
export function oneHot(ids: Tensor, numClasses: number, dtype: DType = 'float32'): Tensor {
  checkIndex('oneHot', ids);
  if (!Number.isInteger(numClasses) || numClasses <= 0)
    throw new OpError('oneHot', `numClasses must be a positive integer, got ${numClasses}`);
  return tidy(() => {
    // scatter ones into zeros: an id outside [0, numClasses) is refused by the scatter's range check
    const at = unsqueeze(ids, -1); // (...ids.shape, 1)
    const z = zeros([...ids.shape, numClasses], { device: ids.device });
    try {
      return cast(scatterAdd(z, -1, at, ones(at.shape, { device: ids.device })), dtype);
    } catch (e) {
      if (e instanceof OpError) throw new OpError('oneHot', `class ids must lie in [0, ${numClasses}): ${e.message}`);
      throw e;
    }
  });
}
