// Fused layer normalization for WebGPU over the rows of a (rows, D) input. Forward: a row group sums
// the row (tree in workgroup memory) for the mean, then the squared deviations for the variance, and
// writes y and the row's [mean, rstd] (the auxiliary output). Backward: the input gradient in one row
// kernel from the saved statistics; the weight / bias gradients as column sums, by column blocks over
// row chunks, with a second pass adding the chunks' partial sums when there is more than one.
import type { DType } from '../../../core/dtype.js';
import { isScalar, type DeviceBuffer, type Operand, type TensorSpec } from '../../backend.js';
import type { Dispatch, WebGPUKernel, WgslProgram } from '../kernel.js';
import { cachedProgram,
  UniformWords, WORKGROUP_SIZE, enables, entry1d, grid, load, storageDecl, store, uF32, uU32, uniformDecl,
} from './codegen.js'; // prettier-ignore
import { rowEntry, rowGroups, treeReduce, type RowGroups } from './rows.js';

const cached = cachedProgram;

// Uniform slots shared by the row kernels: rows, D, groups, x row/col strides and offset, stats
// offset, output offset, eps (f32), then per parameter (weight; bias; or gy's row/col strides) a
// stride, an offset and the value used when it is a scalar.
// prettier-ignore
const S_ROWS = 0, S_D = 1, S_GROUPS = 2, S_XSR = 3, S_XSC = 4, S_XOFF = 5, S_SOFF = 6, S_OOFF = 7, S_EPS = 8,
  S_P0 = 9, S_P1 = 12, S_WORDS = 15;

/** A (D) parameter read at column `j`: a storage binding `name`, or the scalar in the uniforms. */
function param(name: string, d: DType | null, slot: number, j: string): string {
  return d ? load(name, `${uU32(slot + 1)} + ${j} * ${uU32(slot)}`, d, 'float32') : uF32(slot + 2);
}

/** Packs a parameter operand (tensor or scalar) at `slot`: stride, offset, scalar value. */
function packParam(u: UniformWords, o: Operand, slot: number): void {
  if (isScalar(o)) u.f32s(slot + 2, o.scalar);
  else u.u32Array(slot, [o.strides[0] ?? 0, o.offset]);
}

/** The uniforms common to the row kernels. */
function rowUniforms(x: TensorSpec, g: RowGroups, statsOffset: number, outOffset: number, eps = 0): UniformWords {
  const u = new UniformWords(S_WORDS);
  u.u32Array(S_ROWS, [x.shape[0]!, x.shape[1]!, g.groups, x.strides[0]!, x.strides[1]!, x.offset]);
  return u.u32(S_SOFF, statsOffset).u32(S_OOFF, outOffset).f32s(S_EPS, eps);
}

const X_AT = (xd: DType, j: string): string =>
  load('X', `${uU32(S_XOFF)} + row * ${uU32(S_XSR)} + ${j} * ${uU32(S_XSC)}`, xd, 'float32');

