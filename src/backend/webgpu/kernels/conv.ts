// WebGPU conv2d and its two backward ops as implicit GEMMs (conv-gemm.ts), batched over conv groups:
//   forward       y[n, o, p]       = sum_(c, kh, kw) w[o, c, kh, kw] * x[n, c, p*s - pad + k*dil]
//   input grad    gx[n, c, h, w]   = sum_(o, kh, kw) w[o, c, kh, kw] * gy[n, o, (h + pad - k*dil) / s]
//   weight grad   gw[o, c, kh, kw] = sum_(n, p) gy[n, o, p] * x[n, c, p*s - pad + k*dil]
// All three are gathers (no atomics, deterministic); long reductions with few output tiles are split
// over K into scratch partials that a second dispatch adds (with the bias, for the forward).
import type { DType } from '../../../core/dtype.js';
import type { Conv2dAttrs } from '../../../ops/opcodes.js';
import type { TensorSpec } from '../../backend.js';
import type { Dispatch, KernelContext, WebGPUKernel, WgslProgram } from '../kernel.js';
import {
  UniformWords, WORKGROUP_SIZE, cachedProgram, enables, entry1d, grid, load, storageDecl, store, uU32, uniformDecl,
} from './codegen.js'; // prettier-ignore
import { GEMM_WORDS, S, convPlan, gemmProgram, type GemmShape } from './conv-gemm.js';

/** One GEMM of a conv op: sizes, operands, and the uniforms that map its indices onto the tensors. */
interface GemmPart extends GemmShape {
  readonly a: TensorSpec;
  readonly b: TensorSpec;
  /** Added to A's element offset (a stride phase's first tap). */
  readonly aShift: number;
  /** Added to the output's element offset (a stride phase's first element). */
  readonly oShift: number;
  /** How its indices map onto the tensors. */
  readonly maps: Maps;
}

/** A fused bias (forward only): the tensor, and the output's channel count and plane size. */
interface Bias {
  readonly t: TensorSpec;
  readonly channels: number;
  readonly plane: number;
}

const numel = (t: TensorSpec): number => t.shape.reduce((x, y) => x * y, 1);

/**
 * Adds the split-K partials: out[oOff + i] = sum_s P[s * numel + i] (+ bias[(i / plane) % channels]),
 * clamped at 0 when `relu` (the forward's fused activation).
 */
function finishProgram(out: DType, bias: DType | null, relu: boolean): WgslProgram {
  return cachedProgram(`conv2d.splitk_${out}_${bias ?? 'nobias'}${relu ? '_relu' : ''}`, () => {
    const bv = bias ? load('BIAS', `${uU32(3)} + (gi / ${uU32(4)}) % ${uU32(5)}`, bias, 'float32') : '0.0';
    const body = `if (gi >= ${uU32(0)}) { return; }
var s = ${bv};
for (var k = 0u; k < ${uU32(1)}; k = k + 1u) { s = s + P[k * ${uU32(0)} + gi]; }
${store('O', `${uU32(2)} + gi`, out, relu ? 'max(s, 0.0)' : 's')}`;
    const decl = [storageDecl(0, 'P', 'float32', true)];
    if (bias) decl.push(storageDecl(1, 'BIAS', bias, true));
    decl.push(storageDecl(decl.length, 'O', out, false), uniformDecl(decl.length + 1, 6));
    return `${enables([out, ...(bias ? [bias] : [])])}${decl.join('')}${entry1d(WORKGROUP_SIZE, body)}`;
  });
}

/**
 * The dispatches of the GEMMs that together write `out` (each output element by exactly one of them):
 * one per GEMM, plus one that adds the partial sums when K is split (the partials of every GEMM land
 * in one scratch of `splits` outputs, so a single pass finishes them all).
 */
