// Shapes, strides and broadcasting. Strides and offsets are in elements, never bytes.
import { OpError, fmtShape } from './errors.js';

/** A tensor shape; `[]` is a scalar (0-d) tensor. */
export type Shape = readonly number[];

/** Number of elements of a shape (1 for a scalar). */
export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C-contiguous) strides of a shape. */
export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** True when `strides` lay out `shape` contiguously in row-major order (size-1 dims may have any stride). */
export function isContiguous(shape: Shape, strides: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    if (d !== 1 && strides[i] !== expected) return false;
    expected *= d;
  }
  return true;
}

/** Checks a shape given by a user: non-negative integers. */
export function validateShape(op: string, shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new OpError(op, `invalid shape ${fmtShape(shape)}: dims must be non-negative integers`);
  }
}

/** Broadcasts shapes by NumPy/PyTorch rules (align right; a dim of 1 stretches). */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const nd = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(nd).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = nd - s.length + i;
      const d = s[i]!;
      const cur = out[o]!;
      if (cur === 1) out[o] = d;
      else if (d !== 1 && d !== cur) {
        throw new OpError(
          op,
          `shapes ${shapes.map(fmtShape).join(' and ')} cannot be broadcast together (dim ${o - nd}: ${cur} vs ${d})`,
        );
      }
    }
  }
  return out;
}

/**
 * Strides that read a tensor of `shape`/`strides` as if it had the broadcast shape `target`:
 * new leading dims and stretched size-1 dims get stride 0.
 */
export function broadcastStrides(shape: Shape, strides: readonly number[], target: Shape): number[] {
  const out = new Array<number>(target.length).fill(0);
  const lead = target.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[lead + i] = shape[i] === 1 && target[lead + i] !== 1 ? 0 : strides[i]!;
  return out;
}

/** Normalizes a possibly negative axis against `ndim`, with a clear error when out of range. */
export function normAxis(op: string, axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= Math.max(ndim, 1)) {
    throw new OpError(op, `axis ${axis} is out of range for a tensor with ${ndim} dims`);
  }
  return ndim === 0 ? 0 : a;
}

/** Normalizes an axis list (undefined = all axes): sorted, unique, non-negative. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, ndim: number): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = [...new Set(list.map((a) => normAxis(op, a, ndim)))].sort((x, y) => x - y);
  if (out.length !== list.length) throw new OpError(op, `repeated axis in [${list.join(', ')}]`);
  return ndim === 0 ? [] : out;
}

/** Shapes are equal element by element. */
export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Shape and per-operand strides of several operands iterated together (see `coalesce`). */
export interface Layout {
  readonly shape: number[];
  readonly strides: number[][];
}

/**
 * Simplifies a multi-operand layout without changing which elements pair up: drops size-1 dims and
 * merges neighbouring dims that are contiguous for every operand, so kernels walk fewer dims. With
 * `order` >= 0 the dims are first sorted by that operand's strides, largest first (its memory order),
 * which only kernels whose iteration order does not matter (elementwise) may ask for. Without it,
 * row-major order is kept, so the linear output order is preserved. Always returns at least one dim.
 */
export function coalesce(shape: readonly number[], strides: readonly (readonly number[])[], order = -1): Layout {
  const dims: number[] = [];
  for (let d = 0; d < shape.length; d++) if (shape[d] !== 1) dims.push(d);
  if (order >= 0) {
    const s = strides[order]!;
    dims.sort((x, y) => s[y]! - s[x]!);
  }
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (const d of dims) {
    const n = shape[d]!;
    const last = outShape.length - 1;
    let merge = last >= 0;
    for (let k = 0; merge && k < strides.length; k++) merge = outStrides[k]![last] === strides[k]![d]! * n;
    if (merge) {
      outShape[last] = outShape[last]! * n;
      for (let k = 0; k < strides.length; k++) outStrides[k]![last] = strides[k]![d]!;
    } else {
      outShape.push(n);
      for (let k = 0; k < strides.length; k++) outStrides[k]!.push(strides[k]![d]!);
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}
