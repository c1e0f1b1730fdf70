// Index-driven WebGPU kernels: gather and indexSelect (the embedding lookup) copy through an index;
// scatterAdd and indexAdd (the embedding backward) copy `self` and then add `src` through an index
// with atomics, so duplicate indices accumulate. Every index is range-checked on the device: a bad one
// is reported through KernelContext.checks (value and position, in the CPU backend's message) and
// the next read throws; the op's own output then reads it as 0 (gather, indexSelect) or skips it
// (scatterAdd, indexAdd).
import { contiguousStrides, isContiguous, numel } from '../../../core/shape.js';
import type { DType } from '../../../core/dtype.js';
import type { KernelOp } from '../../../ops/opcodes.js';
import type { TensorSpec } from '../../backend.js';
import type { Dispatch, KernelContext, WebGPUKernel, WgslProgram } from '../kernel.js';
import {
  cachedProgram,
  UniformWords,
  WORKGROUP_SIZE,
  checkDecl,
  coalesce,
  computeType,
  enables,
  entry1d,
  grid,
  load,
  storageDecl,
  stridedOffsets,
  uU32,
  uniformDecl,
} from './codegen.js';
import { copy } from './elementwise.js';

// Uniform word slots: iteration count, size of the indexed dim, stride of the indexed operand along
// it, offsets of (out-or-dest, src-or-self, index), the range check's failure code and how a bad
// index's position is found (below), then shape and the three operands' strides.
// prettier-ignore
const S_N = 0, S_SIZE = 1, S_DSTRIDE = 2, S_OFF = 3, S_CODE = 6, S_PMUL = 7, S_PDIV = 8;
const S_DIMS = 9;

/**
 * An index-driven iteration space: `shape`, and per operand [written, read, index] the strides and
 * offsets (the indexed dim's stride is zeroed in the operand the index value addresses).
 */
interface IndexLayout {
  readonly shape: number[];
  readonly strides: [number[], number[], number[]];
  readonly offsets: [number, number, number];
  /** Size of the indexed dim, and the stride the index value is multiplied by. */
  readonly size: number;
  readonly dstride: number;
  /**
   * Where a bad index was found (its row-major position in the index tensor): with `pdiv` != 0, the
   * 1-D index's element (ix - index offset) / pdiv (indexSelect, indexAdd); else invocation * `pmul`
   * (gather, scatterAdd iterate over the index's shape: 1, or 4 per vec4 unit).
   */
  readonly pmul: number;
  readonly pdiv: number;
}

const zeroAt = (s: readonly number[], dim: number): number[] => s.map((x, d) => (d === dim ? 0 : x));
const onlyAt = (n: number, dim: number, stride: number): number[] =>
  Array.from({ length: n }, (_, d) => (d === dim ? stride : 0));

/** Coalesces a layout's dims (pairing of elements across the three operands is kept). */
function coalesced(shape: readonly number[], l: Omit<IndexLayout, 'shape'>): IndexLayout {
  const c = coalesce(shape, l.strides);
  return { ...l, shape: c.shape, strides: [c.strides[0]!, c.strides[1]!, c.strides[2]!] };
}

function uniforms(l: IndexLayout, code: number): Uint32Array {
  const r = l.shape.length;
  const u = new UniformWords(S_DIMS + 4 * r);
  u.u32Array(S_N, [numel(l.shape), l.size, l.dstride, ...l.offsets, code, l.pmul, l.pdiv]);
  u.u32Array(S_DIMS, [...l.shape, ...l.strides[0], ...l.strides[1], ...l.strides[2]]);
  return u.words;
}

/**
 * The range check's failure code: the CPU backend's message (indexing.ts `rangeError`) with the bad
 * value and its position filled in from the device.
 */
function rangeCode(op: KernelOp, index: TensorSpec, dim: number, size: number, ctx: KernelContext): number {
  const range = size > 0 ? `[0, ${size}) (0 to ${size - 1})` : 'empty (dim has size 0)';
  return ctx.checks.code(
    op,
    `index {value} at position {position} is out of range for dim ${dim} of size ${size}; valid range ${range}`,
    { unsigned: index.dtype === 'uint32', positionShape: index.shape },
  );
}

