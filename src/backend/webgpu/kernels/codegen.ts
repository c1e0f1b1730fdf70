// Shared WGSL building blocks for the WebGPU kernels: compute types and dtype conversions with the CPU
// backend's semantics, storage/uniform declarations, uniform packing, strided index math, dispatch
// grids, dim coalescing, and Threefry-2x32 (line for line core/random.ts). The API is stable: kernels import it.
import { coalesce, type Layout } from '../../../core/shape.js';
import type { DType } from '../../../core/dtype.js';
import { wgslType, type WgslProgram } from '../kernel.js';

/** Default 1-D workgroup size of elementwise-style kernels (within every adapter's default limits). */
export const WORKGROUP_SIZE = 256;

/** The WGSL scalar type arithmetic on dtype `d` uses: f32 for float32 and float16, i32, u32, and u32 (0/1) for bool. */
export function computeType(d: DType): 'f32' | 'i32' | 'u32' {
  return d === 'float32' || d === 'float16' ? 'f32' : d === 'int32' ? 'i32' : 'u32';
}

/** `enable f16;` when any of `dtypes` is float16 (must open the module), else ''. */
export function enables(dtypes: readonly DType[]): string {
  return dtypes.includes('float16') ? 'enable f16;\n' : '';
}

/**
 * Declares storage binding `binding` named `name` as `array<T>` of the dtype's storage type (f16, f32,
 * i32, u32; bool as u32 words), or `array<vec4<T>>` with `vec4` (4-byte dtypes only).
 */
export function storageDecl(binding: number, name: string, dtype: DType, readOnly: boolean, vec4 = false): string {
  const t = vec4 ? `vec4<${wgslType(dtype)}>` : wgslType(dtype);
  return `@group(0) @binding(${binding}) var<storage, ${readOnly ? 'read' : 'read_write'}> ${name}: array<${t}>;\n`;
}

/**
 * Converts expression `e`, of compute type of `from`, to the compute type of `to` with the CPU
 * backend's rules: to bool is `x != 0` (NaN is truthy), int32 <-> uint32 wrap (bitcast), float to
 * integer is JS's ToInt32/ToUint32 (truncate, wrap modulo 2^32; NaN and +-Inf give 0). Float16
 * computes as f32, so float32 <-> float16 is the identity here and the rounding happens in `store`.
 */
export function convert(e: string, from: DType, to: DType): string {
  const f = computeType(from);
  if (to === 'bool') {
    if (from === 'bool') return e;
    // floats by bits: nonzero and NaN are true, +-0 false (immune to drivers without NaN semantics)
    return f === 'f32'
      ? `select(0u, 1u, (bitcast<u32>(${e}) & 0x7fffffffu) != 0u)`
      : `select(0u, 1u, (${e}) != 0${f === 'i32' ? 'i' : 'u'})`;
  }
  const t = computeType(to);
  if (f === t) return e;
  if (t === 'f32') return `f32(${e})`;
  if (f === 'f32') return t === 'i32' ? `tl_f2i(${e})` : `tl_f2u(${e})`;
  return `bitcast<${t}>(${e})`; // i32 <-> u32 (bool's 0/1 words convert the same way)
}

/** WGSL expression loading `name[idx]` (dtype `d`) as the compute type of `as` (default: `d`). */
export function load(name: string, idx: string, d: DType, as: DType = d): string {
  const raw = d === 'float16' ? `f32(${name}[${idx}])` : `${name}[${idx}]`;
  return convert(raw, d, as);
}

/** WGSL statement storing `value` (compute type of `d`) into `name[idx]`; float16 rounds f32 -> f16 here. */
export function store(name: string, idx: string, d: DType, value: string): string {
  return `${name}[${idx}] = ${d === 'float16' ? `f16(${value})` : value};`;
}

/**
 * Helper functions every generated module may call (include once): tl_isnan (by bits, immune to
 * fast-math), tl_f2i / tl_f2u (float -> integer conversions documented at `convert`, via tl_f2bits:
 * JS ToUint32 of an f32, i.e. truncation then wraparound modulo 2^32, NaN and +-Inf giving 0).
 */
export const HELPERS_WGSL = `
fn tl_isnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn tl_f2bits(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  let e = i32((bits >> 23u) & 0xffu) - 127i;
  if (e == 128i) { return 0u; }
  if (e < 31i) { return bitcast<u32>(i32(x)); }
  let sh = u32(e - 23i);
  var u = 0u;
  if (sh < 32u) { u = ((bits & 0x7fffffu) | 0x800000u) << sh; }
  return select(u, 0u - u, (bits >> 31u) == 1u);
}
fn tl_f2i(x: f32) -> i32 { return bitcast<i32>(tl_f2bits(x)); }
fn tl_f2u(x: f32) -> u32 { return tl_f2bits(x); }
`;

