// Batch normalization for WebGPU over x viewed as (N, C, L). The per-channel reductions (statistics,
// and the backward's [sum gy * xhat; sum gy]) are row kernels (rows.ts) with one row per channel: its
// threads stride over the channel's N * L elements and combine by a tree in workgroup memory, two
// passes for the statistics (mean, then squared deviations). Normalize and the input gradient are
// elementwise, one invocation per element, reading the per-channel values they need.
import type { DType } from '../../../core/dtype.js';
import { isScalar, type Operand, type TensorSpec } from '../../backend.js';
import type { BufferBinding, KernelContext, WebGPUKernel, WgslProgram } from '../kernel.js';
import { cachedProgram,
  UniformWords, WORKGROUP_SIZE, enables, entry1d, grid, load, storageDecl, store, uF32, uU32, uniformDecl,
} from './codegen.js'; // prettier-ignore
import { rowEntry, rowGroups, treeReduce, type RowGroups } from './rows.js';

// Uniform slots: C, N * L, L, x strides (3) and offset, output offset, eps, row groups (reductions) or
// element count (elementwise), then per-channel operands (mean, var, weight, bias) as stride, offset,
// scalar value, then gy's strides (3) and offset, then the sums' row and column strides, offset, scalar.
// prettier-ignore
const U_C = 0, U_M = 1, U_L = 2, U_XS = 3, U_XOFF = 6, U_OOFF = 7, U_EPS = 8, U_COUNT = 9, U_MEAN = 10,
  U_VAR = 13, U_W = 16, U_B = 19, U_GS = 22, U_GOFF = 25, U_SUMS = 26, U_WORDS = 30;

/** Packs the uniforms every batch-norm kernel shares. */
function common(x: TensorSpec, out: TensorSpec, eps: number, count: number): UniformWords {
  const [n, c, l] = x.shape as [number, number, number];
  const u = new UniformWords(U_WORDS);
  u.u32Array(U_C, [c, n * l, l, ...x.strides, x.offset, out.offset]);
  return u.f32s(U_EPS, eps).u32(U_COUNT, count);
}

/** Packs a (C) operand or scalar at `slot`: stride, offset, scalar value. */
function perChannel(u: UniformWords, o: Operand, slot: number): void {
  if (isScalar(o)) u.f32s(slot + 2, o.scalar);
  else u.u32Array(slot, [o.strides[0] ?? 0, o.offset]);
}

/** Channel `c`'s value of a per-channel operand bound as `name` (dtype null: the uniform scalar). */
function chan(name: string, d: DType | null, slot: number, c: string): string {
  return d ? load(name, `${uU32(slot + 1)} + ${c} * ${uU32(slot)}`, d, 'float32') : uF32(slot + 2);
}

/** Element j of channel `c` of a (N, C, L) operand with strides at `s` and offset at `off`. */
function elem(name: string, d: DType, s: number, off: number, c: string, j: string): string {
  const idx = `${uU32(off)} + (${j} / ${uU32(U_L)}) * ${uU32(s)} + ${c} * ${uU32(s + 1)} + (${j} % ${uU32(U_L)}) * ${uU32(s + 2)}`;
  return load(name, idx, d, 'float32');
}

const tensorOf = (o: Operand): TensorSpec | null => (isScalar(o) ? null : o);
const bind = (t: TensorSpec | null, readOnly = true): BufferBinding[] => (t ? [{ buffer: t.buffer, readOnly }] : []);
const rows = (x: TensorSpec, ctx: KernelContext): RowGroups => rowGroups(x.shape[0]! * x.shape[2]!, x.shape[1]!, ctx);
const groupsOf = (g: RowGroups, ctx: KernelContext) => grid(g.groups, ctx.limits.maxComputeWorkgroupsPerDimension);

function statsProgram(xd: DType, g: RowGroups): WgslProgram {
  return cachedProgram(`batchNormStats_${xd}_${g.wx}x${g.wy}`, () => {
    const x = elem('X', xd, U_XS, U_XOFF, 'row', 'j');
    const body = `let m = ${uU32(U_M)};
  var acc = 0.0;
  if (live) { for (var j = ly; j < m; j = j + ${g.wy}u) { acc = acc + ${x}; } }
  sp[lid] = acc;
  ${treeReduce('sp', g)}
  let mean = sp[lid % ${g.wx}u] / f32(m);
  workgroupBarrier(); // every thread has read the sum before sp is reused
  acc = 0.0;
  if (live) { for (var j = ly; j < m; j = j + ${g.wy}u) { let e = ${x} - mean; acc = acc + e * e; } }
  sp[lid] = acc;
  ${treeReduce('sp', g)}
  if (live && ly == 0u) {
    O[${uU32(U_OOFF)} + row] = mean;
    O[${uU32(U_OOFF)} + ${uU32(U_C)} + row] = sp[lid % ${g.wx}u] / f32(m);
  }`;
    return `${enables([xd])}${storageDecl(0, 'X', xd, true)}${storageDecl(1, 'O', 'float32', false)}${uniformDecl(2, U_WORDS)}
var<workgroup> sp: array<f32, ${g.wx * g.wy}>;
${rowEntry(g, uU32(U_COUNT), uU32(U_C), body)}`;
  });
}

