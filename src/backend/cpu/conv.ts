// The CPU conv2d kernels: forward and both gradients. Large float32 problems run as implicit GEMMs on the
// WebAssembly SIMD micro-kernel over the worker pool (convwasm.ts; depthwise ones as direct SIMD loops),
// 1x1 stride-1 convolutions of large planes as plain GEMMs; small ones, float16 and runtimes without WASM
// run the direct loops here (float64 accumulation).
import { f16DecodeTable, f32ToF16Bits } from '../../core/float16.js';
import type { AttrMap } from '../../ops/opcodes.js';
import type { Operand, TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { counters } from './counters.js';
import { gemm } from './gemm.js';
import { wasmConv, type ConvGeom } from './convwasm.js';
import { wasmGemm } from './wasmgemm.js';

/** Below this many multiply-adds the direct loops beat packing, staging and thread wake-ups. */
const FAST_MIN_MACS = 1 << 18;

/** Reads float elements of a contiguous float32 or float16 tensor as numbers. */
interface Reader {
  readonly arr: Float32Array | Uint16Array;
  readonly off: number;
  readonly f16: Float32Array | null;
}

function reader(t: TensorSpec): Reader {
  const f16 = t.dtype === 'float16';
  return {
    arr: f16 ? view(t.buffer, 'float16') : view(t.buffer, 'float32'),
    off: t.offset,
    f16: f16 ? f16DecodeTable() : null,
  };
}

/** Copies `n` values of a reader from element `at` into float64s. */
function load(r: Reader, at: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const { arr, f16 } = r;
  const o = r.off + at;
  if (f16) for (let i = 0; i < n; i++) out[i] = f16[arr[o + i]!]!;
  else for (let i = 0; i < n; i++) out[i] = arr[o + i]!;
  return out;
}

/** Stores float64 values into a contiguous float32 or float16 output at element `at`. */
function store(out: TensorSpec, at: number, v: Float64Array): void {
  if (out.dtype === 'float16') {
    const o = view(out.buffer, 'float16');
    for (let i = 0; i < v.length; i++) o[out.offset + at + i] = f32ToF16Bits(v[i]!);
  } else view(out.buffer, 'float32').set(v, out.offset + at);
}

/** Shapes and attributes of one conv2d call, from the forward operand shapes. */
export function geometry(x: readonly number[], w: readonly number[], a: AttrMap['conv2d']): ConvGeom {
  const [n, c, h, wd] = x as [number, number, number, number];
  const [o, cg, kh, kw] = w as [number, number, number, number];
  const oh = Math.floor((h + 2 * a.padding[0] - a.dilation[0] * (kh - 1) - 1) / a.stride[0]) + 1;
  const ow = Math.floor((wd + 2 * a.padding[1] - a.dilation[1] * (kw - 1) - 1) / a.stride[1]) + 1;
  return {
    n, c, h, w: wd, o, g: a.groups, cg, og: o / a.groups, kh, kw, oh, ow,
    sh: a.stride[0], sw: a.stride[1], ph: a.padding[0], pw: a.padding[1], dh: a.dilation[0], dw: a.dilation[1],
  }; // prettier-ignore
}

const macs = (g: ConvGeom): number => g.n * g.o * g.oh * g.ow * g.cg * g.kh * g.kw;
/**
 * 1x1, stride 1, unpadded, over planes of at least 256 positions: one GEMM per image beats the implicit
 * GEMM there (single thread, per CPU-second: 35 vs 28 GFLOP/s at 8x256x56x56 -> 64); on small planes
 * (7x7) the per-image GEMMs are too thin and the tiled implicit GEMM wins (27 vs 22 at 32x512x7x7 -> 2048).
 */
const isPointwise = (g: ConvGeom): boolean =>
  g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0 && g.oh * g.ow >= 256;
const allF32 = (ts: readonly TensorSpec[]): boolean => ts.every((t) => t.dtype === 'float32');

/** y = conv2d(x, w) + bias: inputs [x, w] or [x, w, bias], all contiguous. */
export function conv2d(inputs: readonly Operand[], out: TensorSpec, attrs: AttrMap['conv2d']): void {
  const [x, w, b] = inputs as [TensorSpec, TensorSpec, TensorSpec | undefined];
  const g = geometry(x.shape, w.shape, attrs);
  const relu = attrs.activation === 'relu';
  if (allF32([x, w, out, ...(b ? [b] : [])]) && macs(g) >= FAST_MIN_MACS) {
    if (isPointwise(g) && pointwiseForward(g, x, w, b, out, relu)) return;
    if (wasmConv('forward', g, [x, w, b ?? null], out, relu)) return;
  }
  directForward(g, reader(x), reader(w), b ? reader(b) : null, out, relu);
}

/** gx = conv2dBackwardInput(gy, w): the input gradient, (N, C, H, W). */
export function conv2dBackwardInput(
  inputs: readonly Operand[],
  out: TensorSpec,
  attrs: AttrMap['conv2dBackwardInput'],
): void {
  const [gy, w] = inputs as [TensorSpec, TensorSpec];
  const g = geometry(out.shape, w.shape, attrs);
  if (allF32([gy, w, out]) && macs(g) >= FAST_MIN_MACS && wasmConv('backwardInput', g, [gy, w], out)) return;
  directBackwardInput(g, reader(gy), reader(w), out);
}

/** gw = conv2dBackwardWeight(x, gy): the weight gradient, (O, C/groups, KH, KW). */
export function conv2dBackwardWeight(
  inputs: readonly Operand[],
  out: TensorSpec,
  attrs: AttrMap['conv2dBackwardWeight'],
): void {
  const [x, gy] = inputs as [TensorSpec, TensorSpec];
  const g = geometry(x.shape, out.shape, attrs);
  if (allF32([x, gy, out]) && macs(g) >= FAST_MIN_MACS && wasmConv('backwardWeight', g, [x, gy], out)) return;
  directBackwardWeight(g, reader(x), reader(gy), out);
}

/**
 * A 1x1 stride-1 unpadded convolution is, per image and group, the product W[g] (Og x Cg) @ X[n, g]
 * (Cg x H*W) written straight into Y[n, g] (Og x H*W): the matmul GEMM, bias and ReLU applied after in
 * one pass over the output.
 */
function pointwiseForward(
  g: ConvGeom,
  x: TensorSpec,
  w: TensorSpec,
  b: TensorSpec | undefined,
  out: TensorSpec,
  relu: boolean,
) {
  const X = view(x.buffer, 'float32');
  const W = view(w.buffer, 'float32');
  const Y = view(out.buffer, 'float32');
  const p = g.oh * g.ow;
  for (let n = 0; n < g.n; n++) {
    for (let gi = 0; gi < g.g; gi++) {
      const am = { arr: W, f16: false, off: w.offset + gi * g.og * g.cg, rs: g.cg, cs: 1 };
      const bm = { arr: X, f16: false, off: x.offset + (n * g.c + gi * g.cg) * p, rs: p, cs: 1 };
      const om = { arr: Y, dtype: 'float32' as const, off: out.offset + (n * g.o + gi * g.og) * p };
      if (!wasmGemm(g.og, p, g.cg, am, bm, om)) gemm(g.og, p, g.cg, am, bm, om);
    }
  }
  if (b || relu) {
    const B = b ? view(b.buffer, 'float32') : null;
    for (let n = 0; n < g.n; n++) {
      for (let o = 0; o < g.o; o++) {
        const bv = B ? B[b!.offset + o]! : 0;
        const base = out.offset + (n * g.o + o) * p;
        if (relu) for (let i = 0; i < p; i++) Y[base + i] = Math.max(Y[base + i]! + bv, 0);
        else for (let i = 0; i < p; i++) Y[base + i]! += bv;
      }
    }
  }
  counters.convGemm++;
  return true;
}

/** Direct loops: each output plane accumulates weight x shifted input rows in float64. */
function directForward(g: ConvGeom, x: Reader, w: Reader, b: Reader | null, out: TensorSpec, relu = false): void {
  const { h, w: wd, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, cg, og } = g;
  const plane = oh * ow;
  const acc = new Float64Array(plane);
  const wts = load(w, 0, g.o * cg * kh * kw);
  const bias = b ? load(b, 0, g.o) : null;
  for (let n = 0; n < g.n; n++) {
    for (let gi = 0; gi < g.g; gi++) {
      const xin = load(x, (n * g.c + gi * cg) * h * wd, cg * h * wd);
      for (let oo = 0; oo < og; oo++) {
        const o = gi * og + oo;
        acc.fill(bias ? bias[o]! : 0);
        for (let c = 0; c < cg; c++) {
          for (let i = 0; i < kh; i++) {
            for (let j = 0; j < kw; j++) {
              const wv = wts[((o * cg + c) * kh + i) * kw + j]!;
              for (let y = 0; y < oh; y++) {
                const iy = y * sh - ph + i * dh;
                if (iy < 0 || iy >= h) continue;
                const row = (c * h + iy) * wd;
                for (let xo = 0, ix = j * dw - pw, q = y * ow; xo < ow; xo++, ix += sw, q++) {
                  if (ix >= 0 && ix < wd) acc[q]! += wv * xin[row + ix]!;
                }
              }
            }
          }
        }
        if (relu) for (let q = 0; q < plane; q++) acc[q] = Math.max(acc[q]!, 0);
        store(out, (n * g.o + o) * plane, acc);
      }
    }
  }
  counters.convDirect++;
}

/** Direct loops: each output-gradient plane scatters weight x gy into the input gradient (float64). */
function directBackwardInput(g: ConvGeom, gy: Reader, w: Reader, out: TensorSpec): void {
  const { h, w: wd, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, cg, og } = g;
  const plane = oh * ow;
  const acc = new Float64Array(cg * h * wd);
  const wts = load(w, 0, g.o * cg * kh * kw);
  for (let n = 0; n < g.n; n++) {
    for (let gi = 0; gi < g.g; gi++) {
      acc.fill(0);
      for (let oo = 0; oo < og; oo++) {
        const o = gi * og + oo;
        const gyp = load(gy, (n * g.o + o) * plane, plane);
        for (let c = 0; c < cg; c++) {
          for (let i = 0; i < kh; i++) {
            for (let j = 0; j < kw; j++) {
              const wv = wts[((o * cg + c) * kh + i) * kw + j]!;
              for (let y = 0; y < oh; y++) {
                const iy = y * sh - ph + i * dh;
                if (iy < 0 || iy >= h) continue;
                const row = (c * h + iy) * wd;
                for (let xo = 0, ix = j * dw - pw, q = y * ow; xo < ow; xo++, ix += sw, q++) {
                  if (ix >= 0 && ix < wd) acc[row + ix]! += wv * gyp[q]!;
                }
              }
            }
          }
        }
      }
      store(out, (n * g.c + gi * cg) * h * wd, acc);
    }
  }
  counters.convDirect++;
}

/** Direct loops: each weight element is a dot product of gy and a shifted input window (float64). */
function directBackwardWeight(g: ConvGeom, x: Reader, gy: Reader, out: TensorSpec): void {
  const { h, w: wd, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, cg, og } = g;
  const plane = oh * ow;
  const acc = new Float64Array(g.o * cg * kh * kw);
  for (let n = 0; n < g.n; n++) {
    for (let gi = 0; gi < g.g; gi++) {
      const xin = load(x, (n * g.c + gi * cg) * h * wd, cg * h * wd);
      for (let oo = 0; oo < og; oo++) {
        const o = gi * og + oo;
        const gyp = load(gy, (n * g.o + o) * plane, plane);
        for (let c = 0; c < cg; c++) {
          for (let i = 0; i < kh; i++) {
            for (let j = 0; j < kw; j++) {
              let s = 0;
              for (let y = 0; y < oh; y++) {
                const iy = y * sh - ph + i * dh;
                if (iy < 0 || iy >= h) continue;
                const row = (c * h + iy) * wd;
                for (let xo = 0, ix = j * dw - pw, q = y * ow; xo < ow; xo++, ix += sw, q++) {
                  if (ix >= 0 && ix < wd) s += gyp[q]! * xin[row + ix]!;
                }
              }
              acc[((o * cg + c) * kh + i) * kw + j]! += s;
            }
          }
        }
      }
    }
  }
  store(out, 0, acc);
  counters.convDirect++;
}
