// View ops: reshape, permute, slice, expand and the helpers built on them. Views share storage with
// their base (like PyTorch); `reshape` copies only when the strides make a view impossible.
import { OpError, fmtShape } from '../core/errors.js';
import { contiguousStrides, normAxis, numel, validateShape } from '../core/shape.js';
import { makeView, runKernel } from './engine.js';
import { Tensor } from './tensor.js';

/** Resolves one `-1` in a target shape against `n` elements. */
function resolveShape(op: string, shape: readonly number[], n: number, from: readonly number[]): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg !== out.lastIndexOf(-1)) throw new OpError(op, `only one dim can be -1, got ${fmtShape(shape)}`);
  if (neg >= 0) {
    const rest = out.reduce((a, d, i) => (i === neg ? a : a * d), 1);
    if (rest === 0 || n % rest !== 0)
      throw new OpError(op, `cannot reshape ${fmtShape(from)} (${n} elements) into ${fmtShape(shape)}`);
    out[neg] = n / rest;
  }
  validateShape(op, out);
  if (numel(out) !== n)
    throw new OpError(op, `cannot reshape ${fmtShape(from)} (${n} elements) into ${fmtShape(shape)}`);
  return out;
}

/** Strides that view (shape, strides) as `target` without copying, or null (PyTorch's computeStride). */
function viewStrides(shape: readonly number[], strides: readonly number[], target: readonly number[]): number[] | null {
  if (numel(shape) === 0 || shape.length === 0) return contiguousStrides(target);
  const out = new Array<number>(target.length);
  let viewD = target.length - 1;
  let chunkBase = strides[shape.length - 1]!;
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorNumel *= shape[d]!;
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorNumel * chunkBase)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || target[viewD] === 1)) {
        out[viewD] = viewNumel * chunkBase;
        viewNumel *= target[viewD]!;
        viewD--;
      }
      if (viewNumel !== tensorNumel) return null;
      if (d > 0) {
        chunkBase = strides[d - 1]!;
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  return viewD === -1 ? out : null;
}

/** A view with a new shape; throws when the strides do not allow one (use `reshape`). */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  const target = resolveShape('view', shape, x.size, x.shape);
  const strides = viewStrides(x.shape, x.strides, target);
  if (!strides)
    throw new OpError(
      'view',
      `a tensor of shape ${fmtShape(x.shape)} with strides ${fmtShape(x.strides)} cannot be viewed as ${fmtShape(target)}; use reshape()`,
    );
  return makeView('reshape', x, { shape: target }, target, strides, x.offset);
}

/** A contiguous copy, or `x` itself when already contiguous. */
export function contiguous(x: Tensor): Tensor {
  x.assertLive('contiguous');
  if (x.isContiguous) return x;
  return runKernel('copy', [x], {}, x.shape, x.dtype, { broadcast: true });
}

/** New shape with the same elements (one dim may be -1): a view when possible, else a copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const target = resolveShape('reshape', shape, x.size, x.shape);
  const strides = viewStrides(x.shape, x.strides, target);
  if (strides) return makeView('reshape', x, { shape: target }, target, strides, x.offset);
  const c = contiguous(x);
  const out = makeView('reshape', c, { shape: target }, target, contiguousStrides(target), c.offset);
  c.dispose();
  return out;
}

/** Reorders dims: output dim i is input dim `dims[i]`. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const nd = x.ndim;
  const d = dims.map((a) => normAxis('permute', a, nd));
  if (d.length !== nd || new Set(d).size !== nd)
    throw new OpError('permute', `[${dims.join(', ')}] is not a permutation of the ${nd} dims of ${fmtShape(x.shape)}`);
  return makeView(
    'permute',
    x,
    { dims: d },
    d.map((i) => x.shape[i]!),
    d.map((i) => x.strides[i]!),
    x.offset,
  );
}

/** Swaps two dims. */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const perm = Array.from({ length: x.ndim }, (_, i) => i);
  const a = normAxis('transpose', dim0, x.ndim);
  const b = normAxis('transpose', dim1, x.ndim);
  [perm[a], perm[b]] = [perm[b]!, perm[a]!];
  return permute(x, perm);
}

/**
 * Elements start, start+step, ... below end along `axis` (Python slice semantics: negative bounds
 * count from the end, out-of-range bounds clamp). `step` must be positive.
 */