/** batchNormStats: input x (N, C, L) -> (2, C) float32 [mean; biased variance]. */
export const batchNormStats: WebGPUKernel<'batchNormStats'> = (inputs, out, _a, ctx) => {
  const x = inputs[0] as TensorSpec;
  const g = rows(x, ctx);
  return [
    {
      program: statsProgram(x.dtype, g),
      buffers: [...bind(x), ...bind(out, false)],
      uniforms: common(x, out, 0, g.groups).words,
      workgroups: groupsOf(g, ctx),
    },
  ];
};

function paramsProgram(xd: DType, md: DType, vd: DType, gd: DType, od: DType, g: RowGroups): WgslProgram {
  return cachedProgram(`batchNormParamsBackward_${xd}_${md}_${vd}_${gd}_${od}_${g.wx}x${g.wy}`, () => {
    const x = elem('X', xd, U_XS, U_XOFF, 'row', 'j');
    const gy = elem('G', gd, U_GS, U_GOFF, 'row', 'j');
    const body = `let m = ${uU32(U_M)};
  let r = min(row, ${uU32(U_C)} - 1u);
  let mean = ${chan('MU', md, U_MEAN, 'r')};
  let rstd = 1.0 / sqrt(${chan('VA', vd, U_VAR, 'r')} + ${uF32(U_EPS)});
  var acc = vec2<f32>(0.0, 0.0);
  if (live) { for (var j = ly; j < m; j = j + ${g.wy}u) { let v = ${gy}; acc = acc + vec2<f32>(v * (${x} - mean), v); } }
  sp[lid] = acc;
  ${treeReduce('sp', g)}
  if (live && ly == 0u) {
    let s = sp[lid % ${g.wx}u];
    ${store('O', `${uU32(U_OOFF)} + row`, od, 's.x * rstd')}
    ${store('O', `${uU32(U_OOFF)} + ${uU32(U_C)} + row`, od, 's.y')}
  }`;
    const decl = [
      storageDecl(0, 'X', xd, true),
      storageDecl(1, 'MU', md, true),
      storageDecl(2, 'VA', vd, true),
      storageDecl(3, 'G', gd, true),
      storageDecl(4, 'O', od, false),
      uniformDecl(5, U_WORDS),
    ];
    return `${enables([xd, md, vd, gd, od])}${decl.join('')}
var<workgroup> sp: array<vec2<f32>, ${g.wx * g.wy}>;
${rowEntry(g, uU32(U_COUNT), uU32(U_C), body)}`;
  });
}

/** batchNormParamsBackward: inputs x (N, C, L), mean (C), var (C), gy (N, C, L) -> (2, C). */
export const batchNormParamsBackward: WebGPUKernel<'batchNormParamsBackward'> = (inputs, out, a, ctx) => {
  const [x, mu, va, gy] = inputs as [TensorSpec, TensorSpec, TensorSpec, TensorSpec];
  const g = rows(x, ctx);
  const u = common(x, out, a.eps, g.groups);
  perChannel(u, mu, U_MEAN);
  perChannel(u, va, U_VAR);
  u.u32Array(U_GS, [...gy.strides, gy.offset]);
  return [
    {
      program: paramsProgram(x.dtype, mu.dtype, va.dtype, gy.dtype, out.dtype, g),
      buffers: [...bind(x), ...bind(mu), ...bind(va), ...bind(gy), ...bind(out, false)],
      uniforms: u.words,
      workgroups: groupsOf(g, ctx),
    },
  ];
};

/**
 * The elementwise kernels: normalize (y = (x - mean) * rstd * w + b, plus the residual when `rd` is
 * set, then max(., 0) when `relu`) or, with `gd` set, the input gradient w * rstd * (gy - (sums[1] +
 * xhat * sums[0]) / (N L)); `sd` null means the sums are 0. The residual (forward only) uses gy's
 * uniform slots for its strides and offset.
 */