/**
 * Declares the device-side check buffer (KernelContext.checks.buffer) at `binding` and two ways to
 * record a failed check: `fn tl_fail(code: u32, value: i32)` and `fn tl_fail_at(code: u32, value: u32,
 * position: u32)` (the value as raw bits, and where it was found: see CheckFormat in checks.ts). The
 * first failure since the last readback wins, so the error names the first op that failed, with a
 * value and position from the same invocation.
 */
export function checkDecl(binding: number): string {
  return `@group(0) @binding(${binding}) var<storage, read_write> tl_checks: array<atomic<u32>>;
fn tl_fail_at(code: u32, value: u32, position: u32) {
  loop {
    let r = atomicCompareExchangeWeak(&tl_checks[0], 0u, code);
    if (r.exchanged) {
      atomicStore(&tl_checks[1], value);
      atomicStore(&tl_checks[2], position);
      return;
    }
    if (r.old_value != 0u) { return; }
  }
}
fn tl_fail(code: u32, value: i32) { tl_fail_at(code, bitcast<u32>(value), 0u); }
`;
}

// ---- uniforms ------------------------------------------------------------------------------------

const LANES = ['x', 'y', 'z', 'w'] as const;

/**
 * Declares the uniform block at `binding` with `words` u32 words, as `U.w: array<vec4<u32>, ceil(words/4)>`
 * (uniform arrays need 16-byte elements). Read fields with `uU32` / `uI32` / `uF32`.
 */
export function uniformDecl(binding: number, words: number): string {
  const n = Math.max(1, Math.ceil(words / 4));
  return `struct Uniforms { w: array<vec4<u32>, ${n}> }\n@group(0) @binding(${binding}) var<uniform> U: Uniforms;\n`;
}

/** WGSL expression of uniform word `slot` as u32. */
export function uU32(slot: number): string {
  return `U.w[${slot >> 2}].${LANES[slot & 3]!}`;
}

/** WGSL expression of uniform word `slot` as i32 (bitcast). */
export function uI32(slot: number): string {
  return `bitcast<i32>(${uU32(slot)})`;
}

/** WGSL expression of uniform word `slot` as f32 (bitcast). */
export function uF32(slot: number): string {
  return `bitcast<f32>(${uU32(slot)})`;
}

/** Packs uniform words on the host: u32 / i32 / f32 values at word slots (length padded to a multiple of 4). */
export class UniformWords {
  /** The packed words (the `Dispatch.uniforms` payload). */
  readonly words: Uint32Array;
  private readonly f32: Float32Array;
  private readonly i32: Int32Array;

  constructor(count: number) {
    this.words = new Uint32Array(Math.max(4, Math.ceil(count / 4) * 4));
    this.f32 = new Float32Array(this.words.buffer);
    this.i32 = new Int32Array(this.words.buffer);
  }

  /** Sets word `slot` to `v` as u32 (wraps like ToUint32). */
  u32(slot: number, v: number): this {
    this.words[slot] = v >>> 0;
    return this;
  }

  /** Sets word `slot` to `v` as i32 (wraps like ToInt32). */
  i32s(slot: number, v: number): this {
    this.i32[slot] = v;
    return this;
  }

  /** Sets word `slot` to `v` rounded to f32. */
  f32s(slot: number, v: number): this {
    this.f32[slot] = v;
    return this;
  }

  /** Sets consecutive words from `slot` to the u32 values `vs` (negative strides wrap to their i32 bits). */
  u32Array(slot: number, vs: readonly number[]): this {
    for (let i = 0; i < vs.length; i++) this.words[slot + i] = vs[i]! >>> 0;
    return this;
  }
}

// ---- strided indexing ------------------------------------------------------------------------------

/** One operand of `stridedOffsets`: the WGSL variable to define, and where its strides/offset live in the uniforms. */
export interface StridedOperand {
  /** Name of the WGSL `var` (u32 element index) that the emitted code defines. */
  readonly name: string;
  /** First uniform slot of the operand's `rank` strides (i32 bit patterns; u32 arithmetic wraps correctly). */
  readonly stridesSlot: number;
  /** Uniform slot of the operand's element offset. */
  readonly offsetSlot: number;
}

