// softmax and logSoftmax along one axis for WebGPU, numerically stable: a workgroup of WX rows x WY
// threads reads each row twice: once for the running (max, sum of exp(x - max)) pairs, combined by a
// tree in workgroup memory, once to write. Rows along a non-last axis are read through strides.
// The causal mask (softmax over the last axis of (..., Tq, Tk)) limits each row to its valid prefix from
// two uniforms (Tq, offset), so every offset and shape shares the one pipeline of the plain softmax.
import { contiguousStrides, numel } from '../../../core/shape.js';
import type { DType } from '../../../core/dtype.js';
import type { TensorSpec } from '../../backend.js';
import type { WebGPUKernel, WgslProgram } from '../kernel.js';
import {
  cachedProgram,
  HELPERS_WGSL,
  UniformWords,
  coalesce,
  enables,
  grid,
  load,
  storageDecl,
  store,
  stridedOffsets,
  uI32,
  uU32,
  uniformDecl,
} from './codegen.js';

// Uniform word slots: rows, row length, row groups, element strides along the axis, offsets, the causal
// Tq and offset (i32; Tq = 1, offset = n without a mask), then the (coalesced) row dims' shape and x / out
// strides from S_DIMS.
// prettier-ignore
const S_ROWS = 0, S_N = 1, S_GROUPS = 2, S_SX = 3, S_SO = 4, S_X_OFF = 5, S_O_OFF = 6, S_TQ = 7, S_CAUSAL = 8;
const S_DIMS = 9;

/** Everything the program source depends on. */
interface SoftmaxSpec {
  readonly log: boolean;
  readonly xd: DType;
  readonly od: DType;
  /** Rank of the coalesced row index space. */
  readonly rank: number;
  readonly wx: number;
  readonly wy: number;
}

/**
 * The WGSL. Per thread, (m, s) is the running max and sum of exp(x - m); -inf elements add nothing,
 * NaN sticks in m. The final pair matches the CPU backend's exact max and sum whenever the max is
 * finite; a row whose max is NaN or +-inf gives NaN everywhere, as the CPU backend does.
 */
function softmaxSource(s: SoftmaxSpec): string {
  const wg = s.wx * s.wy;
  const dims = stridedOffsets('row', s.rank, S_DIMS, [
    { name: 'xb', stridesSlot: S_DIMS + s.rank, offsetSlot: S_X_OFF },
    { name: 'ob', stridesSlot: S_DIMS + 2 * s.rank, offsetSlot: S_O_OFF },
  ]).replace(/\n/g, '\n  ');
  const steps: string[] = [];
  for (let h = s.wy / 2; h >= 1; h /= 2) {
    steps.push(`if (ly < ${h}u) { sp[lid] = comb(sp[lid], sp[lid + ${h * s.wx}u]); }\n  workgroupBarrier();`);
  }
  // logSoftmax is (v - m) - log(s), not v - (m + log(s)): in f32, m + log(s) rounds log(s) away when
  // |m| is large (at m = 3e4 the spacing is 2^-9, so the max element's -log(s) ~ -6e-5 became 0)
  const out = s.log ? '(v - m) - ls' : 'select(exp(v - m) * inv, 0.0, v == ninf)';
  const masked = s.log ? 'ninf' : '0.0';
  return `${enables([s.xd, s.od])}${HELPERS_WGSL}
${storageDecl(0, 'X', s.xd, true)}${storageDecl(1, 'O', s.od, false)}${uniformDecl(2, S_DIMS + 3 * s.rank)}
var<workgroup> sp: array<vec2<f32>, ${wg}>;

// bitcast through a function argument so that infinities are runtime values (const-eval rejects them)
fn bits(b: u32) -> f32 { return bitcast<f32>(b); }

/** Combines two (max, sum of exp(x - max)) pairs. */
fn comb(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  if (tl_isnan(a.x)) { return a; }
  if (tl_isnan(b.x)) { return b; }
  let m = max(a.x, b.x);
  if (m == bits(0xff800000u)) { return vec2<f32>(m, 0.0); }
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= ${uU32(S_GROUPS)}) { return; }
  let row = g * ${s.wx}u + lid % ${s.wx}u;
  let ly = lid / ${s.wx}u;
  let live = row < ${uU32(S_ROWS)};
  let n = ${uU32(S_N)};
  // the causal valid prefix: rows are numbered row-major, so row % Tq is the query index
  let lim = u32(clamp(i32(row % ${uU32(S_TQ)}) + ${uI32(S_CAUSAL)} + 1, 0, i32(n)));
  let sx = ${uU32(S_SX)};
  let ninf = bits(0xff800000u);
  ${dims}
  var m = ninf;
  var s = 0.0;
  if (live) {
    for (var j = ly; j < lim; j = j + ${s.wy}u) {
      let v = ${load('X', 'xb + j * sx', s.xd, 'float32')};
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
  sp[lid] = vec2<f32>(m, s);
  workgroupBarrier();
  ${steps.join('\n  ')}
  let r = sp[lid % ${s.wx}u];
  m = r.x;
  s = r.y;
  if (!live) { return; }
  // NaN or +-inf max (an all-masked row included): the whole row is NaN; else masked keys are 0 (log: -inf)
  let bad = (bitcast<u32>(m) & 0x7fffffffu) >= 0x7f800000u;
  let inv = 1.0 / s;
  let ls = log(s);
  let so = ${uU32(S_SO)};
  for (var j = ly; j < n; j = j + ${s.wy}u) {
    var y = ${masked}; // masked keys are not read
    if (j < lim) {
      let v = ${load('X', 'xb + j * sx', s.xd, 'float32')};
      y = ${out};
    }
    y = select(y, bits(0x7fc00000u), bad);
    ${store('O', 'ob + j * so', s.od, 'y')}
  }
}
`;
}