function forwardProgram(xd: DType, wd: DType | null, bd: DType | null, g: RowGroups): WgslProgram {
  return cached(`layerNorm_${xd}_${wd ?? 's'}_${bd ?? 's'}_${g.wx}x${g.wy}`, () => {
    let b = 1;
    const decl = [storageDecl(0, 'X', xd, true)];
    if (wd) decl.push(storageDecl(b++, 'W', wd, true));
    if (bd) decl.push(storageDecl(b++, 'B', bd, true));
    decl.push(storageDecl(b++, 'O', xd, false), storageDecl(b++, 'ST', 'float32', false), uniformDecl(b, S_WORDS));
    const body = `let n = ${uU32(S_D)};
  var acc = 0.0;
  if (live) { for (var j = ly; j < n; j = j + ${g.wy}u) { acc = acc + ${X_AT(xd, 'j')}; } }
  sp[lid] = acc;
  ${treeReduce('sp', g)}
  let mean = sp[lid % ${g.wx}u] / f32(n);
  workgroupBarrier(); // every thread has read the sum before sp is reused
  acc = 0.0;
  if (live) {
    for (var j = ly; j < n; j = j + ${g.wy}u) { let e = ${X_AT(xd, 'j')} - mean; acc = acc + e * e; }
  }
  sp[lid] = acc;
  ${treeReduce('sp', g)}
  let rstd = 1.0 / sqrt(sp[lid % ${g.wx}u] / f32(n) + ${uF32(S_EPS)});
  if (!live) { return; }
  if (ly == 0u) {
    ST[${uU32(S_SOFF)} + 2u * row] = mean;
    ST[${uU32(S_SOFF)} + 2u * row + 1u] = rstd;
  }
  for (var j = ly; j < n; j = j + ${g.wy}u) {
    let y = (${X_AT(xd, 'j')} - mean) * rstd * ${param('W', wd, S_P0, 'j')} + ${param('B', bd, S_P1, 'j')};
    ${store('O', `${uU32(S_OOFF)} + row * n + j`, xd, 'y')}
  }`;
    return `${enables([xd, ...(wd ? [wd] : []), ...(bd ? [bd] : [])])}${decl.join('')}
var<workgroup> sp: array<f32, ${g.wx * g.wy}>;
${rowEntry(g, uU32(S_GROUPS), uU32(S_ROWS), body)}`;
  });
}

const tensorOf = (o: Operand): TensorSpec | null => (isScalar(o) ? null : o);
const bind = (t: TensorSpec | null, readOnly = true) => (t ? [{ buffer: t.buffer, readOnly }] : []);