function mapProgram(
  xd: DType,
  md: DType,
  vd: DType,
  wd: DType | null,
  bd: DType | null,
  gd: DType | null,
  sd: DType | null,
  od: DType,
  rd: DType | null = null,
  relu = false,
): WgslProgram {
  const dts = [xd, md, vd, wd, bd, gd, sd, od, rd].map((d) => d ?? 's').join('_');
  const key = `batchNorm${gd ? 'Backward' : ''}_${dts}${relu ? '_relu' : ''}`;
  return cachedProgram(key, () => {
    let b = 0;
    const decl = [storageDecl(b++, 'X', xd, true), storageDecl(b++, 'MU', md, true), storageDecl(b++, 'VA', vd, true)];
    if (wd) decl.push(storageDecl(b++, 'W', wd, true));
    if (bd) decl.push(storageDecl(b++, 'B', bd, true));
    if (rd) decl.push(storageDecl(b++, 'R', rd, true));
    if (gd) decl.push(storageDecl(b++, 'G', gd, true));
    if (sd) decl.push(storageDecl(b++, 'S', sd, true));
    decl.push(storageDecl(b++, 'O', od, false), uniformDecl(b, U_WORDS));
    const sum = (k: number) =>
      sd ? load('S', `${uU32(U_SUMS + 2)} + ${k}u * ${uU32(U_SUMS)} + c * ${uU32(U_SUMS + 1)}`, sd, 'float32') : '0.0';
    let value = gd
      ? `k * (${elem('G', gd, U_GS, U_GOFF, 'c', 'j')} - (${sum(1)} + xh * ${sum(0)}) / f32(${uU32(U_M)}))`
      : `xh * ${chan('W', wd, U_W, 'c')} + ${chan('B', bd, U_B, 'c')}`;
    if (rd) value = `${value} + ${elem('R', rd, U_GS, U_GOFF, 'c', 'j')}`;
    if (relu) value = `max(${value}, 0.0)`;
    const body = `if (gi >= ${uU32(U_COUNT)}) { return; }
  let l = gi % ${uU32(U_L)};
  let c = (gi / ${uU32(U_L)}) % ${uU32(U_C)};
  let j = (gi / (${uU32(U_L)} * ${uU32(U_C)})) * ${uU32(U_L)} + l;
  let rstd = 1.0 / sqrt(${chan('VA', vd, U_VAR, 'c')} + ${uF32(U_EPS)});
  let xh = (${elem('X', xd, U_XS, U_XOFF, 'c', 'j')} - ${chan('MU', md, U_MEAN, 'c')}) * rstd;
  let k = ${gd ? `${chan('W', wd, U_W, 'c')} * rstd` : '0.0'};
  ${store('O', `${uU32(U_OOFF)} + gi`, od, value)}`;
    return `${enables([xd, md, vd, od, ...[wd, bd, gd, sd, rd].filter((d): d is DType => d !== null)])}${decl.join('')}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

function elementwise(
  inputs: readonly Operand[],
  out: TensorSpec,
  eps: number,
  ctx: KernelContext,
  backward: boolean,
  fused: { relu?: boolean; residual?: boolean } = {},
) {
  const x = inputs[0] as TensorSpec;
  const res = !backward && fused.residual ? (inputs[5] as TensorSpec) : null;
  const [mu, va] = [inputs[1] as TensorSpec, inputs[2] as TensorSpec];
  const w = tensorOf(inputs[3]!);
  const b = backward ? null : tensorOf(inputs[4]!);
  const gy = backward ? (inputs[4] as TensorSpec) : null;
  const sums = backward ? tensorOf(inputs[5]!) : null;
  const count = out.shape.reduce((s, d) => s * d, 1);
  const u = common(x, out, eps, count);
  perChannel(u, mu, U_MEAN);
  perChannel(u, va, U_VAR);
  perChannel(u, inputs[3]!, U_W);
  if (!backward) perChannel(u, inputs[4]!, U_B);
  if (gy) u.u32Array(U_GS, [...gy.strides, gy.offset]);
  if (res) u.u32Array(U_GS, [...res.strides, res.offset]);
  if (sums) u.u32Array(U_SUMS, [sums.strides[0]!, sums.strides[1]!, sums.offset]);
  const program = mapProgram(
    x.dtype,
    mu.dtype,
    va.dtype,
    w?.dtype ?? null,
    b?.dtype ?? null,
    gy?.dtype ?? null,
    sums?.dtype ?? null,
    out.dtype,
    res?.dtype ?? null,
    !backward && fused.relu === true,
  );
  return [
    {
      program,
      buffers: [
        ...bind(x),
        ...bind(mu),
        ...bind(va),
        ...bind(w),
        ...bind(b),
        ...bind(res),
        ...bind(gy),
        ...bind(sums),
      ].concat(bind(out, false)),
      uniforms: u.words,
      workgroups: grid(Math.ceil(count / WORKGROUP_SIZE), ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
}

/**
 * batchNorm: inputs x (N, C, L), mean (C), var (C), weight (C) or scalar, bias (C) or scalar[, residual
 * (N, C, L)] -> y, with the residual added and ReLU applied when the attributes say so.
 */
export const batchNorm: WebGPUKernel<'batchNorm'> = (inputs, out, a, ctx) =>
  elementwise(inputs, out, a.eps, ctx, false, a);

/** batchNormBackward: inputs x, mean, var, weight or scalar, gy (N, C, L), sums (2, C) or scalar 0 -> gx. */
export const batchNormBackward: WebGPUKernel<'batchNormBackward'> = (inputs, out, a, ctx) =>
  elementwise(inputs, out, a.eps, ctx, true);

/** The batch-norm entries of the kernel table. */
export const batchNormKernels = { batchNormStats, batchNorm, batchNormParamsBackward, batchNormBackward };