export function slice(x: Tensor, axis: number, start = 0, end = Infinity, step = 1): Tensor {
  const a = normAxis('slice', axis, x.ndim);
  if (!Number.isInteger(step) || step <= 0) throw new OpError('slice', `step must be a positive integer, got ${step}`);
  const n = x.shape[a]!;
  const norm = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const s = norm(start);
  const e = Math.max(norm(end), s);
  const len = Math.ceil((e - s) / step);
  const shape = [...x.shape];
  shape[a] = len;
  const strides = [...x.strides];
  strides[a] = x.strides[a]! * step;
  return makeView('slice', x, { axis: a, start: s, end: e, step }, shape, strides, x.offset + s * x.strides[a]!);
}

/** `length` elements from `start` along `dim` (torch.narrow). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const a = normAxis('narrow', dim, x.ndim);
  const n = x.shape[a]!;
  if (start < 0 || length < 0 || start + length > n)
    throw new OpError('narrow', `[${start}, ${start + length}) is out of range for dim ${dim} of size ${n}`);
  return slice(x, a, start, start + length);
}

/** Stretches size-1 dims (and adds leading dims) to `shape` without copying; -1 keeps a dim. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const nd = shape.length;
  if (nd < x.ndim) throw new OpError('expand', `cannot expand ${fmtShape(x.shape)} to fewer dims ${fmtShape(shape)}`);
  const lead = nd - x.ndim;
  const outShape: number[] = [];
  const strides: number[] = [];
  for (let i = 0; i < nd; i++) {
    const src = i >= lead ? x.shape[i - lead]! : 1;
    let want = shape[i]!;
    if (want === -1) {
      if (i < lead) throw new OpError('expand', `-1 is not allowed for the new leading dim ${i} in ${fmtShape(shape)}`);
      want = src;
    }
    if (src !== want && src !== 1)
      throw new OpError(
        'expand',
        `cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}: dim ${i} is ${src}, not 1`,
      );
    outShape.push(want);
    strides.push(i < lead || (src === 1 && want !== 1) ? 0 : x.strides[i - lead]!);
  }
  return makeView('expand', x, { shape: outShape }, outShape, strides, x.offset);
}

/** Inserts a size-1 dim at `dim` (which may be ndim, or negative). */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normAxis('unsqueeze', dim, x.ndim + 1);
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  return reshape(x, shape);
}

/** Removes size-1 dims: all of them, or only `dim` (a no-op view if that dim is not 1). */
export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const d = normAxis('squeeze', dim, x.ndim);
  if (x.shape[d] !== 1) return reshape(x, x.shape);
  return reshape(
    x,
    x.shape.filter((_, i) => i !== d),
  );
}

/** Flattens dims start..end (inclusive) into one. */
export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis('flatten', start, x.ndim);
  const e = normAxis('flatten', end, x.ndim);
  if (e < s) throw new OpError('flatten', `end dim ${end} comes before start dim ${start}`);
  const shape = [...x.shape.slice(0, s), x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

/** The sub-tensor at `index` along `dim`, with that dim removed. */
export function select(x: Tensor, dim: number, index: number): Tensor {
  const d = normAxis('select', dim, x.ndim);
  const n = x.shape[d]!;
  const i = index < 0 ? index + n : index;
  if (!Number.isInteger(i) || i < 0 || i >= n)
    throw new OpError('select', `index ${index} is out of range for dim ${dim} of size ${n}`);
  const s = slice(x, d, i, i + 1);
  const out = squeeze(s, d);
  s.dispose();
  return out;
}

/** Splits along `axis` into pieces of `size` (the last may be smaller) or of the listed sizes. */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const a = normAxis('split', axis, x.ndim);
  const n = x.shape[a]!;
  const list =
    typeof sizes === 'number'
      ? Array.from({ length: Math.max(1, Math.ceil(n / sizes)) }, (_, i) => Math.min(sizes, n - i * sizes))
      : [...sizes];
  if (list.reduce((p, q) => p + q, 0) !== n)
    throw new OpError('split', `sizes [${list.join(', ')}] do not add up to dim ${axis} of size ${n}`);
  let at = 0;
  return list.map((len) => {
    const t = slice(x, a, at, at + len);
    at += len;
    return t;
  });
}

/** Splits into `chunks` nearly equal pieces along `axis` (torch.chunk). */
export function chunk(x: Tensor, chunks: number, axis = 0): Tensor[] {
  const n = x.shape[normAxis('chunk', axis, x.ndim)]!;
  return split(x, Math.ceil(n / chunks) || 1, axis);
}

/** A new handle on the same storage that is cut from the autograd graph (requiresGrad false). */
export function detach(x: Tensor): Tensor {
  x.assertLive('detach');
  x.storage.retain();
  return new Tensor(x.storage, x.shape, x.strides, x.offset, x.dtype);
}
