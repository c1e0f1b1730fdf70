// Float64 references of the indexing and assembly ops with torch semantics: gather, scatterAdd,
// indexSelect, indexAdd, embedding, oneHot, concat/stack/split, triu/tril, fill, arange.
import { at, clone, coordsOf, fromFn, indexOf, nd, normAxis, numel, reshape, slice, type ND } from './ndarray.js';

/** Checks an index value: an integer in [0, size) (torch rejects the rest for these ops). */
function checkIndex(op: string, v: number, size: number): number {
  if (!Number.isInteger(v) || v < 0 || v >= size) throw new Error(`${op}: index ${v} out of range for size ${size}`);
  return v;
}

/** torch.gather(self, dim, index): out[c] = self[c with c[dim] = index[c]]; output has index's shape. */
export function gather(self: ND, dim: number, index: ND): ND {
  const d = normAxis(dim, self.shape.length);
  if (index.shape.length !== self.shape.length) throw new Error('gather: index rank must equal input rank');
  index.shape.forEach((s, i) => {
    if (i !== d && s > self.shape[i]!)
      throw new Error(`gather: index dim ${i} (${s}) exceeds input (${self.shape[i]})`);
  });
  return fromFn(index.shape, (c, i) => {
    const src = [...c];
    src[d] = checkIndex('gather', index.data[i]!, self.shape[d]!);
    return at(self, src);
  });
}

/** self + torch.scatter_add(zeros, dim, index, src), out of place: out[c with c[dim] = index[c]] += src[c] for c over index. */
export function scatterAdd(self: ND, dim: number, index: ND, src: ND): ND {
  const d = normAxis(dim, self.shape.length);
  if (index.shape.length !== self.shape.length || src.shape.length !== self.shape.length) {
    throw new Error('scatterAdd: self, index and src must have the same rank');
  }
  index.shape.forEach((s, i) => {
    if (s > src.shape[i]! || (i !== d && s > self.shape[i]!))
      throw new Error(`scatterAdd: index does not fit at dim ${i}`);
  });
  const out = clone(self);
  for (let i = 0; i < index.data.length; i++) {
    const c = coordsOf(i, index.shape);
    const dst = [...c];
    dst[d] = checkIndex('scatterAdd', index.data[i]!, self.shape[d]!);
    out.data[indexOf(dst, self.shape)]! += at(src, c);
  }
  return out;
}

/** torch.index_select(self, dim, index) with a 1-D index: dim `dim` becomes index.length. */
export function indexSelect(self: ND, dim: number, index: ND): ND {
  const d = normAxis(dim, self.shape.length);
  if (index.shape.length !== 1) throw new Error('indexSelect: index must be 1-D');
  const shape = [...self.shape];
  shape[d] = index.data.length;
  return fromFn(shape, (c) => {
    const src = [...c];
    src[d] = checkIndex('indexSelect', index.data[c[d]!]!, self.shape[d]!);
    return at(self, src);
  });
}

/** self + torch.index_add(zeros, dim, index, src), out of place: out[..., index[i], ...] += src[..., i, ...]. */
export function indexAdd(self: ND, dim: number, index: ND, src: ND): ND {
  const d = normAxis(dim, self.shape.length);
  if (index.shape.length !== 1) throw new Error('indexAdd: index must be 1-D');
  const want = [...self.shape];
  want[d] = index.data.length;
  if (want.length !== src.shape.length || want.some((s, i) => s !== src.shape[i])) {
    throw new Error(`indexAdd: src must have shape [${want.join(', ')}], got [${src.shape.join(', ')}]`);
  }
  const out = clone(self);
  for (let i = 0; i < src.data.length; i++) {
    const c = coordsOf(i, src.shape);
    const dst = [...c];
    dst[d] = checkIndex('indexAdd', index.data[c[d]!]!, self.shape[d]!);
    out.data[indexOf(dst, self.shape)]! += src.data[i]!;
  }
  return out;
}

/** nn.functional.embedding: weight (V, D) looked up by integer ids of any shape -> (...ids.shape, D). */
export function embedding(ids: ND, weight: ND): ND {
  if (weight.shape.length !== 2) throw new Error('embedding: weight must be 2-D');
  const dim = weight.shape[1]!;
  return fromFn([...ids.shape, dim], (c) => {
    const row = checkIndex('embedding', ids.data[indexOf(c.slice(0, -1), ids.shape)]!, weight.shape[0]!);
    return weight.data[row * dim + c[c.length - 1]!]!;
  });
}