/**
 * WGSL statements that split the linear (row-major) index `lin` over the shape held in uniform slots
 * `shapeSlot .. shapeSlot+rank-1` and define, for each operand, `var <name>: u32` = its element index
 * (offset + sum of coordinate * stride). `tmp` names a scratch variable (unique in the function).
 * Coordinates are computed once and shared by all operands; rank 0 gives just the offsets.
 */
export function stridedOffsets(
  lin: string,
  rank: number,
  shapeSlot: number,
  ops: readonly StridedOperand[],
  tmp = 'tl_r',
): string {
  let s = `var ${tmp}: u32 = ${lin};\n`;
  for (const o of ops) s += `var ${o.name}: u32 = ${uU32(o.offsetSlot)};\n`;
  for (let d = rank - 1; d >= 0; d--) {
    const c = `${tmp}_c${d}`;
    if (d > 0) {
      s += `let ${c} = ${tmp} % ${uU32(shapeSlot + d)};\n${tmp} = ${tmp} / ${uU32(shapeSlot + d)};\n`;
    } else {
      s += `let ${c} = ${tmp};\n`;
    }
    for (const o of ops) s += `${o.name} += ${c} * ${uU32(o.stridesSlot + d)};\n`;
  }
  return s;
}

/** A layout after `coalesce`: one shape and, per operand, strides over it. */
const programs = new Map<string, WgslProgram>();

/**
 * The program for `key`, created once: every kernel file shares this cache, so the same key always
 * yields the same object (and `code` runs only on a pipeline-cache miss in the runtime).
 */
export function cachedProgram(key: string, code: () => string): WgslProgram {
  let p = programs.get(key);
  if (!p) {
    p = { key, code };
    programs.set(key, p);
  }
  return p;
}

/** The multi-operand layout helpers live in core (the CPU backend uses them too). */
export { coalesce, type Layout };

// ---- dispatch grid ---------------------------------------------------------------------------------

/**
 * Workgroup counts for `groups` 1-D workgroups when one dimension holds at most `maxPerDim`
 * (65535 by default): a 2-D grid (x, y, 1) with x * y >= groups. Pair it with `linearId`.
 */
export function grid(groups: number, maxPerDim = 65535): [number, number, number] {
  if (groups <= maxPerDim) return [Math.max(groups, 0), 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * A compute entry point `main` with workgroup size `wg` whose body sees `let gi: u32`, the linear
 * invocation index over a `grid()` dispatch (the body must bounds-check `gi`).
 */
export function entry1d(wg: number, body: string): string {
  return (
    `@compute @workgroup_size(${wg})\n` +
    `fn main(@builtin(global_invocation_id) tl_gid: vec3<u32>, @builtin(num_workgroups) tl_nwg: vec3<u32>) {\n` +
    `let gi: u32 = tl_gid.x + tl_gid.y * tl_nwg.x * ${wg}u;\n${body}\n}\n`
  );
}

// ---- random numbers --------------------------------------------------------------------------------

/**
 * Threefry-2x32-20 and the uniform/normal maps of core/random.ts in WGSL: `tl_threefry(k0, k1, c0, c1)
 * -> vec2<u32>` (bit-exact), `tl_unit(u) -> f32` ((u >> 8) * 2^-24, exact), `tl_normal(a, b) -> f32`
 * (Box-Muller with u1 = 1 - unit(a), u2 = unit(b); f32 log/cos/sqrt, so within a few ulps of the CPU).
 */
export const THREEFRY_WGSL = `
fn tl_rotl(x: u32, s: u32) -> u32 { return (x << s) | (x >> (32u - s)); }
fn tl_threefry(k0: u32, k1: u32, c0: u32, c1: u32) -> vec2<u32> {
  let ks = array<u32, 3>(k0, k1, 0x1bd11bdau ^ k0 ^ k1);
  let rot = array<u32, 8>(13u, 15u, 26u, 6u, 17u, 29u, 16u, 24u);
  var x0 = c0 + ks[0];
  var x1 = c1 + ks[1];
  for (var r = 0u; r < 20u; r++) {
    x0 = x0 + x1;
    x1 = tl_rotl(x1, rot[r % 8u]);
    x1 = x1 ^ x0;
    if (r % 4u == 3u) {
      let j = (r + 1u) / 4u;
      x0 = x0 + ks[j % 3u];
      x1 = x1 + ks[(j + 1u) % 3u] + j;
    }
  }
  return vec2<u32>(x0, x1);
}
fn tl_unit(u: u32) -> f32 { return f32(u >> 8u) * 5.9604644775390625e-8; }
fn tl_normal(a: u32, b: u32) -> f32 {
  let u1 = 1.0 - tl_unit(a);
  let u2 = tl_unit(b);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
`;