function gemmDispatches(
  parts: readonly GemmPart[],
  groups: number,
  out: TensorSpec,
  bias: Bias | null,
  ctx: KernelContext,
  relu = false,
): Dispatch[] {
  const total = numel(out);
  if (total === 0) return [];
  const plan = convPlan(parts, groups, total, ctx.limits);
  const split = plan.splits > 1;
  const dest = split ? { buffer: ctx.scratch(plan.splits * total * 4), offset: 0, dtype: 'float32' as DType } : out;
  const fused = split ? null : bias;
  const maxDim = ctx.limits.maxComputeWorkgroupsPerDimension;
  const dispatches = parts.map((p, i): Dispatch => {
    const [tile, count] = [plan.tiles[i]!, plan.counts[i]!];
    const u = new UniformWords(GEMM_WORDS);
    u.u32Array(S.M, [p.m, p.n, p.k, Math.ceil(p.n / tile.bn), Math.ceil(p.m / tile.bm)]);
    u.u32Array(S.GROUPS, [count * plan.splits, groups, plan.chunks[i]!]);
    setMaps(u, p.maps);
    u.u32(S.A_OFF, p.a.offset + p.aShift).u32(S.B_OFF, p.b.offset);
    u.u32(S.O_OFF, dest.offset + p.oShift).u32(S.O_SS, total);
    if (fused) u.u32(S.BIAS_OFF, fused.t.offset);
    const program = gemmProgram({
      tile,
      a: p.a.dtype,
      b: p.b.dtype,
      out: dest.dtype,
      bias: fused?.t.dtype ?? null,
      relu: relu && !split, // split-K partials stay raw; the finishing pass clamps their sum
    });
    return {
      program,
      buffers: [
        { buffer: p.a.buffer, readOnly: true },
        { buffer: p.b.buffer, readOnly: true },
        ...(fused ? [{ buffer: fused.t.buffer, readOnly: true }] : []),
        { buffer: dest.buffer, readOnly: false },
      ],
      uniforms: u.words,
      workgroups: grid(count * plan.splits, maxDim),
    };
  });
  if (!split) return dispatches;
  const fu = new UniformWords(6).u32Array(0, [total, plan.splits, out.offset, bias?.t.offset ?? 0]);
  fu.u32Array(4, [Math.max(1, bias?.plane ?? 1), Math.max(1, bias?.channels ?? 1)]);
  dispatches.push({
    program: finishProgram(out.dtype, bias?.t.dtype ?? null, relu),
    buffers: [
      { buffer: dest.buffer, readOnly: true },
      ...(bias ? [{ buffer: bias.t.buffer, readOnly: true }] : []),
      { buffer: out.buffer, readOnly: false },
    ],
    uniforms: fu.words,
    workgroups: grid(Math.ceil(total / WORKGROUP_SIZE), maxDim),
  });
  return dispatches;
}

/** Sizes of one convolution: x (n, c, h, w), w (o, cg, kh, kw), y (n, o, oh, ow), g groups of cg / og channels. */
interface Geometry {
  readonly n: number;
  readonly c: number;
  readonly h: number;
  readonly w: number;
  readonly o: number;
  readonly kh: number;
  readonly kw: number;
  readonly oh: number;
  readonly ow: number;
  readonly g: number;
  readonly cg: number;
  readonly og: number;
}

function geometry(x: readonly number[], w: readonly number[], y: readonly number[], a: Conv2dAttrs): Geometry {
  const [n, c, h, wd] = x as [number, number, number, number];
  const [o, cg, kh, kw] = w as [number, number, number, number];
  const [, , oh, ow] = y as [number, number, number, number];
  return { n, c, h, w: wd, o, kh, kw, oh, ow, g: a.groups, cg, og: o / a.groups };
}

/** The index maps of one GEMM, in the order of the uniform slots (see the slot comment in conv-gemm.ts). */
interface Maps {
  /** A: group stride, row stride, then the multipliers of k's parts a, b, c. */
  readonly a: readonly [number, number, number, number, number];
  /** k's parts: sizes of b and c; base = a * sa; h = b * hb + ho; w = c * wc + wo: [kB, kC, sa, hb, ho, wc, wo]. */
  readonly k: readonly [number, number, number, number, number, number, number];
  /** j's parts, likewise. */
  readonly j: readonly [number, number, number, number, number, number, number];
  /** B: group stride, height, width. */
  readonly b: readonly [number, number, number];
  /** Output: group stride, row stride, and j's offset (j / P) * NS + (j % P / C) * BS + (j % C) * CS as P, NS, C, BS, CS. */
  readonly o: readonly [number, number, number, number, number, number, number];
}

/** Packs `m` (negative values as their i32 bits). */
function setMaps(u: UniformWords, m: Maps): void {
  u.u32Array(S.A_GS, m.a);
  u.u32Array(S.K_B, m.k).u32Array(S.J_B, m.j).u32Array(S.B_GS, m.b).u32Array(S.O_GS, m.o);
}

/** conv2d: y (N, O, OH, OW) = x (N, C, H, W) conv w (O, C/groups, KH, KW) [+ bias (O)]. */
export const conv2d: WebGPUKernel<'conv2d'> = (inputs, out, attrs, ctx) => {
  const [x, w] = inputs as [TensorSpec, TensorSpec];
  const b = (inputs[2] as TensorSpec | undefined) ?? null;
  const q = geometry(x.shape, w.shape, out.shape, attrs);
  const [[sh, sw], [ph, pw], [dh, dw]] = [attrs.stride, attrs.padding, attrs.dilation];
  const [hw, p, kk] = [q.h * q.w, q.oh * q.ow, q.kh * q.kw];
  // A[o, (c, kh, kw)] = w[o, c, kh, kw]; B[(c, kh, kw), (n, oh, ow)] = x[n, c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]
  const maps: Maps = {
    a: [q.og * q.cg * kk, q.cg * kk, kk, q.kw, 1],
    k: [q.kh, q.kw, hw, dh, 0, dw, 0],
    j: [q.oh, q.ow, q.c * hw, sh, -ph, sw, -pw],
    b: [q.cg * hw, q.h, q.w],
    o: [q.og * p, p, p, q.o * p, q.ow, q.ow, 1],
  };
  const part: GemmPart = {
    m: q.og,
    n: q.n * p,
    k: q.cg * kk,
    a: w,
    b: x,
    aShift: 0,
    oShift: 0,
    maps,
  };
  const bias = b ? { t: b, channels: q.o, plane: p } : null;
  return gemmDispatches([part], q.g, out, bias, ctx, attrs.activation === 'relu');
};