/**
 * WGSL that reports index `v` (read at element `ix` of the index, found by invocation `gi`) as out of
 * range, with its position computed as IndexLayout.pmul/pdiv say.
 */
const FAIL = `var pos = gi * ${uU32(S_PMUL)};
if (${uU32(S_PDIV)} != 0u) { pos = u32(bitcast<i32>(ix - ${uU32(S_OFF + 2)}) / bitcast<i32>(${uU32(S_PDIV)})); }
tl_fail_at(${uU32(S_CODE)}, bitcast<u32>(v), pos);`;

/** The WGSL statements defining `o`, `s` and `ix` (element indices of the three operands) for invocation `gi`. */
function offsets(rank: number): string {
  return stridedOffsets(
    'gi',
    rank,
    S_DIMS,
    ['o', 's', 'ix'].map((name, k) => ({ name, stridesSlot: S_DIMS + (k + 1) * rank, offsetSlot: S_OFF + k })),
  );
}

const cached = cachedProgram;

/** Storage dtype a copy moves: 4-byte dtypes as u32 words (bit exact), float16 as f16. */
const rawType = (d: DType): DType => (d === 'float16' ? 'float16' : 'uint32');

/**
 * The copy-through-index program: out[o] = self[s + index[ix] * dstride], or 0 (and a failed check)
 * when the index is out of range. With `vec4` every unit is a vec4 of u32 words (all sizes, strides
 * and offsets in vec4s). The index is read as i32: a uint32 index >= 2^31 is negative, out of range too.
 */
