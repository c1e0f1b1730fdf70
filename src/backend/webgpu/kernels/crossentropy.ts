// Fused softmax cross-entropy for WebGPU. Forward: one pass over each logits row by the threads of
// a row group, each keeping a running (max, sum of exp(x - max), sum of x), combined by a tree in
// workgroup memory; one thread per row writes the loss and the row's logsumexp (the auxiliary output).
// Backward: one thread per logits element writes g * (exp(z - lse) - (1 - eps) * onehot - eps / C).
import { numel } from '../../../core/shape.js';
import type { DType } from '../../../core/dtype.js';
import type { TensorSpec } from '../../backend.js';
import type { WebGPUKernel, WgslProgram } from '../kernel.js';
import { cachedProgram,
  HELPERS_WGSL, UniformWords, WORKGROUP_SIZE, checkDecl, enables, entry1d, grid, load, storageDecl, store, uF32, uI32,
  uU32, uniformDecl,
} from './codegen.js'; // prettier-ignore
import { rowEntry, rowGroups, treeReduce, type RowGroups } from './rows.js';

const cached = cachedProgram;

// Forward uniform slots: rows, classes, groups, logits row/class strides and offset, targets stride
// and offset, lse and loss offsets, ignoreIndex (i32), eps (f32), the range check's failure code.
// prettier-ignore
const F_ROWS = 0, F_C = 1, F_GROUPS = 2, F_XSR = 3, F_XSC = 4, F_XOFF = 5, F_TS = 6, F_TOFF = 7, F_LOFF = 8,
  F_OOFF = 9, F_IGN = 10, F_EPS = 11, F_CODE = 12;

/** Shared WGSL: runtime infinities and NaN, and the combination of two (max, sum exp, sum) triples. */
const COMB_WGSL = `
// bitcast through a function argument so that infinities are runtime values (const-eval rejects them)
fn bits(b: u32) -> f32 { return bitcast<f32>(b); }
fn comb(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  let z = a.z + b.z;
  if (tl_isnan(a.x)) { return vec3<f32>(a.x, 0.0, z); }
  if (tl_isnan(b.x)) { return vec3<f32>(b.x, 0.0, z); }
  let m = max(a.x, b.x);
  if (m == bits(0xff800000u)) { return vec3<f32>(m, 0.0, z); }
  return vec3<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m), z);
}
`;

/**
 * The forward program. lse is m + log(s), -inf for a row of -infs and NaN when the max is NaN or +inf
 * (as the CPU backend computes it); a bad target reports through the checks buffer and writes NaN.
 */
function forwardProgram(xd: DType, od: DType, g: RowGroups): WgslProgram {
  return cached(`crossEntropyRows_${xd}_${od}_${g.wx}x${g.wy}`, () => {
    const x = (j: string) => load('X', `xb + ${j} * ${uU32(F_XSC)}`, xd, 'float32');
    const body = `let n = ${uU32(F_C)};
  let ninf = bits(0xff800000u);
  let xb = ${uU32(F_XOFF)} + row * ${uU32(F_XSR)};
  var m = ninf;
  var s = 0.0;
  var z = 0.0;
  if (live) {
    for (var j = ly; j < n; j = j + ${g.wy}u) {
      let v = ${x('j')};
      z = z + v;
      if (v > m) {
        s = select(s * exp(m - v), 0.0, m == ninf) + 1.0;
        m = v;
      } else if (tl_isnan(v)) {
        m = v;
      } else if (v != ninf) {
        s = s + exp(v - m);
      }
    }
  }
  sp[lid] = vec3<f32>(m, s, z);
  ${treeReduce('sp', g, 'comb')}
  if (!live || ly != 0u) { return; }
  let r = sp[lid];
  let bad = (bitcast<u32>(r.x) & 0x7fffffffu) >= 0x7f800000u && r.x != ninf; // NaN or +inf max
  let lse = select(select(r.x + log(r.y), ninf, r.x == ninf), bits(0x7fc00000u), bad);
  L[${uU32(F_LOFF)} + row] = lse;
  let t = T[${uU32(F_TOFF)} + row * ${uU32(F_TS)}];
  let eps = ${uF32(F_EPS)};
  var loss = 0.0;
  if (t != ${uI32(F_IGN)}) {
    if (t >= 0i && u32(t) < n) {
      loss = lse - (1.0 - eps) * ${x('u32(t)')};
      if (eps > 0.0) { loss = loss - eps * r.z / f32(n); } // skipped at 0: a -inf logit would give NaN
    } else {
      loss = bits(0x7fc00000u);
      tl_fail_at(${uU32(F_CODE)}, bitcast<u32>(t), row);
    }
  }
  ${store('O', `${uU32(F_OOFF)} + row`, od, 'loss')}`;
    return `${enables([xd, od])}${HELPERS_WGSL}${COMB_WGSL}
${storageDecl(0, 'X', xd, true)}${storageDecl(1, 'T', 'int32', true)}${storageDecl(2, 'O', od, false)}${storageDecl(3, 'L', 'float32', false)}${checkDecl(4)}${uniformDecl(5, F_CODE + 1)}
var<workgroup> sp: array<vec3<f32>, ${g.wx * g.wy}>;
${rowEntry(g, uU32(F_GROUPS), uU32(F_ROWS), body)}`;
  });
}