/**
 * The kernel rows of one stride phase: the taps k in [0, K) that reach input positions r (mod stride),
 * i.e. k*dil = r + pad (mod stride): `count` of them, k = first + t * step; and the output position the
 * t-th tap reads for phase row i (input position i * stride + r) is i + base - t * shift.
 */
function phaseTaps(r: number, pad: number, dil: number, stride: number, k: number) {
  const taps: number[] = [];
  for (let t = 0; t < k; t++) if ((((t * dil - r - pad) % stride) + stride) % stride === 0) taps.push(t);
  const first = taps[0] ?? 0;
  const step = taps.length > 1 ? taps[1]! - first : 1;
  // both divisions are exact when the taps exist (each tap satisfies the congruence)
  const base = taps.length > 0 ? (r + pad - first * dil) / stride : 0;
  return { count: taps.length, first, step, base, shift: taps.length > 1 ? (step * dil) / stride : 0 };
}

/**
 * conv2dBackwardInput: gx (N, C, H, W) from gy (N, O, OH, OW) and w (O, C/groups, KH, KW). A stride
 * (sh, sw) splits gx into sh x sw phases (rows h = i*sh + rh, columns w = j*sw + rw), each a dense GEMM
 * over only the taps that reach it, so no work is spent on taps that fall between the strides.
 */
export const conv2dBackwardInput: WebGPUKernel<'conv2dBackwardInput'> = (inputs, out, attrs, ctx) => {
  const [gy, w] = inputs as [TensorSpec, TensorSpec];
  const q = geometry(out.shape, w.shape, gy.shape, attrs);
  const [[sh, sw], [ph, pw], [dh, dw]] = [attrs.stride, attrs.padding, attrs.dilation];
  const [hw, p, kk] = [q.h * q.w, q.oh * q.ow, q.kh * q.kw];
  const parts: GemmPart[] = [];
  for (let rh = 0; rh < Math.min(sh, q.h); rh++) {
    for (let rw = 0; rw < Math.min(sw, q.w); rw++) {
      const [th, tw] = [phaseTaps(rh, ph, dh, sh, q.kh), phaseTaps(rw, pw, dw, sw, q.kw)];
      const [hr, wr] = [Math.ceil((q.h - rh) / sh), Math.ceil((q.w - rw) / sw)];
      // A[c, (o, t, u)] = w[o, c, first + t*step, ...]; B[(o, t, u), (n, i, j)] = gy[n, o, i + base - t*shift, ...]
      const maps: Maps = {
        a: [q.og * q.cg * kk, kk, q.cg * kk, th.step * q.kw, tw.step],
        k: [Math.max(1, th.count), Math.max(1, tw.count), p, -th.shift, 0, -tw.shift, 0],
        j: [hr, wr, q.o * p, 1, th.base, 1, tw.base],
        b: [q.og * p, q.oh, q.ow],
        o: [q.cg * hw, hw, hr * wr, q.c * hw, wr, sh * q.w, sw],
      };
      parts.push({
        m: q.cg,
        n: q.n * hr * wr,
        k: q.og * th.count * tw.count,
        a: w,
        b: gy,
        aShift: th.first * q.kw + tw.first,
        oShift: rh * q.w + rw,
        maps,
      });
    }
  }
  return gemmDispatches(parts, q.g, out, null, ctx);
};

/** conv2dBackwardWeight: gw (O, C/groups, KH, KW) from x (N, C, H, W) and gy (N, O, OH, OW). */
export const conv2dBackwardWeight: WebGPUKernel<'conv2dBackwardWeight'> = (inputs, out, attrs, ctx) => {
  const [x, gy] = inputs as [TensorSpec, TensorSpec];
  const q = geometry(x.shape, out.shape, gy.shape, attrs);
  const [[sh, sw], [ph, pw], [dh, dw]] = [attrs.stride, attrs.padding, attrs.dilation];
  const [hw, p, kk] = [q.h * q.w, q.oh * q.ow, q.kh * q.kw];
  const cols = q.cg * kk;
  // A[o, (n, oh, ow)] = gy[n, o, oh, ow]; B[(n, oh, ow), (c, kh, kw)] = x[n, c, oh*sh - ph + kh*dh, ...]
  const maps: Maps = {
    a: [q.og * p, p, q.o * p, q.ow, 1],
    k: [q.oh, q.ow, q.c * hw, sh, -ph, sw, -pw],
    j: [q.kh, q.kw, hw, dh, 0, dw, 0],
    b: [q.cg * hw, q.h, q.w],
    o: [q.og * cols, cols, cols, 0, cols, 0, 1],
  };
  const part: GemmPart = {
    m: q.og,
    n: cols,
    k: q.n * p,
    a: gy,
    b: x,
    aShift: 0,
    oShift: 0,
    maps,
  };
  return gemmDispatches([part], q.g, out, null, ctx);
};

/** The conv entries of the kernel table. */
export const convKernels = { conv2d, conv2dBackwardInput, conv2dBackwardWeight };
