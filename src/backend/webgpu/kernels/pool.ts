// 2-D pooling for WebGPU: one invocation per output element for the forward kernels (max also writes
// the window's argmax h * W + w), one per input element for the backward kernels, which gather from
// the outputs whose windows contain that element (no atomics: float atomics do not exist in WGSL, and
// scattering would race where windows overlap). Window math matches the CPU kernels (cpu/pool.ts).
import type { DType } from '../../../core/dtype.js';
import type { AvgPool2dAttrs } from '../../../ops/opcodes.js';
import type { TensorSpec } from '../../backend.js';
import type { Dispatch, KernelContext, WebGPUKernel, WgslProgram } from '../kernel.js';
import { cachedProgram,
  HELPERS_WGSL, UniformWords, WORKGROUP_SIZE, enables, entry1d, grid, load, storageDecl, store, uU32, uniformDecl,
} from './codegen.js'; // prettier-ignore

// Uniform slots: planes' C, input H and W, output OH and OW, kernel, stride, padding, dilation (h, w
// each), the strided operand's 4 strides and offset, output offset, argmax offset, element count,
// countIncludePad, adaptive.
// prettier-ignore
const U_C = 0, U_H = 1, U_W = 2, U_OH = 3, U_OW = 4, U_KH = 5, U_KW = 6, U_SH = 7, U_SW = 8, U_PH = 9, U_PW = 10,
  U_DH = 11, U_DW = 12, U_STR = 13, U_OFF = 17, U_OOFF = 18, U_IOFF = 19, U_COUNT = 20, U_INCL = 21, U_ADAPT = 22,
  U_WORDS = 23;

const i = (slot: number): string => `i32(${uU32(slot)})`;

/** Packs the uniforms of a pool dispatch; `t` is the operand read through its strides (x or gy). */
function uniforms(
  t: TensorSpec,
  hw: readonly number[],
  ohw: readonly number[],
  a: { kernel: readonly number[]; stride: readonly number[]; padding: readonly number[] },
  dilation: readonly number[],
  out: TensorSpec,
  count: number,
): UniformWords {
  const u = new UniformWords(U_WORDS);
  u.u32Array(U_C, [t.shape[1]!, hw[0]!, hw[1]!, ohw[0]!, ohw[1]!, ...a.kernel, ...a.stride, ...a.padding, ...dilation]);
  u.u32Array(U_STR, [...t.strides, t.offset, out.offset]);
  return u.u32(U_COUNT, count);
}

/** WGSL that splits `gi` over (planes, rows, cols) of `rows` x `cols` planes: defines p, n, c, r, q. */
function split(rows: string, cols: string): string {
  return `let q = i32(gi % ${cols}); let tq = gi / ${cols}; let r = i32(tq % ${rows}); let p = tq / ${rows};
  let n = p / ${uU32(U_C)}; let c = p % ${uU32(U_C)};
  let base = ${uU32(U_OFF)} + n * ${uU32(U_STR)} + c * ${uU32(U_STR + 1)};`;
}

/** `t`'s element at (row, col) of the current plane (strides from the uniforms; u32 math wraps). */
const at = (name: string, d: DType, row: string, col: string): string =>
  load(name, `base + u32(${row}) * ${uU32(U_STR + 2)} + u32(${col}) * ${uU32(U_STR + 3)}`, d, 'float32');

function dispatch(program: WgslProgram, bufs: Dispatch['buffers'], u: UniformWords, n: number, ctx: KernelContext) {
  return {
    program,
    buffers: bufs,
    uniforms: u.words,
    workgroups: grid(Math.ceil(n / WORKGROUP_SIZE), ctx.limits.maxComputeWorkgroupsPerDimension),
  };
}

