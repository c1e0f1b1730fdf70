// Kernels that create values into a contiguous output: fill, arange and the counter-based random fills
// (randUniform, randNormal), which reproduce core/random.ts's Threefry stream element for element.
import { f16BitsToF32, f32ToF16Bits } from '../../../core/float16.js';
import type { DType } from '../../../core/dtype.js';
import { numel } from '../../../core/shape.js';
import type { TensorSpec } from '../../backend.js';
import type { Dispatch, KernelContext, WebGPUKernel } from '../kernel.js';
import {
  HELPERS_WGSL, THREEFRY_WGSL, UniformWords, WORKGROUP_SIZE, convert, enables, entry1d, grid, storageDecl, store, uF32,
  uI32, uU32, uniformDecl,
} from './codegen.js'; // prettier-ignore
import { uniformAs } from './elementwise.js';
import { AFFINE_WORDS, affineExact, packAffine } from './exactaffine.js';

/** What `generate` writes: WGSL `value` (of `dtype`'s compute type) after statements `pre`, with `lib` functions. */
interface Gen {
  readonly dtype: DType;
  readonly value: string;
  readonly pre?: string;
  readonly lib?: string;
}

/**
 * One dispatch writing out[off + i] = value(i) for i < n; `g.value` is WGSL over `gi` (u32) and the
 * uniform words from slot 2 on (slot 0 is n, slot 1 the output offset).
 */
function generate(
  name: string,
  keyExtra: string,
  out: TensorSpec,
  ctx: KernelContext,
  u: UniformWords,
  g: Gen,
): Dispatch[] {
  const n = numel(out.shape);
  if (n === 0) return [];
  u.u32(0, n).u32(1, out.offset);
  const key = `gen.${name}|${out.dtype}|${keyExtra}`;
  const words = u.words.length;
  const body = `if (gi >= ${uU32(0)}) { return; }\n${g.pre ?? ''}${store('B0', `${uU32(1)} + gi`, out.dtype, convert(g.value, g.dtype, out.dtype))}`;
  const code = (): string =>
    enables([out.dtype]) +
    HELPERS_WGSL +
    (g.lib ?? '') +
    storageDecl(0, 'B0', out.dtype, false) +
    uniformDecl(1, words) +
    entry1d(WORKGROUP_SIZE, body);
  const groups = Math.ceil(n / WORKGROUP_SIZE);
  return [
    {
      program: { key, code },
      buffers: [{ buffer: out.buffer, readOnly: false }],
      uniforms: u.words,
      workgroups: grid(groups, ctx.limits.maxComputeWorkgroupsPerDimension),
    },
  ];
}

/** fill: every element = value, converted to out's dtype as the CPU stores it (float16 rounded once, ints wrapped). */
export const fill: WebGPUKernel<'fill'> = (_inputs, out, a, ctx) => {
  const u = new UniformWords(3);
  const v = a.value;
  switch (out.dtype) {
    case 'float32':
      u.f32s(2, v);
      break;
    case 'float16':
      u.f32s(2, f16BitsToF32(f32ToF16Bits(v)));
      break;
    case 'int32':
      u.i32s(2, v | 0);
      break;
    case 'uint32':
      u.u32(2, v >>> 0);
      break;
    case 'bool':
      u.u32(2, v !== 0 ? 1 : 0);
      break;
  }
  return generate('fill', '', out, ctx, u, { dtype: out.dtype, value: uniformAs(2, out.dtype) });
};

/**
 * arange: out[i] = start + i * step. Integer start/step with every value inside +-2^24 are computed
 * exactly in i32 (as the CPU does in doubles); otherwise in f32 (within an ulp or so of the CPU).
 */