/** crossEntropyRows: inputs logits (N, C), int32 targets (N), then the aux lse (N, float32). */
export const crossEntropyRows: WebGPUKernel<'crossEntropyRows'> = (inputs, out, a, ctx) => {
  const x = inputs[0] as TensorSpec;
  const t = inputs[1] as TensorSpec;
  const l = inputs[2] as TensorSpec;
  const [rows, c] = x.shape as [number, number];
  if (rows === 0) return [];
  const g = rowGroups(c, rows, ctx);
  const range = c > 0 ? `[0, ${c}) (0 to ${c - 1})` : 'empty (no classes)';
  const code = ctx.checks.code(
    'crossEntropy',
    `target {value} at position {position} is out of range for ${c} classes; valid range ${range}, or ignoreIndex ${a.ignoreIndex}`,
    { positionShape: [rows] },
  );
  const u = new UniformWords(F_CODE + 1);
  u.u32Array(F_ROWS, [rows, c, g.groups, x.strides[0]!, x.strides[1]!, x.offset, t.strides[0]!, t.offset]);
  u.u32(F_LOFF, l.offset).u32(F_OOFF, out.offset).i32s(F_IGN, a.ignoreIndex).f32s(F_EPS, a.labelSmoothing);
  u.u32(F_CODE, code);
  return [
    {
      program: forwardProgram(x.dtype, out.dtype, g),
      buffers: [
        { buffer: x.buffer, readOnly: true },
        { buffer: t.buffer, readOnly: true },
        { buffer: out.buffer, readOnly: false },
        { buffer: l.buffer, readOnly: false },
        { buffer: ctx.checks.buffer, readOnly: false },
      ],
      uniforms: u.words,
      workgroups: grid(g.groups, ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
};

// Backward uniform slots: elements, classes, logits strides and offset, targets stride and offset, lse
// offset, upstream stride and offset, output offset, ignoreIndex (i32), eps (f32).
// prettier-ignore
const B_N = 0, B_C = 1, B_XSR = 2, B_XSC = 3, B_XOFF = 4, B_TS = 5, B_TOFF = 6, B_LOFF = 7, B_GS = 8, B_GOFF = 9,
  B_OOFF = 10, B_IGN = 11, B_EPS = 12;

function backwardProgram(xd: DType, gd: DType, od: DType): WgslProgram {
  return cached(`crossEntropyRowsBackward_${xd}_${gd}_${od}`, () => {
    const body = `if (gi >= ${uU32(B_N)}) { return; }
let n = ${uU32(B_C)};
let row = gi / n;
let col = gi - row * n;
let t = T[${uU32(B_TOFF)} + row * ${uU32(B_TS)}];
var d = 0.0;
if (t != ${uI32(B_IGN)}) {
  let eps = ${uF32(B_EPS)};
  let z = ${load('X', `${uU32(B_XOFF)} + row * ${uU32(B_XSR)} + col * ${uU32(B_XSC)}`, xd, 'float32')};
  let up = ${load('G', `${uU32(B_GOFF)} + row * ${uU32(B_GS)}`, gd, 'float32')};
  let hot = select(0.0, 1.0 - eps, t >= 0i && u32(t) == col);
  d = up * (exp(z - L[${uU32(B_LOFF)} + row]) - eps / f32(n) - hot);
}
${store('O', `${uU32(B_OOFF)} + gi`, od, 'd')}`;
    return `${enables([xd, gd, od])}${storageDecl(0, 'X', xd, true)}${storageDecl(1, 'T', 'int32', true)}${storageDecl(2, 'L', 'float32', true)}${storageDecl(3, 'G', gd, true)}${storageDecl(4, 'O', od, false)}${uniformDecl(5, B_EPS + 1)}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

/** crossEntropyRowsBackward: inputs logits (N, C), targets (N), lse (N), upstream (N) -> dlogits (N, C). */
export const crossEntropyRowsBackward: WebGPUKernel<'crossEntropyRowsBackward'> = (inputs, out, a, ctx) => {
  const [x, t, l, g] = inputs as [TensorSpec, TensorSpec, TensorSpec, TensorSpec];
  const n = numel(out.shape);
  if (n === 0) return [];
  const u = new UniformWords(B_EPS + 1);
  u.u32Array(B_N, [n, x.shape[1]!, x.strides[0]!, x.strides[1]!, x.offset, t.strides[0]!, t.offset, l.offset]);
  u.u32Array(B_GS, [g.strides[0]!, g.offset, out.offset]).i32s(B_IGN, a.ignoreIndex).f32s(B_EPS, a.labelSmoothing);
  return [
    {
      program: backwardProgram(x.dtype, g.dtype, out.dtype),
      buffers: [
        { buffer: x.buffer, readOnly: true },
        { buffer: t.buffer, readOnly: true },
        { buffer: l.buffer, readOnly: true },
        { buffer: g.buffer, readOnly: true },
        { buffer: out.buffer, readOnly: false },
      ],
      uniforms: u.words,
      workgroups: grid(Math.ceil(n / WORKGROUP_SIZE), ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
};

/** The cross-entropy entries of the kernel table. */
export const crossEntropyKernels = { crossEntropyRows, crossEntropyRowsBackward };
