// A minimal float64 n-d array for the test oracle: row-major data plus a shape, and the plain
// index/broadcast/view helpers every reference op is built from. Independent of src/ on purpose.

/** A dense row-major float64 array. `shape` `[]` is a scalar with one element. */
export interface ND {
  shape: number[];
  data: Float64Array;
}

/** Number of elements of a shape (1 for `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides (in elements) of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(0);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * Makes an ND. `data` may be an array-like (its length must equal the shape's element count),
 * a single number (filled), or omitted (zeros). The data is always copied.
 */
export function nd(shape: readonly number[], data?: ArrayLike<number> | number): ND {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`nd: bad shape [${shape.join(', ')}]`);
  }
  const n = numel(shape);
  const out = new Float64Array(n);
  if (typeof data === 'number') out.fill(data);
  else if (data !== undefined) {
    if (data.length !== n) throw new Error(`nd: shape [${shape.join(', ')}] needs ${n} values, got ${data.length}`);
    for (let i = 0; i < n; i++) out[i] = data[i]!;
  }
  return { shape: [...shape], data: out };
}

/** A 0-d ND holding `x`. */
export function scalar(x: number): ND {
  return nd([], [x]);
}

/** Nested JS arrays (any depth, rectangular) to an ND, e.g. `fromNested([[1, 2], [3, 4]])`. */
export function fromNested(v: unknown): ND {
  const shape: number[] = [];
  let cur: unknown = v;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  const flat: number[] = [];
  const walk = (x: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof x !== 'number') throw new Error('fromNested: leaves must be numbers');
      flat.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[depth]) throw new Error('fromNested: ragged array');
    for (const y of x) walk(y, depth + 1);
  };
  walk(v, 0);
  return nd(shape, flat);
}

/** An ND to nested JS arrays (a scalar gives a number). Handy in error messages and hand checks. */
export function toNested(a: ND): unknown {
  const build = (depth: number, offset: number): unknown => {
    if (depth === a.shape.length) return a.data[offset]!;
    const stride = numel(a.shape.slice(depth + 1));
    return Array.from({ length: a.shape[depth]! }, (_, i) => build(depth + 1, offset + i * stride));
  };
  return build(0, 0);
}

/** A copy of `a` (new data buffer). */
export function clone(a: ND): ND {
  return nd(a.shape, a.data);
}

/** Row-major coordinates of flat index `index` in `shape`. */
export function coordsOf(index: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length).fill(0);
  let rest = index;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    c[i] = rest % d;
    rest = Math.floor(rest / d);
  }
  return c;
}

/** Flat row-major index of `coords` in `shape` (each coordinate must be in range). */
export function indexOf(coords: readonly number[], shape: readonly number[]): number {
  if (coords.length !== shape.length) throw new Error(`indexOf: ${coords.length} coords for rank ${shape.length}`);
  let idx = 0;
  for (let i = 0; i < shape.length; i++) {
    const c = coords[i]!;
    const d = shape[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= d)
      throw new Error(`indexOf: coord ${c} out of range for dim ${i} of size ${d}`);
    idx = idx * d + c;
  }
  return idx;
}

/** Element of `a` at `coords`. */
export function at(a: ND, coords: readonly number[]): number {
  return a.data[indexOf(coords, a.shape)]!;
}

/** Normalizes a possibly negative axis (torch style); throws when out of range. A 0-d tensor accepts 0 and -1. */
export function normAxis(axis: number, ndim: number): number {
  const n = Math.max(ndim, 1);
  const a = axis < 0 ? axis + n : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= n) throw new Error(`axis ${axis} out of range for rank ${ndim}`);
  return a;
}

/** Broadcast shape of several shapes (NumPy rules: align right, size-1 dims stretch); throws if incompatible. */
export function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o])
        throw new Error(`cannot broadcast [${shapes.map((x) => x.join(', ')).join('] and [')}]`);
    }
  }
  return out;
}