export const arange: WebGPUKernel<'arange'> = (_inputs, out, a, ctx) => {
  const n = numel(out.shape);
  const last = a.start + (n - 1) * a.step;
  const exact =
    Number.isInteger(a.start) && Number.isInteger(a.step) && Math.max(Math.abs(a.start), Math.abs(last)) <= 2 ** 24;
  const u = new UniformWords(4);
  if (exact) {
    u.i32s(2, a.start).i32s(3, a.step);
    return generate('arange', 'i', out, ctx, u, { dtype: 'int32', value: `${uI32(2)} + i32(gi) * ${uI32(3)}` });
  }
  u.f32s(2, a.start).f32s(3, a.step);
  return generate('arange', 'f', out, ctx, u, { dtype: 'float32', value: `${uF32(2)} + f32(gi) * ${uF32(3)}` });
};

/** Uniform slots 2..4 hold the Threefry key and counter; element i draws threefry(key, (i, counter)). */
const DRAW = `let w = tl_threefry(${uU32(2)}, ${uU32(3)}, gi, ${uU32(4)});\n`;

/** The largest float32 (or float16) value strictly below x, as a number (x finite or +Inf). */
export function largestBelow(x: number, dtype: 'float32' | 'float16'): number {
  if (dtype === 'float16') {
    let h = f32ToF16Bits(x);
    while (f16BitsToF32(h) >= x) h = (h & 0x7fff) === 0 ? 0x8001 : h & 0x8000 ? h + 1 : h - 1;
    return f16BitsToF32(h);
  }
  const f = new Float32Array([x]);
  const i = new Int32Array(f.buffer);
  while (f[0]! >= x) i[0] = (i[0]! & 0x7fffffff) === 0 ? 0x80000001 | 0 : i[0]! < 0 ? i[0]! + 1 : i[0]! - 1;
  return f[0]!;
}

/**
 * randUniform: low + (high - low) * unit(w0), bit-exact with the CPU for float32 and float16 outputs
 * (except float32 subnormal results on devices that flush denormals): the affine map reproduces the
 * CPU's double arithmetic (exactaffine.ts), and a value that would round up to `high` is stored as the
 * largest value below it, as on the CPU. Integer outputs (and non-finite bounds) use plain f32 math.
 */
export const randUniform: WebGPUKernel<'randUniform'> = (_inputs, out, a, ctx) => {
  const span = a.high - a.low;
  const u = new UniformWords(6 + AFFINE_WORDS).u32(2, a.key0).u32(3, a.key1).u32(4, a.counter);
  const d = out.dtype;
  const float = d === 'float32' || d === 'float16';
  u.f32s(5, float && span > 0 ? largestBelow(a.high, d) : Infinity);
  const clamp = (v: string): string => `tl_below(${v})`;
  const below = `fn tl_below(v: f32) -> f32 { return select(v, ${uF32(5)}, v > ${uF32(5)}); }\n`;
  if (float && Number.isFinite(span) && Number.isFinite(a.low)) {
    packAffine(u, 6, span, a.low);
    const lib = THREEFRY_WGSL + below + (d === 'float32' ? affineExact(6, 24, -149) : affineExact(6, 11, -24));
    return generate('randUniform', 'exact', out, ctx, u, {
      dtype: 'float32',
      value: clamp('tl_affine(w.x >> 8u)'),
      pre: DRAW,
      lib,
    });
  }
  u.f32s(6, a.low).f32s(7, span);
  const value = clamp(`${uF32(6)} + ${uF32(7)} * tl_unit(w.x)`);
  return generate('randUniform', 'f32', out, ctx, u, {
    dtype: 'float32',
    value,
    pre: DRAW,
    lib: THREEFRY_WGSL + below,
  });
};

/** randNormal: mean + std * Box-Muller(w0, w1), in f32 (log/cos/sqrt: within a few ulps of the CPU). */
export const randNormal: WebGPUKernel<'randNormal'> = (_inputs, out, a, ctx) => {
  const u = new UniformWords(7).u32(2, a.key0).u32(3, a.key1).u32(4, a.counter).f32s(5, a.mean).f32s(6, a.std);
  const value = `${uF32(5)} + ${uF32(6)} * tl_normal(w.x, w.y)`;
  return generate('randNormal', '', out, ctx, u, { dtype: 'float32', value, pre: DRAW, lib: THREEFRY_WGSL });
};