/** nn.functional.one_hot: (...shape) integer classes -> (...shape, C) of 0/1; numClasses -1 means max + 1. */
export function oneHot(ids: ND, numClasses = -1): ND {
  const n = numClasses >= 0 ? numClasses : ids.data.reduce((m, x) => Math.max(m, x + 1), 0);
  return fromFn([...ids.shape, n], (c) => {
    const cls = checkIndex('oneHot', ids.data[indexOf(c.slice(0, -1), ids.shape)]!, n);
    return c[c.length - 1] === cls ? 1 : 0;
  });
}

/** torch.cat along `axis`; all other dims must match. */
export function concat(parts: readonly ND[], axis: number): ND {
  const first = parts[0];
  if (!first) throw new Error('concat: needs at least one tensor');
  const ax = normAxis(axis, first.shape.length);
  for (const p of parts) {
    if (p.shape.length !== first.shape.length || p.shape.some((s, i) => i !== ax && s !== first.shape[i])) {
      throw new Error(`concat: shapes differ outside dim ${ax}`);
    }
  }
  const shape = [...first.shape];
  shape[ax] = parts.reduce((s, p) => s + p.shape[ax]!, 0);
  return fromFn(shape, (c) => {
    let pos = c[ax]!;
    for (const p of parts) {
      if (pos < p.shape[ax]!) {
        const src = [...c];
        src[ax] = pos;
        return at(p, src);
      }
      pos -= p.shape[ax]!;
    }
    throw new Error('concat: unreachable');
  });
}

/** torch.stack: inserts a new dim at `axis` (in [-(r+1), r]) and concatenates along it. */
export function stack(parts: readonly ND[], axis: number): ND {
  const first = parts[0];
  if (!first) throw new Error('stack: needs at least one tensor');
  const ax = normAxis(axis, first.shape.length + 1);
  return concat(
    parts.map((p) => reshape(p, [...p.shape.slice(0, ax), 1, ...p.shape.slice(ax)])),
    ax,
  );
}

/** torch.split: a number is a chunk size (the last chunk may be smaller), a list gives each size. */
export function split(a: ND, sizes: number | readonly number[], axis: number): ND[] {
  const ax = normAxis(axis, a.shape.length);
  const total = a.shape[ax]!;
  let list: number[];
  if (typeof sizes === 'number') {
    list = [];
    for (let s = 0; s < total; s += sizes) list.push(Math.min(sizes, total - s));
  } else list = [...sizes];
  if (list.reduce((s, x) => s + x, 0) !== total)
    throw new Error(`split: sizes [${list.join(', ')}] do not sum to ${total}`);
  const out: ND[] = [];
  let start = 0;
  for (const s of list) {
    out.push(slice(a, ax, start, start + s));
    start += s;
  }
  return out;
}

function band(a: ND, keep: (i: number, j: number) => boolean): ND {
  if (a.shape.length < 2) throw new Error('triu/tril: need at least 2 dims');
  const r = a.shape.length;
  return fromFn(a.shape, (c, idx) => (keep(c[r - 2]!, c[r - 1]!) ? a.data[idx]! : 0));
}

/** torch.triu(a, k): keeps elements with col - row >= k in the last two dims, zeros the rest. */
export function triu(a: ND, k = 0): ND {
  return band(a, (i, j) => j - i >= k);
}

/** torch.tril(a, k): keeps elements with col - row <= k in the last two dims, zeros the rest. */
export function tril(a: ND, k = 0): ND {
  return band(a, (i, j) => j - i <= k);
}

/** The `fill` op: a tensor of `shape` full of `value`. */
export function fill(shape: readonly number[], value: number): ND {
  return nd(shape, value);
}

/** The `arange` op: `n` values start, start + step, ... (computed as start + i * step, in float64). */
export function arange(n: number, start = 0, step = 1): ND {
  return nd(
    [n],
    Array.from({ length: n }, (_, i) => start + i * step),
  );
}

/** Identity matrix (n, m = n). */
export function eye(n: number, m = n): ND {
  return fromFn([n, m], (c) => (c[0] === c[1] ? 1 : 0));
}

/** Flattens to 1-D. */
export function flatten(a: ND): ND {
  return reshape(a, [numel(a.shape)]);
}
