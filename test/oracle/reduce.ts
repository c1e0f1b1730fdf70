// Float64 references of the reductions (sum/max/min/argmax/argmin, plus the composites mean/variance)
// and of softmax/logSoftmax, with PyTorch semantics (NaN propagates through max/min and wins argmax/argmin).
import type { ReduceOp } from '../../src/ops/opcodes.js';
import { coordsOf, indexOf, nd, normAxis, numel, type ND } from './ndarray.js';

/** Axes as accepted by the reductions: one axis, a list (may be negative), or undefined for all axes. */
export type Axes = number | readonly number[] | undefined;

/** Normalizes axes: undefined -> all axes; sorted, unique, non-negative. An explicit [] reduces nothing. */
export function normAxes(axes: Axes, ndim: number): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = [...new Set(list.map((a) => normAxis(a, ndim)))].sort((x, y) => x - y);
  if (out.length !== list.length) throw new Error(`repeated axis in [${list.join(', ')}]`);
  return ndim === 0 ? [] : out;
}

/** Output shape of reducing `axes` (normalized) of `shape`. */
export function reducedShape(shape: readonly number[], axes: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/**
 * Groups the input's flat indices by output element: `groups[o]` lists (in row-major order) the
 * input elements that reduce into output element `o`.
 */
function groupsOf(
  shape: readonly number[],
  axes: readonly number[],
  keepdim: boolean,
): { outShape: number[]; groups: number[][] } {
  const outShape = reducedShape(shape, axes, keepdim);
  const groups: number[][] = Array.from({ length: numel(outShape) }, () => []);
  for (let i = 0; i < numel(shape); i++) {
    const c = coordsOf(i, shape);
    const oc: number[] = [];
    c.forEach((v, d) => {
      if (!axes.includes(d)) oc.push(v);
      else if (keepdim) oc.push(0);
    });
    groups[indexOf(oc, outShape)]!.push(i);
  }
  return { outShape, groups };
}

function reduceWith(a: ND, axes: Axes, keepdim: boolean, f: (values: number[]) => number): ND {
  const { outShape, groups } = groupsOf(a.shape, normAxes(axes, a.shape.length), keepdim);
  return nd(
    outShape,
    groups.map((g) => f(g.map((i) => a.data[i]!))),
  );
}

/** torch.sum over `axes` (default all); an empty reduction gives 0. */
export function sum(a: ND, axes?: Axes, keepdim = false): ND {
  return reduceWith(a, axes, keepdim, (v) => v.reduce((s, x) => s + x, 0));
}

function extreme(name: string, pick: (x: number, y: number) => number) {
  return (v: number[]): number => {
    if (v.length === 0) throw new Error(`${name}: reduction over an empty dimension has no identity`);
    let acc = v[0]!;
    for (const x of v) acc = Number.isNaN(acc) || Number.isNaN(x) ? NaN : pick(acc, x);
    return acc;
  };
}

/** torch.amax over `axes` (default all); NaN propagates; throws on an empty reduction. */
export function max(a: ND, axes?: Axes, keepdim = false): ND {
  return reduceWith(a, axes, keepdim, extreme('max', Math.max));
}

/** torch.amin over `axes` (default all); NaN propagates; throws on an empty reduction. */
export function min(a: ND, axes?: Axes, keepdim = false): ND {
  return reduceWith(a, axes, keepdim, extreme('min', Math.min));
}

/** Mean over `axes` (default all): sum / count (0/0 = NaN for an empty reduction). */
export function mean(a: ND, axes?: Axes, keepdim = false): ND {
  return reduceWith(a, axes, keepdim, (v) => v.reduce((s, x) => s + x, 0) / v.length);
}

/** torch.var over `axes` (default all) with `correction` (1 = unbiased, 0 = population), two-pass. */
export function variance(a: ND, axes?: Axes, opts: { correction?: number; keepdim?: boolean } = {}): ND {
  const correction = opts.correction ?? 1;
  return reduceWith(a, axes, opts.keepdim ?? false, (v) => {
    const m = v.reduce((s, x) => s + x, 0) / v.length;
    return v.reduce((s, x) => s + (x - m) * (x - m), 0) / (v.length - correction);
  });
}

/** torch.std: sqrt of `variance`. */
export function std(a: ND, axes?: Axes, opts: { correction?: number; keepdim?: boolean } = {}): ND {
  const v = variance(a, axes, opts);
  return nd(v.shape, v.data.map(Math.sqrt));
}

function argExtreme(
  name: string,
  better: (x: number, best: number) => boolean,
  a: ND,
  axis: number | undefined,
  keepdim: boolean,
): ND {
  const r = a.shape.length;
  // All axes: the index is into the flattened tensor.
  const axes = axis === undefined ? normAxes(undefined, r) : [normAxis(axis, r)];
  const { outShape, groups } = groupsOf(a.shape, axes, keepdim);
  return nd(
    outShape,
    groups.map((g) => {
      if (g.length === 0) throw new Error(`${name}: empty reduction`);
      let best = 0;
      g.forEach((flat, pos) => {
        const x = a.data[flat]!;
        const b = a.data[g[best]!]!;
        if (!Number.isNaN(b) && (Number.isNaN(x) || better(x, b))) best = pos;
      });
      return best; // groups are in row-major order, so the position is the index along the axis / flat index
    }),
  );
}

/** torch.argmax: first index of the maximum along `axis`, or into the flattened tensor when axis is undefined. NaN counts as the maximum. */
export function argmax(a: ND, axis?: number, keepdim = false): ND {
  return argExtreme('argmax', (x, b) => x > b, a, axis, keepdim);
}

/** torch.argmin: first index of the minimum (NaN counts as the minimum, as in torch). */
export function argmin(a: ND, axis?: number, keepdim = false): ND {
  return argExtreme('argmin', (x, b) => x < b, a, axis, keepdim);
}

/**
 * The `reduce` kernel op as the backends receive it: normalized `axes` and `keepdim`. For
 * argmax/argmin, axes must be one axis or all axes (then the result is a flat index).
 */
export function reduceOp(op: ReduceOp, a: ND, attrs: { axes: readonly number[]; keepdim: boolean }): ND {
  switch (op) {
    case 'sum':
      return sum(a, attrs.axes, attrs.keepdim);
    case 'max':
      return max(a, attrs.axes, attrs.keepdim);
    case 'min':
      return min(a, attrs.axes, attrs.keepdim);
    case 'argmax':
    case 'argmin': {
      const all = normAxes(attrs.axes, a.shape.length).length === a.shape.length;
      if (!all && attrs.axes.length !== 1) throw new Error(`${op}: needs one axis or all axes`);
      const f = op === 'argmax' ? argmax : argmin;
      return all ? f(a, undefined, attrs.keepdim) : f(a, attrs.axes[0], attrs.keepdim);
    }
  }
}

/** Calls `f` with the flat indices of every 1-D line of `shape` along `axis`. */
export function forEachLine(shape: readonly number[], axis: number, f: (indices: number[]) => void): void {
  const ax = normAxis(axis, shape.length);
  if (shape.length === 0) return f([0]);
  const others = shape.map((d, i) => (i === ax ? 1 : d));
  for (let o = 0; o < numel(others); o++) {
    const c = coordsOf(o, others);
    const idx: number[] = [];
    for (let j = 0; j < shape[ax]!; j++) {
      c[ax] = j;
      idx.push(indexOf(c, shape));
    }
    f(idx);
  }
}

function lineMax(a: ND, idx: readonly number[]): number {
  let m = -Infinity;
  for (const i of idx) m = Number.isNaN(m) || Number.isNaN(a.data[i]!) ? NaN : Math.max(m, a.data[i]!);
  return m;
}

/** torch.softmax along `axis` (max-subtracted; a row of all -Inf gives NaN, as in torch). */
export function softmax(a: ND, axis: number): ND {
  const out = nd(a.shape);
  forEachLine(a.shape, axis, (idx) => {
    const m = lineMax(a, idx);
    const e = idx.map((i) => Math.exp(a.data[i]! - m));
    const s = e.reduce((p, x) => p + x, 0);
    idx.forEach((i, j) => (out.data[i] = e[j]! / s));
  });
  return out;
}

/** torch.log_softmax along `axis`: x - max - log(sum(exp(x - max))). */
export function logSoftmax(a: ND, axis: number): ND {
  const out = nd(a.shape);
  forEachLine(a.shape, axis, (idx) => {
    const m = lineMax(a, idx);
    const lse = Math.log(idx.reduce((p, i) => p + Math.exp(a.data[i]! - m), 0));
    idx.forEach((i) => (out.data[i] = a.data[i]! - m - lse));
  });
  return out;
}
