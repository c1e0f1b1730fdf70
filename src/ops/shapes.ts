// Shape rules: the output shape of each op from its input shapes and attributes, with the errors
// that name the op and the offending shapes. The frontend calls these before any work is enqueued.
import { OpError, fmtShape } from '../core/errors.js';
import { broadcastShapes, type Shape } from '../core/shape.js';

/** Output shape of a reduction over normalized `axes`. */
export function reduceShape(shape: Shape, axes: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/** Output shape of matmul with torch.matmul semantics for operands of rank >= 2 (1-D handled by the frontend). */
export function matmulShape(a: Shape, b: Shape): { batch: number[]; m: number; k: number; n: number } {
  if (a.length < 2 || b.length < 2)
    throw new OpError(
      'matmul',
      `operands must have at least 2 dims after promotion, got ${fmtShape(a)} and ${fmtShape(b)}`,
    );
  const m = a[a.length - 2]!;
  const k = a[a.length - 1]!;
  const k2 = b[b.length - 2]!;
  const n = b[b.length - 1]!;
  if (k !== k2) throw new OpError('matmul', `inner dims differ: ${fmtShape(a)} @ ${fmtShape(b)} (${k} vs ${k2})`);
  let batch: number[];
  try {
    batch = broadcastShapes('matmul', a.slice(0, -2), b.slice(0, -2));
  } catch {
    throw new OpError(
      'matmul',
      `batch dims ${fmtShape(a.slice(0, -2))} and ${fmtShape(b.slice(0, -2))} of ${fmtShape(a)} @ ${fmtShape(b)} cannot be broadcast together`,
    );
  }
  return { batch, m, k, n };
}

/** Checks matmul's optional bias: a vector of the output's last dim `n`, broadcast over every row. */
export function matmulBiasShape(bias: Shape, n: number): void {
  if (bias.length !== 1 || bias[0] !== n)
    throw new OpError('matmul', `bias must have shape [${n}] (the output's last dim), got ${fmtShape(bias)}`);
}

/** Checks torch.gather's shape contract and returns the output shape (the index's shape). */
export function gatherShape(op: string, self: Shape, dim: number, index: Shape): number[] {
  if (index.length !== self.length)
    throw new OpError(
      op,
      `index must have the same number of dims as the input: input ${fmtShape(self)}, index ${fmtShape(index)}`,
    );
  index.forEach((d, i) => {
    if (i !== dim && d > self[i]!)
      throw new OpError(op, `index ${fmtShape(index)} is larger than input ${fmtShape(self)} at dim ${i}`);
  });
  return [...index];
}

/** Checks torch.scatter_add's contract: index matches src in rank, fits in src and (off `dim`) in self. */
export function scatterShape(op: string, self: Shape, dim: number, index: Shape, src: Shape): number[] {
  if (index.length !== self.length || src.length !== self.length) {
    throw new OpError(
      op,
      `self ${fmtShape(self)}, index ${fmtShape(index)} and src ${fmtShape(src)} must have the same number of dims`,
    );
  }
  index.forEach((d, i) => {
    if (d > src[i]! || (i !== dim && d > self[i]!))
      throw new OpError(
        op,
        `index ${fmtShape(index)} does not fit src ${fmtShape(src)} / self ${fmtShape(self)} at dim ${i}`,
      );
  });
  return [...self];
}

/** Output shape of index_select: `self` with dim `dim` replaced by the number of indices. */
export function indexSelectShape(self: Shape, dim: number, index: Shape): number[] {
  if (index.length !== 1) throw new OpError('indexSelect', `index must be 1-D, got ${fmtShape(index)}`);
  const out = [...self];
  out[dim] = index[0]!;
  return out;
}

/** Checks index_add's contract: src is `self` with dim `dim` sized by the 1-D index. */
export function indexAddShape(self: Shape, dim: number, index: Shape, src: Shape): number[] {
  const want = indexSelectShape(self, dim, index);
  if (want.length !== src.length || want.some((d, i) => d !== src[i])) {
    throw new OpError(
      'indexAdd',
      `src must have shape ${fmtShape(want)} for self ${fmtShape(self)}, dim ${dim}, index ${fmtShape(index)}; got ${fmtShape(src)}`,
    );
  }
  return [...self];
}

/** Output shape of concatenation along `axis`; all other dims must match. */
export function concatShape(shapes: readonly Shape[], axis: number, op = 'concat'): number[] {
  const first = shapes[0];
  if (!first) throw new OpError(op, 'needs at least one tensor');
  const out = [...first];
  let total = 0;
  for (const s of shapes) {
    if (s.length !== first.length || s.some((d, i) => i !== axis && d !== first[i])) {
      throw new OpError(op, `shapes ${shapes.map(fmtShape).join(', ')} differ outside dim ${axis}`);
    }
    total += s[axis]!;
  }
  out[axis] = total;
  return out;
}

/**
 * Output shape (N, O, OH, OW) of conv2d for input x (N, C, H, W) and weight w (O, C/groups, KH, KW),
 * checking the channel/group contract and that the dilated kernel fits the padded input.
 */
export function conv2dShape(
  op: string,
  x: Shape,
  w: Shape,
  a: { stride: readonly number[]; padding: readonly number[]; dilation: readonly number[]; groups: number },
): [number, number, number, number] {
  if (x.length !== 4 || w.length !== 4)
    throw new OpError(
      op,
      `needs input (N, C, H, W) and weight (O, C/groups, KH, KW), got ${fmtShape(x)} and ${fmtShape(w)}`,
    );
  const [n, c, h, wd] = x as [number, number, number, number];
  const [o, cg, kh, kw] = w as [number, number, number, number];
  const g = a.groups;
  if (c % g !== 0 || o % g !== 0)
    throw new OpError(op, `groups=${g} must divide both input channels ${c} and output channels ${o}`);
  if (cg * g !== c)
    throw new OpError(
      op,
      `weight ${fmtShape(w)} expects ${cg * g} input channels (${cg} per group x groups=${g}), input ${fmtShape(x)} has ${c}`,
    );
  const size = (i: number, len: number, k: number): number => {
    const eff = a.dilation[i]! * (k - 1) + 1;
    const padded = len + 2 * a.padding[i]!;
    if (eff > padded)
      throw new OpError(
        op,
        `kernel ${fmtShape([kh, kw])} (dilated extent ${eff}) is larger than the padded input ${padded} along ${i === 0 ? 'H' : 'W'} (input ${fmtShape(x)}, padding ${a.padding[i]})`,
      );
    return Math.floor((padded - eff) / a.stride[i]!) + 1;
  };
  return [n, o, size(0, h, kh), size(1, wd, kw)];
}

/**
 * Output length of a pooling window sweep along one dim, as PyTorch computes it: floor (or ceil with
 * `ceilMode`) of (len + 2 * pad - dilation * (k - 1) - 1) / stride, plus 1, where in ceil mode the last
 * window must start inside the input or its left padding. Checks PyTorch's contract: positive kernel,
 * stride and dilation, pad at most half the kernel, and at least one output (errors name `op`).
 */
export function poolOutputSize(
  op: string,
  dim: 'H' | 'W',
  len: number,
  k: number,
  stride: number,
  pad: number,
  dilation: number,
  ceilMode: boolean,
): number {
  const pos = (v: number) => Number.isInteger(v) && v > 0;
  if (!pos(k) || !pos(stride) || !pos(dilation) || !Number.isInteger(pad) || pad < 0)
    throw new OpError(
      op,
      `kernel, stride and dilation must be positive integers and padding a non-negative one; got kernel ${k}, stride ${stride}, padding ${pad}, dilation ${dilation} along ${dim}`,
    );
  if (pad > Math.floor(k / 2))
    throw new OpError(
      op,
      `padding should be at most half of the kernel size; got padding ${pad}, kernel ${k} along ${dim}`,
    );
  const span = len + 2 * pad - dilation * (k - 1) - 1;
  let out = Math.floor((span + (ceilMode ? stride - 1 : 0)) / stride) + 1;
  if (ceilMode && (out - 1) * stride >= len + pad) out--;
  if (out < 1)
    throw new OpError(
      op,
      `input size ${len} along ${dim} gives output size ${out} (kernel ${k}, stride ${stride}, padding ${pad}, dilation ${dilation}): too small`,
    );
  return out;
}

/**
 * Output shape (..., Tq, hv) of fused attention for q (..., Tq, hs), k (..., Tk, hs), v (..., Tk, hv):
 * the three share their batch dims (no broadcasting), q and k their head size, k and v their key length.
 */
export function attentionShape(q: Shape, k: Shape, v: Shape): number[] {
  const r = q.length;
  const fits =
    r >= 2 &&
    k.length === r &&
    v.length === r &&
    q.slice(0, -2).every((d, i) => d === k[i] && d === v[i]) &&
    k[r - 1] === q[r - 1] &&
    v[r - 2] === k[r - 2];
  if (!fits)
    throw new OpError(
      'attention',
      `needs q (..., Tq, hs), k (..., Tk, hs), v (..., Tk, hv) with the same batch dims, got q ${fmtShape(q)}, k ${fmtShape(k)}, v ${fmtShape(v)}`,
    );
  return [...q.slice(0, -1), v[r - 1]!];
}