function program(s: SoftmaxSpec): WgslProgram {
  const key = `${s.log ? 'logSoftmax' : 'softmax'}_${s.xd}_${s.od}_r${s.rank}_${s.wx}x${s.wy}`;
  return cachedProgram(key, () => softmaxSource(s));
}

const nextPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

function softmaxKernel(log: boolean): WebGPUKernel<'softmax' | 'logSoftmax'> {
  return (inputs, out, attrs, ctx) => {
    const x = inputs[0] as TensorSpec;
    if (numel(out.shape) === 0) return [];
    const axis = attrs.axis;
    const n = x.shape[axis] ?? 1;
    const os = contiguousStrides(out.shape);
    const rest = (a: readonly number[]): number[] => a.filter((_, d) => d !== axis);
    const lay = coalesce(rest(x.shape), [rest(x.strides), rest(os)]);
    const rows = numel(lay.shape);
    const rank = lay.shape.length;
    // WY threads per row (each gets ~4+ elements), the rest of a <= 256-thread workgroup takes more rows.
    const threads = 2 ** Math.floor(Math.log2(Math.min(256, ctx.limits.maxComputeInvocationsPerWorkgroup)));
    const wy = Math.min(threads, nextPow2(Math.ceil(n / 4)));
    const wx = Math.max(1, Math.min(threads / wy, nextPow2(rows)));
    const groups = Math.ceil(rows / wx);
    const u = new UniformWords(S_DIMS + 3 * rank);
    u.u32Array(S_ROWS, [rows, n, groups, x.strides[axis] ?? 0, os[axis] ?? 1, x.offset, out.offset]);
    const causal = log ? null : ((attrs as { causal?: number | null }).causal ?? null);
    const tq = causal === null ? 1 : Math.max(1, x.shape[x.shape.length - 2] ?? 1);
    // clamped so that i + offset + 1 stays in i32 and keeps its meaning (<= 0: no key, >= n: every key)
    u.u32(S_TQ, tq).i32s(S_CAUSAL, causal === null ? n : Math.min(n, Math.max(-tq, causal)));
    u.u32Array(S_DIMS, [...lay.shape, ...lay.strides[0]!, ...lay.strides[1]!]);
    return [
      {
        program: program({ log, xd: x.dtype, od: out.dtype, rank, wx, wy }),
        buffers: [
          { buffer: x.buffer, readOnly: true },
          { buffer: out.buffer, readOnly: false },
        ],
        uniforms: u.words,
        workgroups: grid(groups, ctx.limits.maxComputeWorkgroupsPerDimension),
      },
    ];
  };
}

/** softmax along attrs.axis (float32 / float16; computed in f32). */
export const softmax: WebGPUKernel<'softmax'> = softmaxKernel(false);
/** logSoftmax along attrs.axis: x - max - log(sum exp(x - max)). */
export const logSoftmax: WebGPUKernel<'logSoftmax'> = softmaxKernel(true);

/** The softmax entries of the kernel table. */
export const softmaxKernels = { softmax, logSoftmax };