/** Materializes `a` broadcast to `shape` (which must be a valid broadcast target of a.shape). */
export function broadcastTo(a: ND, shape: readonly number[]): ND {
  const target = [...shape];
  const lead = target.length - a.shape.length;
  if (lead < 0) throw new Error(`broadcastTo: cannot broadcast rank ${a.shape.length} to rank ${target.length}`);
  a.shape.forEach((d, i) => {
    if (d !== 1 && d !== target[lead + i])
      throw new Error(`broadcastTo: [${a.shape.join(', ')}] -> [${target.join(', ')}]`);
  });
  const out = nd(target);
  for (let i = 0; i < out.data.length; i++) {
    const c = coordsOf(i, target);
    const src = a.shape.map((d, j) => (d === 1 ? 0 : c[lead + j]!));
    out.data[i] = at(a, src);
  }
  return out;
}

/** Reorders dims: output dim i is input dim `dims[i]` (torch.permute). Negative dims allowed. */
export function permute(a: ND, dims: readonly number[]): ND {
  const r = a.shape.length;
  const p = dims.map((d) => normAxis(d, r));
  if (p.length !== r || new Set(p).size !== r) throw new Error(`permute: bad dims [${dims.join(', ')}] for rank ${r}`);
  const shape = p.map((d) => a.shape[d]!);
  const out = nd(shape);
  for (let i = 0; i < out.data.length; i++) {
    const c = coordsOf(i, shape);
    const src = new Array<number>(r).fill(0);
    p.forEach((d, j) => (src[d] = c[j]!));
    out.data[i] = at(a, src);
  }
  return out;
}

/** Swaps two dims (torch.transpose); defaults to the last two. */
export function transpose(a: ND, dim0 = -2, dim1 = -1): ND {
  const r = a.shape.length;
  const dims = Array.from({ length: r }, (_, i) => i);
  const d0 = normAxis(dim0, r);
  const d1 = normAxis(dim1, r);
  dims[d0] = d1;
  dims[d1] = d0;
  return permute(a, dims);
}

/** Same data, new shape (row-major order kept). One dim may be -1 (inferred). */
export function reshape(a: ND, shape: readonly number[]): ND {
  const s = [...shape];
  const infer = s.indexOf(-1);
  if (infer >= 0) {
    const rest = numel(s.filter((_, i) => i !== infer));
    s[infer] = rest === 0 ? 0 : a.data.length / rest;
  }
  if (numel(s) !== a.data.length || s.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: [${a.shape.join(', ')}] -> [${shape.join(', ')}]`);
  }
  return nd(s, a.data);
}

/** Python-style strided slice along one axis: indices start, start+step, ... < end (step > 0), clamped like torch. */
export function slice(a: ND, axis: number, start: number, end: number, step = 1): ND {
  if (!Number.isInteger(step) || step <= 0) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const ax = normAxis(axis, a.shape.length);
  const size = a.shape[ax]!;
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
  const s = clamp(start);
  const e = clamp(end);
  const picks: number[] = [];
  for (let i = s; i < e; i += step) picks.push(i);
  const shape = [...a.shape];
  shape[ax] = picks.length;
  const out = nd(shape);
  for (let i = 0; i < out.data.length; i++) {
    const c = coordsOf(i, shape);
    c[ax] = picks[c[ax]!]!;
    out.data[i] = at(a, c);
  }
  return out;
}

/** Applies `f` to every element; `f` also gets the flat index and the coordinates. */
export function mapND(a: ND, f: (x: number, index: number, coords: number[]) => number): ND {
  const out = nd(a.shape);
  for (let i = 0; i < a.data.length; i++) out.data[i] = f(a.data[i]!, i, coordsOf(i, a.shape));
  return out;
}

/** Broadcasts `a` and `b` together and applies `f` elementwise. */
export function zipND(a: ND, b: ND, f: (x: number, y: number) => number): ND {
  const shape = broadcastShape(a.shape, b.shape);
  const A = broadcastTo(a, shape);
  const B = broadcastTo(b, shape);
  return mapND(A, (x, i) => f(x, B.data[i]!));
}

/** Builds an ND of `shape` from a function of the coordinates. */
export function fromFn(shape: readonly number[], f: (coords: number[], index: number) => number): ND {
  const out = nd(shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = f(coordsOf(i, shape), i);
  return out;
}

/** Converts any array-like (typed arrays included) to a Float64Array copy. */
export function toFloat64(x: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: x.length }, (_, i) => x[i]!);
}