function gatherProgram(d: DType, rank: number, vec4: boolean): WgslProgram {
  const raw = rawType(d);
  const t = vec4 ? 'vec4<u32>' : raw === 'float16' ? 'f16' : 'u32';
  return cached(`index.gather_${raw}_r${rank}${vec4 ? '_v4' : ''}`, () => {
    const body = `if (gi >= ${uU32(S_N)}) { return; }
${offsets(rank)}let v = IDX[ix];
var val = ${t}();
if (v >= 0i && u32(v) < ${uU32(S_SIZE)}) {
  val = S[s + u32(v) * ${uU32(S_DSTRIDE)}];
} else {
${FAIL}
}
O[o] = val;`;
    return `${enables([raw])}${storageDecl(0, 'O', raw, false, vec4)}${storageDecl(1, 'S', raw, true, vec4)}${storageDecl(2, 'IDX', 'int32', true)}${checkDecl(3)}${uniformDecl(4, S_DIMS + 4 * rank)}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

/**
 * Vec4 form of a gather layout when the innermost dim is a unit-stride run (multiple of 4 long) in
 * both data operands and constant in the index, all other data strides and offsets are multiples of 4,
 * and the dtype has 4 bytes; otherwise null.
 */
function asVec4(l: IndexLayout, d: DType): IndexLayout | null {
  const r = l.shape.length - 1;
  const [o, s, ix] = l.strides;
  if (d === 'float16' || l.shape[r]! % 4 !== 0 || o[r] !== 1 || s[r] !== 1 || ix[r] !== 0) return null;
  const quarter = (xs: readonly number[]): number[] | null =>
    xs.every((x, i) => i === r || x % 4 === 0) ? xs.map((x, i) => (i === r ? 1 : x / 4)) : null;
  const o4 = quarter(o);
  const s4 = quarter(s);
  if (!o4 || !s4 || l.offsets[0] % 4 !== 0 || l.offsets[1] % 4 !== 0 || l.dstride % 4 !== 0) return null;
  const shape = l.shape.map((n, i) => (i === r ? n / 4 : n));
  return {
    shape,
    strides: [o4, s4, ix],
    offsets: [l.offsets[0] / 4, l.offsets[1] / 4, l.offsets[2]],
    size: l.size,
    dstride: l.dstride / 4,
    pmul: l.pmul * 4,
    pdiv: l.pdiv,
  };
}

function gatherDispatch(
  op: 'gather' | 'indexSelect',
  dim: number,
  self: TensorSpec,
  index: TensorSpec,
  out: TensorSpec,
  l: IndexLayout,
  ctx: KernelContext,
): Dispatch[] {
  const n = numel(l.shape);
  if (n === 0) return [];
  const v4 = asVec4(l, self.dtype);
  const lay = v4 ?? l;
  const count = numel(lay.shape);
  return [
    {
      program: gatherProgram(self.dtype, lay.shape.length, v4 !== null),
      buffers: [
        { buffer: out.buffer, readOnly: false },
        { buffer: self.buffer, readOnly: true },
        { buffer: index.buffer, readOnly: true },
        { buffer: ctx.checks.buffer, readOnly: false },
      ],
      uniforms: uniforms(lay, rangeCode(op, index, dim, self.shape[dim]!, ctx)),
      workgroups: grid(Math.ceil(count / WORKGROUP_SIZE), ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
}

/** gather(self, index) along attrs.dim: out[p] = self[p with coordinate dim = index[p]] (range-checked). */
export const gather: WebGPUKernel<'gather'> = (inputs, out, attrs, ctx) => {
  const self = inputs[0] as TensorSpec;
  const index = inputs[1] as TensorSpec;
  const dim = attrs.dim;
  const l = coalesced(index.shape, {
    strides: [contiguousStrides(index.shape), zeroAt(self.strides, dim), [...index.strides]],
    offsets: [out.offset, self.offset, index.offset],
    size: self.shape[dim]!,
    dstride: self.strides[dim]!,
    pmul: 1,
    pdiv: 0,
  });
  return gatherDispatch('gather', dim, self, index, out, l, ctx);
};

/** indexSelect(self, index) along attrs.dim: out's slice i = self's slice index[i] (range-checked). */
export const indexSelect: WebGPUKernel<'indexSelect'> = (inputs, out, attrs, ctx) => {
  const self = inputs[0] as TensorSpec;
  const index = inputs[1] as TensorSpec;
  const dim = attrs.dim;
  const l = coalesced(out.shape, {
    strides: [
      contiguousStrides(out.shape),
      zeroAt(self.strides, dim),
      onlyAt(out.shape.length, dim, index.strides[0] ?? 0),
    ],
    offsets: [out.offset, self.offset, index.offset],
    size: self.shape[dim]!,
    dstride: self.strides[dim]!,
    ...position1d(index),
  });
  return gatherDispatch('indexSelect', dim, self, index, out, l, ctx);
};

/** How IndexLayout finds a bad entry's position in a 1-D index (element 0 when it is broadcast). */
function position1d(index: TensorSpec): { pmul: number; pdiv: number } {
  return { pmul: 0, pdiv: index.strides[0] ?? 0 };
}

/**
 * WGSL that adds `x` (compute type of `d`) to element `t` of the atomic array O. float32: a
 * compare-and-swap loop on the bits (WGSL has no float atomics); float16: the same on the u32 word
 * holding the half; int32 / uint32: atomicAdd (wrapping); bool: atomicOr (true if either is).
 */
function atomicAdd(d: DType): string {
  switch (d) {
    case 'int32':
    case 'uint32':
      return 'atomicAdd(&O[t], x);';
    case 'bool':
      return 'if (x != 0u) { atomicOr(&O[t], 1u); }';
    case 'float32':
      return `var old = atomicLoad(&O[t]);
loop {
  let r = atomicCompareExchangeWeak(&O[t], old, bitcast<u32>(bitcast<f32>(old) + x));
  if (r.exchanged) { break; }
  old = r.old_value;
}`;
    case 'float16':
      return `let w = t >> 1u;
let sh = (t & 1u) * 16u;
var old = atomicLoad(&O[w]);
loop {
  let h = unpack2x16float(old >> sh).x + x;
  let nw = (old & ~(0xffffu << sh)) | ((pack2x16float(vec2<f32>(h, 0.0)) & 0xffffu) << sh);
  let r = atomicCompareExchangeWeak(&O[w], old, nw);
  if (r.exchanged) { break; }
  old = r.old_value;
}`;
  }
}

/**
 * The add-through-index program: O[o + index[ix] * dstride] += src[s] atomically; an out-of-range
 * entry fails the check and is skipped.
 */
function scatterProgram(d: DType, rank: number): WgslProgram {
  return cached(`index.scatterAdd_${d}_r${rank}`, () => {
    const atom = d === 'int32' ? 'atomic<i32>' : 'atomic<u32>';
    const body = `if (gi >= ${uU32(S_N)}) { return; }
${offsets(rank)}let v = IDX[ix];
if (v < 0i || u32(v) >= ${uU32(S_SIZE)}) {
${FAIL}
  return;
}
let t = o + u32(v) * ${uU32(S_DSTRIDE)};
let x: ${computeType(d)} = ${load('SRC', 's', d)};
${atomicAdd(d)}`;
    return `${enables([d])}@group(0) @binding(0) var<storage, read_write> O: array<${atom}>;
${storageDecl(1, 'SRC', d, true)}${storageDecl(2, 'IDX', 'int32', true)}${checkDecl(3)}${uniformDecl(4, S_DIMS + 4 * rank)}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

/** out = contiguous copy of self, then the atomic adds of layout `l` (src elements into out). */
function scatterDispatches(
  op: 'scatterAdd' | 'indexAdd',
  dim: number,
  self: TensorSpec,
  index: TensorSpec,
  src: TensorSpec,
  out: TensorSpec,
  l: IndexLayout,
  ctx: KernelContext,
): Dispatch[] {
  // out identical to self (in-place accumulation into a .grad buffer): nothing to copy, and binding one
  // buffer as both the copy's input and output would be invalid
  const inPlace = self.buffer === out.buffer && self.offset === out.offset && isContiguous(self.shape, self.strides);
  const first = inPlace
    ? []
    : copy([self], { ...out, shape: self.shape, strides: contiguousStrides(self.shape) }, {}, ctx);
  const n = numel(l.shape);
  if (n === 0) return [...first];
  const add: Dispatch = {
    program: scatterProgram(out.dtype, l.shape.length),
    buffers: [
      { buffer: out.buffer, readOnly: false },
      { buffer: src.buffer, readOnly: true },
      { buffer: index.buffer, readOnly: true },
      { buffer: ctx.checks.buffer, readOnly: false },
    ],
    uniforms: uniforms(l, rangeCode(op, index, dim, self.shape[dim]!, ctx)),
    workgroups: grid(Math.ceil(n / WORKGROUP_SIZE), ctx.limits.maxComputeWorkgroupsPerDimension),
  };
  return [...first, add];
}

/**
 * scatterAdd(self, index, src) along attrs.dim: out = self; out[p with dim = index[p]] += src[p].
 * Duplicates accumulate atomically, so float sums of duplicates are in a nondeterministic order.
 */
export const scatterAdd: WebGPUKernel<'scatterAdd'> = (inputs, out, attrs, ctx) => {
  const [self, index, src] = inputs as [TensorSpec, TensorSpec, TensorSpec];
  const dim = attrs.dim;
  const os = contiguousStrides(self.shape);
  const l = coalesced(index.shape, {
    strides: [zeroAt(os, dim), [...src.strides], [...index.strides]],
    offsets: [out.offset, src.offset, index.offset],
    size: self.shape[dim]!,
    dstride: os[dim]!,
    pmul: 1,
    pdiv: 0,
  });
  return scatterDispatches('scatterAdd', dim, self, index, src, out, l, ctx);
};

/**
 * indexAdd(self, index, src) along attrs.dim: out = self; out's slice index[i] += src's slice i
 * (the embedding backward for dim 0). Duplicates accumulate atomically (float order nondeterministic).
 */
export const indexAdd: WebGPUKernel<'indexAdd'> = (inputs, out, attrs, ctx) => {
  const [self, index, src] = inputs as [TensorSpec, TensorSpec, TensorSpec];
  const dim = attrs.dim;
  const os = contiguousStrides(self.shape);
  const l = coalesced(src.shape, {
    strides: [zeroAt(os, dim), [...src.strides], onlyAt(src.shape.length, dim, index.strides[0] ?? 0)],
    offsets: [out.offset, src.offset, index.offset],
    size: self.shape[dim]!,
    dstride: os[dim]!,
    ...position1d(index),
  });
  return scatterDispatches('indexAdd', dim, self, index, src, out, l, ctx);
};

/** The indexing entries of the kernel table. */
export const indexingKernels = { gather, scatterAdd, indexSelect, indexAdd };