/** layerNorm: inputs x (rows, D), weight (D) or scalar, bias (D) or scalar, then the aux stats (rows, 2). */
export const layerNorm: WebGPUKernel<'layerNorm'> = (inputs, out, a, ctx) => {
  const x = inputs[0] as TensorSpec;
  const st = inputs[3] as TensorSpec;
  const [w, b] = [tensorOf(inputs[1]!), tensorOf(inputs[2]!)];
  if (x.shape[0] === 0 || x.shape[1] === 0) return [];
  const g = rowGroups(x.shape[1]!, x.shape[0]!, ctx);
  const u = rowUniforms(x, g, st.offset, out.offset, a.eps);
  packParam(u, inputs[1]!, S_P0);
  packParam(u, inputs[2]!, S_P1);
  return [
    {
      program: forwardProgram(x.dtype, w?.dtype ?? null, b?.dtype ?? null, g),
      buffers: [...bind(x), ...bind(w), ...bind(b), ...bind(out, false), ...bind(st, false)],
      uniforms: u.words,
      workgroups: grid(g.groups, ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
};

function backwardProgram(xd: DType, wd: DType | null, gd: DType, g: RowGroups): WgslProgram {
  return cached(`layerNormBackward_${xd}_${wd ?? 's'}_${gd}_${g.wx}x${g.wy}`, () => {
    let b = 1;
    const decl = [storageDecl(0, 'X', xd, true)];
    if (wd) decl.push(storageDecl(b++, 'W', wd, true));
    decl.push(storageDecl(b++, 'ST', 'float32', true), storageDecl(b++, 'G', gd, true));
    decl.push(storageDecl(b++, 'O', xd, false), uniformDecl(b, S_WORDS));
    const gy = `${load('G', `${uU32(S_P1 + 1)} + row * ${uU32(S_P1)} + j * ${uU32(S_P1 + 2)}`, gd, 'float32')} * ${param('W', wd, S_P0, 'j')}`;
    const body = `let n = ${uU32(S_D)};
  let r = min(row, ${uU32(S_ROWS)} - 1u);
  let mean = ST[${uU32(S_SOFF)} + 2u * r];
  let rstd = ST[${uU32(S_SOFF)} + 2u * r + 1u];
  var acc = vec2<f32>(0.0, 0.0);
  if (live) {
    for (var j = ly; j < n; j = j + ${g.wy}u) {
      let v = ${gy};
      acc = acc + vec2<f32>(v, v * (${X_AT(xd, 'j')} - mean) * rstd);
    }
  }
  sp[lid] = acc;
  ${treeReduce('sp', g)}
  let s = sp[lid % ${g.wx}u] / f32(n);
  if (!live) { return; }
  for (var j = ly; j < n; j = j + ${g.wy}u) {
    let h = (${X_AT(xd, 'j')} - mean) * rstd;
    let d = rstd * (${gy} - s.x - h * s.y);
    ${store('O', `${uU32(S_OOFF)} + row * n + j`, xd, 'd')}
  }`;
    return `${enables([xd, gd, ...(wd ? [wd] : [])])}${decl.join('')}
var<workgroup> sp: array<vec2<f32>, ${g.wx * g.wy}>;
${rowEntry(g, uU32(S_GROUPS), uU32(S_ROWS), body)}`;
  });
}

/** layerNormBackward: inputs x (rows, D), weight (D) or scalar, stats (rows, 2), gy (rows, D) -> gx. */
export const layerNormBackward: WebGPUKernel<'layerNormBackward'> = (inputs, out, _a, ctx) => {
  const x = inputs[0] as TensorSpec;
  const w = tensorOf(inputs[1]!);
  const [st, gy] = [inputs[2] as TensorSpec, inputs[3] as TensorSpec];
  if (x.shape[0] === 0 || x.shape[1] === 0) return [];
  const g = rowGroups(x.shape[1]!, x.shape[0]!, ctx);
  const u = rowUniforms(x, g, st.offset, out.offset);
  packParam(u, inputs[1]!, S_P0);
  u.u32Array(S_P1, [gy.strides[0]!, gy.offset, gy.strides[1]!]);
  return [
    {
      program: backwardProgram(x.dtype, w?.dtype ?? null, gy.dtype, g),
      buffers: [...bind(x), ...bind(w), ...bind(st), ...bind(gy), ...bind(out, false)],
      uniforms: u.words,
      workgroups: grid(g.groups, ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
};

// Column-sum uniform slots: rows, D, rows per chunk, x row/col strides and offset, stats offset, gy
// row/col strides and offset, partial-sums offset (elements).
// prettier-ignore
const C_ROWS = 0, C_D = 1, C_CHUNK = 2, C_XSR = 3, C_XSC = 4, C_XOFF = 5, C_SOFF = 6, C_GSR = 7, C_GSC = 8,
  C_GOFF = 9, C_POFF = 10, C_WORDS = 11;

/** Column sums of (gy * xhat, gy) over one row chunk per workgroup row, CW columns x RY row lanes. */
function paramsProgram(xd: DType, gd: DType, pd: DType, cw: number, ry: number): WgslProgram {
  return cached(`layerNormParamsBackward_${xd}_${gd}_${pd}_${cw}x${ry}`, () => {
    const steps: string[] = [];
    for (let h = ry / 2; h >= 1; h /= 2) {
      steps.push(`if (ly < ${h}u) { sp[lid] = sp[lid] + sp[lid + ${h * cw}u]; }`, 'workgroupBarrier();');
    }
    return `${enables([xd, gd, pd])}${storageDecl(0, 'X', xd, true)}${storageDecl(1, 'ST', 'float32', true)}${storageDecl(2, 'G', gd, true)}${storageDecl(3, 'P', pd, false)}${uniformDecl(4, C_WORDS)}
var<workgroup> sp: array<vec2<f32>, ${cw * ry}>;
@compute @workgroup_size(${cw * ry})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = ${uU32(C_D)};
  let lx = lid % ${cw}u;
  let ly = lid / ${cw}u;
  let col = wid.x * ${cw}u + lx;
  let r0 = wid.y * ${uU32(C_CHUNK)};
  let r1 = min(${uU32(C_ROWS)}, r0 + ${uU32(C_CHUNK)});
  var acc = vec2<f32>(0.0, 0.0);
  if (col < n) {
    for (var r = r0 + ly; r < r1; r = r + ${ry}u) {
      let h = (${load('X', `${uU32(C_XOFF)} + r * ${uU32(C_XSR)} + col * ${uU32(C_XSC)}`, xd, 'float32')} - ST[${uU32(C_SOFF)} + 2u * r]) * ST[${uU32(C_SOFF)} + 2u * r + 1u];
      let v = ${load('G', `${uU32(C_GOFF)} + r * ${uU32(C_GSR)} + col * ${uU32(C_GSC)}`, gd, 'float32')};
      acc = acc + vec2<f32>(v * h, v);
    }
  }
  sp[lid] = acc;
  workgroupBarrier();
  ${steps.join('\n  ')}
  if (ly == 0u && col < n) {
    let p = ${uU32(C_POFF)} + wid.y * 2u * n + col;
    ${store('P', 'p', pd, 'sp[lid].x')}
    ${store('P', 'p + n', pd, 'sp[lid].y')}
  }
}
`;
  });
}

/** Adds `chunks` partial (2, D) sums: out[i] = sum_k P[k * 2D + i]. */
function finishProgram(od: DType): WgslProgram {
  return cached(`layerNormParamsBackward.finish_${od}`, () => {
    const body = `if (gi >= ${uU32(0)}) { return; }
var s = 0.0;
for (var k = 0u; k < ${uU32(1)}; k = k + 1u) { s = s + P[k * ${uU32(0)} + gi]; }
${store('O', `${uU32(2)} + gi`, od, 's')}`;
    return `${enables([od])}${storageDecl(0, 'P', 'float32', true)}${storageDecl(1, 'O', od, false)}${uniformDecl(2, 3)}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

/** layerNormParamsBackward: inputs x (rows, D), stats (rows, 2), gy (rows, D) -> (2, D). */
export const layerNormParamsBackward: WebGPUKernel<'layerNormParamsBackward'> = (inputs, out, _a, ctx) => {
  const [x, st, gy] = inputs as [TensorSpec, TensorSpec, TensorSpec];
  const [rows, d] = x.shape as [number, number];
  if (d === 0) return [];
  const threads = 2 ** Math.floor(Math.log2(Math.min(256, ctx.limits.maxComputeInvocationsPerWorkgroup)));
  const cw = Math.min(64, threads, 2 ** Math.ceil(Math.log2(d)));
  const ry = threads / cw;
  const blocks = Math.ceil(d / cw);
  // enough row chunks that blocks x chunks fills a GPU, each of at least 8 rows per lane
  const chunks = Math.max(1, Math.min(Math.ceil(rows / (8 * ry)), Math.ceil(512 / blocks), 1024));
  const chunkRows = Math.ceil(rows / chunks);
  const partial = (dest: {
    readonly buffer: DeviceBuffer;
    readonly offset: number;
    readonly dtype: DType;
  }): Dispatch => {
    const u = new UniformWords(C_WORDS);
    u.u32Array(C_ROWS, [rows, d, chunkRows, x.strides[0]!, x.strides[1]!, x.offset, st.offset]);
    u.u32Array(C_GSR, [gy.strides[0]!, gy.strides[1]!, gy.offset, dest.offset]);
    return {
      program: paramsProgram(x.dtype, gy.dtype, dest.dtype, cw, ry),
      buffers: [
        { buffer: x.buffer, readOnly: true },
        { buffer: st.buffer, readOnly: true },
        { buffer: gy.buffer, readOnly: true },
        { buffer: dest.buffer, readOnly: false },
      ],
      uniforms: u.words,
      workgroups: [blocks, chunks, 1],
    };
  };
  if (chunks === 1) return [partial(out)];
  const scratch = ctx.scratch(chunks * 2 * d * 4);
  const u = new UniformWords(3).u32Array(0, [2 * d, chunks, out.offset]);
  return [
    partial({ buffer: scratch, offset: 0, dtype: 'float32' }),
    {
      program: finishProgram(out.dtype),
      buffers: [
        { buffer: scratch, readOnly: true },
        { buffer: out.buffer, readOnly: false },
      ],
      uniforms: u.words,
      workgroups: grid(Math.ceil((2 * d) / WORKGROUP_SIZE), ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
};

/** The layer-norm entries of the kernel table. */
export const layerNormKernels = { layerNorm, layerNormBackward, layerNormParamsBackward };