function maxProgram(xd: DType, od: DType): WgslProgram {
  return cachedProgram(`maxPool2d_${xd}_${od}`, () => {
    const body = `if (gi >= ${uU32(U_COUNT)}) { return; }
  ${split(uU32(U_OH), uU32(U_OW))}
  let h0 = r * ${i(U_SH)} - ${i(U_PH)};
  let w0 = q * ${i(U_SW)} - ${i(U_PW)};
  var best = tl_bits(0xff800000u); // -inf (through a call: a constant -inf does not compile)
  var arg = -1i;
  for (var a = 0; a < ${i(U_KH)}; a++) {
    let hh = h0 + a * ${i(U_DH)};
    if (hh < 0 || hh >= ${i(U_H)}) { continue; }
    for (var b = 0; b < ${i(U_KW)}; b++) {
      let ww = w0 + b * ${i(U_DW)};
      if (ww < 0 || ww >= ${i(U_W)}) { continue; }
      let v = ${at('X', xd, 'hh', 'ww')};
      if (v > best || tl_isnan(v)) { best = v; arg = hh * ${i(U_W)} + ww; }
    }
  }
  ${store('O', `${uU32(U_OOFF)} + gi`, od, 'best')}
  IX[${uU32(U_IOFF)} + gi] = arg;`;
    return `${enables([xd, od])}${HELPERS_WGSL}fn tl_bits(b: u32) -> f32 { return bitcast<f32>(b); }
${storageDecl(0, 'X', xd, true)}${storageDecl(1, 'O', od, false)}${storageDecl(2, 'IX', 'int32', false)}${uniformDecl(3, U_WORDS)}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

/** maxPool2d: input x (N, C, H, W), then the aux argmax (N, C, OH, OW) int32. */
export const maxPool2d: WebGPUKernel<'maxPool2d'> = (inputs, out, a, ctx) => {
  const [x, ix] = inputs as [TensorSpec, TensorSpec];
  const count = out.shape.reduce((s, d) => s * d, 1);
  const u = uniforms(x, x.shape.slice(2), out.shape.slice(2), a, a.dilation, out, count).u32(U_IOFF, ix.offset);
  const bufs = [
    { buffer: x.buffer, readOnly: true },
    { buffer: out.buffer, readOnly: false },
    { buffer: ix.buffer, readOnly: false },
  ];
  return [dispatch(maxProgram(x.dtype, out.dtype), bufs, u, count, ctx)];
};

function maxBackwardProgram(gd: DType, od: DType): WgslProgram {
  return cachedProgram(`maxPool2dBackward_${gd}_${od}`, () => {
    // r, q: this thread's input element; the windows holding it start at (r + pad - a * dil) / stride
    const body = `if (gi >= ${uU32(U_COUNT)}) { return; }
  ${split(uU32(U_H), uU32(U_W))}
  let me = r * ${i(U_W)} + q;
  let ibase = ${uU32(U_IOFF)} + p * ${uU32(U_OH)} * ${uU32(U_OW)};
  var acc = 0.0;
  for (var a = 0; a < ${i(U_KH)}; a++) {
    let th = r + ${i(U_PH)} - a * ${i(U_DH)};
    if (th < 0 || th % ${i(U_SH)} != 0) { continue; }
    let oh = th / ${i(U_SH)};
    if (oh >= ${i(U_OH)}) { continue; }
    for (var b = 0; b < ${i(U_KW)}; b++) {
      let tw = q + ${i(U_PW)} - b * ${i(U_DW)};
      if (tw < 0 || tw % ${i(U_SW)} != 0) { continue; }
      let ow = tw / ${i(U_SW)};
      if (ow >= ${i(U_OW)}) { continue; }
      if (IX[ibase + u32(oh * ${i(U_OW)} + ow)] == me) { acc = acc + ${at('G', gd, 'oh', 'ow')}; }
    }
  }
  ${store('O', `${uU32(U_OOFF)} + gi`, od, 'acc')}`;
    return `${enables([gd, od])}${storageDecl(0, 'G', gd, true)}${storageDecl(1, 'IX', 'int32', true)}${storageDecl(2, 'O', od, false)}${uniformDecl(3, U_WORDS)}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

/** maxPool2dBackward: inputs gy (N, C, OH, OW), argmax (N, C, OH, OW) int32 -> gx (N, C, H, W). */
export const maxPool2dBackward: WebGPUKernel<'maxPool2dBackward'> = (inputs, out, a, ctx) => {
  const [g, ix] = inputs as [TensorSpec, TensorSpec];
  const count = out.shape.reduce((s, d) => s * d, 1);
  const u = uniforms(g, out.shape.slice(2), g.shape.slice(2), a, a.dilation, out, count).u32(U_IOFF, ix.offset);
  const bufs = [
    { buffer: g.buffer, readOnly: true },
    { buffer: ix.buffer, readOnly: true },
    { buffer: out.buffer, readOnly: false },
  ];
  return [dispatch(maxBackwardProgram(g.dtype, out.dtype), bufs, u, count, ctx)];
};

/**
 * WGSL `tl_win(o, len, outLen, k, s, p) -> vec3<i32>`: output o's window along a dim, [x, y) clipped
 * to the input, and z its divisor factor (see AvgPool2dAttrs; cpu/pool.ts `windows`).
 */
const WINDOW_WGSL = `
fn tl_win(o: i32, len: i32, outLen: i32, k: i32, s: i32, p: i32) -> vec3<i32> {
  if (${uU32(U_ADAPT)} != 0u) {
    let lo = (o * len) / outLen;
    let hi = ((o + 1) * len + outLen - 1) / outLen;
    return vec3<i32>(lo, hi, hi - lo);
  }
  let lo = o * s - p;
  let hi = min(lo + k, len + p);
  let lo2 = max(lo, 0);
  let hi2 = min(hi, len);
  return vec3<i32>(lo2, hi2, select(hi2 - lo2, hi - lo, ${uU32(U_INCL)} != 0u));
}
`;
const winH = (o: string) => `tl_win(${o}, ${i(U_H)}, ${i(U_OH)}, ${i(U_KH)}, ${i(U_SH)}, ${i(U_PH)})`;
const winW = (o: string) => `tl_win(${o}, ${i(U_W)}, ${i(U_OW)}, ${i(U_KW)}, ${i(U_SW)}, ${i(U_PW)})`;

function avgProgram(xd: DType, od: DType): WgslProgram {
  return cachedProgram(`avgPool2d_${xd}_${od}`, () => {
    const body = `if (gi >= ${uU32(U_COUNT)}) { return; }
  ${split(uU32(U_OH), uU32(U_OW))}
  let wh = ${winH('r')};
  let ww = ${winW('q')};
  var s = 0.0;
  for (var a = wh.x; a < wh.y; a++) {
    for (var b = ww.x; b < ww.y; b++) { s = s + ${at('X', xd, 'a', 'b')}; }
  }
  ${store('O', `${uU32(U_OOFF)} + gi`, od, 's / f32(wh.z * ww.z)')}`;
    return `${enables([xd, od])}${storageDecl(0, 'X', xd, true)}${storageDecl(1, 'O', od, false)}${uniformDecl(2, U_WORDS)}${WINDOW_WGSL}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

const flags = (u: UniformWords, a: AvgPool2dAttrs): UniformWords =>
  u.u32(U_INCL, a.countIncludePad ? 1 : 0).u32(U_ADAPT, a.adaptive ? 1 : 0);

/** avgPool2d (fixed or adaptive windows): input x (N, C, H, W) -> (N, C, OH, OW). */
export const avgPool2d: WebGPUKernel<'avgPool2d'> = (inputs, out, a, ctx) => {
  const x = inputs[0] as TensorSpec;
  const count = out.shape.reduce((s, d) => s * d, 1);
  const u = flags(uniforms(x, x.shape.slice(2), out.shape.slice(2), a, [1, 1], out, count), a);
  const bufs = [
    { buffer: x.buffer, readOnly: true },
    { buffer: out.buffer, readOnly: false },
  ];
  return [dispatch(avgProgram(x.dtype, out.dtype), bufs, u, count, ctx)];
};

/** First and last output index whose window may contain input index `v` along a dim (then checked). */
function candidates(v: string, len: number, olen: number, k: number, s: number, p: number): string {
  const [L, O, K, S, P] = [len, olen, k, s, p].map(i);
  return `select(select(0, (${v} + ${P} - ${K}) / ${S} + 1, ${v} + ${P} >= ${K}), (${v} * ${O}) / ${L}, ${uU32(U_ADAPT)} != 0u),
    min(${O} - 1, select((${v} + ${P}) / ${S}, ((${v} + 1) * ${O} + ${L} - 1) / ${L} - 1, ${uU32(U_ADAPT)} != 0u))`;
}

function avgBackwardProgram(gd: DType, od: DType): WgslProgram {
  return cachedProgram(`avgPool2dBackward_${gd}_${od}`, () => {
    const body = `if (gi >= ${uU32(U_COUNT)}) { return; }
  ${split(uU32(U_H), uU32(U_W))}
  let rh = vec2<i32>(${candidates('r', U_H, U_OH, U_KH, U_SH, U_PH)});
  let rw = vec2<i32>(${candidates('q', U_W, U_OW, U_KW, U_SW, U_PW)});
  var acc = 0.0;
  for (var oh = rh.x; oh <= rh.y; oh++) {
    let wh = ${winH('oh')};
    if (r < wh.x || r >= wh.y) { continue; }
    for (var ow = rw.x; ow <= rw.y; ow++) {
      let ww = ${winW('ow')};
      if (q < ww.x || q >= ww.y) { continue; }
      acc = acc + ${at('G', gd, 'oh', 'ow')} / f32(wh.z * ww.z);
    }
  }
  ${store('O', `${uU32(U_OOFF)} + gi`, od, 'acc')}`;
    return `${enables([gd, od])}${storageDecl(0, 'G', gd, true)}${storageDecl(1, 'O', od, false)}${uniformDecl(2, U_WORDS)}${WINDOW_WGSL}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

/** avgPool2dBackward: input gy (N, C, OH, OW) -> gx (N, C, H, W), gathered per input element. */
export const avgPool2dBackward: WebGPUKernel<'avgPool2dBackward'> = (inputs, out, a, ctx) => {
  const g = inputs[0] as TensorSpec;
  const count = out.shape.reduce((s, d) => s * d, 1);
  const u = flags(uniforms(g, out.shape.slice(2), g.shape.slice(2), a, [1, 1], out, count), a);
  const bufs = [
    { buffer: g.buffer, readOnly: true },
    { buffer: out.buffer, readOnly: false },
  ];
  return [dispatch(avgBackwardProgram(g.dtype, out.dtype), bufs, u, count, ctx)];
};

/** The pooling entries of the kernel table. */
export const poolKernels = { maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward };
