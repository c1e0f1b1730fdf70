// Reductions for WebGPU (sum, max, min, argmax, argmin over a set of axes): the input is seen as
// (kept index space) x (reduced index space) through uniform strides; a workgroup of WX x WY threads
// reduces WX outputs, WY threads each, with a tree in workgroup memory; huge reductions into few
// outputs are split into chunks (pass 1 writes partials to scratch, pass 2 reduces them).
import { numel } from '../../../core/shape.js';
import type { DType } from '../../../core/dtype.js';
import type { ReduceOp } from '../../../ops/opcodes.js';
import type { TensorSpec } from '../../backend.js';
import type { Dispatch, KernelContext, WebGPUKernel, WgslProgram } from '../kernel.js';
import {
  cachedProgram,
  HELPERS_WGSL,
  UniformWords,
  coalesce,
  computeType,
  enables,
  grid,
  load,
  storageDecl,
  store,
  stridedOffsets,
  uU32,
  uniformDecl,
} from './codegen.js';

/** Outputs x chunks below which a reduction is split into chunks to occupy the whole GPU. */
const TARGET_GROUPS = 512;
/** Most chunks one output is split into (pass 2 then reduces at most this many partials per output). */
const MAX_CHUNKS = 1024;
/** A reduction is worth splitting only if each thread would otherwise loop more than this many times. */
const MIN_SPLIT_ITERS = 64;

// Uniform word slots; the kept dims' shape/strides and then the reduced dims' follow from S_DIMS.
// prettier-ignore
const S_NOUT = 0, S_R = 1, S_CHUNK = 2, S_GROUPS_OUT = 3, S_X_OFF = 4, S_O_OFF = 5, S_PIDX = 6, S_NCHUNKS = 7, S_ZERO = 8;
const S_DIMS = 9;

/** Where a program reads from and writes to: the tensors, or the (value, index) partials in scratch. */
type Stage = 'direct' | 'partial-out' | 'partial-in';

/** Everything a reduction program's source depends on; sizes enter only through the power-of-two workgroup shape. */
interface ReduceSpec {
  readonly op: ReduceOp;
  /** Storage dtype of the input (ignored for 'partial-in', which reads u32 words). */
  readonly xd: DType;
  /** Dtype whose compute type accumulates (the output's for sum, the input's otherwise). */
  readonly ad: DType;
  /** Storage dtype of the output (ignored for 'partial-out'). */
  readonly od: DType;
  readonly stage: Stage;
  readonly rk: number;
  readonly rr: number;
  readonly wx: number;
  readonly wy: number;
}

/** f32 from bits through a function argument: a runtime value, so infinities are allowed (const-eval rejects them). */
const BITS_WGSL = 'fn bits(b: u32) -> f32 { return bitcast<f32>(b); }\n';

const isArg = (op: ReduceOp): boolean => op === 'argmax' || op === 'argmin';

/** The identity of `op` in compute type `t` (the value an empty thread starts from). */
function identity(op: ReduceOp, t: 'f32' | 'i32' | 'u32'): string {
  if (op === 'sum') return `${t}(0)`;
  const max = op === 'max' || op === 'argmax'; // a max starts from the lowest value
  if (t === 'f32') return `bits(${max ? '0xff800000u' : '0x7f800000u'})`;
  if (t === 'i32') return `bitcast<i32>(${max ? '0x80000000u' : '0x7fffffffu'})`;
  return max ? '0u' : '0xffffffffu';
}

/**
 * WGSL combine helpers. sum/max/min: `comb(a, b) -> T` (max/min propagate NaN). arg ops:
 * `better(va, ia, vb, ib)` is true when (vb, ib) should replace (va, ia): a NaN beats every number,
 * a larger (smaller) value wins, and ties (NaN vs NaN included) go to the smaller index (the first).
 */
function combineFns(op: ReduceOp, t: 'f32' | 'i32' | 'u32'): string {
  if (op === 'sum') return `fn comb(a: ${t}, b: ${t}) -> ${t} { return a + b; }\n`;
  const gt = op === 'max' || op === 'argmax' ? '>' : '<';
  if (!isArg(op)) {
    if (t !== 'f32') return `fn comb(a: ${t}, b: ${t}) -> ${t} { return ${op}(a, b); }\n`;
    return `fn comb(a: f32, b: f32) -> f32 {
  if (tl_isnan(a)) { return a; }
  if (tl_isnan(b)) { return b; }
  return select(a, b, b ${gt} a);
}\n`;
  }
  const nan =
    t === 'f32'
      ? `  let na = tl_isnan(va); let nb = tl_isnan(vb);\n  if (na || nb) { return nb && (!na || ib < ia); }\n`
      : '';
  return `fn better(va: ${t}, ia: u32, vb: ${t}, ib: u32) -> bool {
${nan}  return vb ${gt} va || (vb == va && ib < ia);
}\n`;
}

/** The WGSL of one reduction program. */
function reduceSource(s: ReduceSpec): string {
  const t = computeType(s.ad);
  const arg = isArg(s.op);
  const wg = s.wx * s.wy;
  const ks = S_DIMS;
  const rs = S_DIMS + 2 * s.rk;
  const xIn = s.stage === 'partial-in' ? `bitcast<${t}>(X[xi])` : load('X', 'xi', s.xd, s.ad);
  const idxIn = s.stage === 'partial-in' ? `X[${uU32(S_PIDX)} + xi]` : 'r';
  const fold = arg
    ? `let v = ${xIn}; let vi = ${idxIn};\n      if (better(acc, ai, v, vi)) { acc = v; ai = vi; }`
    : `acc = comb(acc, ${xIn});`;
  let write: string;
  if (s.stage === 'partial-out') {
    const at = `o * ${uU32(S_NCHUNKS)} + c`;
    write = `O[${at}] = bitcast<u32>(acc);${arg ? `\n    O[${uU32(S_PIDX)} + ${at}] = ai;` : ''}`;
  } else if (arg) {
    write = store('O', `${uU32(S_O_OFF)} + o`, s.od, 'select(i32(ai), 0i, ai == 0xffffffffu)');
  } else {
    write = store('O', `${uU32(S_O_OFF)} + o`, s.od, 'acc');
  }
  let tree = '';
  if (s.wy > 1) {
    const steps: string[] = [];
    for (let h = s.wy / 2; h >= 1; h /= 2) {
      const j = `lid + ${h * s.wx}u`;
      const step = arg
        ? `if (better(sv[lid], si[lid], sv[${j}], si[${j}])) { sv[lid] = sv[${j}]; si[lid] = si[${j}]; }`
        : `sv[lid] = comb(sv[lid], sv[${j}]);`;
      steps.push(`if (ly < ${h}u) { ${step} }\n  workgroupBarrier();`);
    }
    tree = `sv[lid] = acc;${arg ? ' si[lid] = ai;' : ''}
  workgroupBarrier();
  ${steps.join('\n  ')}
  acc = sv[lid];${arg ? ' ai = si[lid];' : ''}`;
  }
  const xDecl = s.stage === 'partial-in' ? storageDecl(0, 'X', 'uint32', true) : storageDecl(0, 'X', s.xd, true);
  const oDecl = s.stage === 'partial-out' ? storageDecl(1, 'O', 'uint32', false) : storageDecl(1, 'O', s.od, false);
  return `${enables([s.xd, s.od])}${HELPERS_WGSL}${BITS_WGSL}
${xDecl}${oDecl}${uniformDecl(2, S_DIMS + 2 * (s.rk + s.rr))}
${s.wy > 1 ? `var<workgroup> sv: array<${t}, ${wg}>;\n` : ''}${s.wy > 1 && arg ? `var<workgroup> si: array<u32, ${wg}>;\n` : ''}
${combineFns(s.op, t)}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let groups_out = ${uU32(S_GROUPS_OUT)};
  if (g >= groups_out * ${uU32(S_NCHUNKS)}) { return; }
  let c = g / groups_out;
  let o = (g % groups_out) * ${s.wx}u + lid % ${s.wx}u;
  let ly = lid / ${s.wx}u;
  var acc: ${t} = ${identity(s.op, t)};
  var ai = 0xffffffffu;
  if (o < ${uU32(S_NOUT)}) {
    ${stridedOffsets('o', s.rk, ks, [{ name: 'xb', stridesSlot: ks + s.rk, offsetSlot: S_X_OFF }], 'tl_k').replace(/\n/g, '\n    ')}
    let chunk = ${uU32(S_CHUNK)};
    let r_end = min(${uU32(S_R)}, (c + 1u) * chunk);
    for (var r = c * chunk + ly; r < r_end; r = r + ${s.wy}u) {
      ${stridedOffsets('r', s.rr, rs, [{ name: 'xr', stridesSlot: rs + s.rr, offsetSlot: S_ZERO }], 'tl_q').replace(/\n/g, '\n      ')}
      let xi = xb + xr;
      ${fold}
    }
  }
  ${tree}
  if (ly == 0u && o < ${uU32(S_NOUT)}) {
    ${write}
  }
}
`;
}

function program(s: ReduceSpec): WgslProgram {
  const key = `reduce_${s.op}_${s.stage}_${s.xd}_${s.ad}_${s.od}_k${s.rk}_r${s.rr}_${s.wx}x${s.wy}`;
  return cachedProgram(key, () => reduceSource(s));
}

const nextPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Threads per workgroup: a power of two within the adapter limit (256 at most). */
function maxThreads(ctx: KernelContext): number {
  return 2 ** Math.floor(Math.log2(Math.min(256, ctx.limits.maxComputeInvocationsPerWorkgroup)));
}

/**
 * The workgroup shape (wx outputs x wy threads per output) for nOut outputs of `r` elements each.
 * Each thread gets ~8+ elements before the tree; when neighbouring outputs are neighbours in memory
 * (`colFriendly`) at least 32 outputs share a workgroup so that its loads coalesce.
 */
function shape(nOut: number, r: number, colFriendly: boolean, threads: number): [number, number] {
  let wy = Math.min(threads, nextPow2(Math.ceil(r / 8)));
  if (colFriendly) wy = Math.min(wy, Math.max(1, threads / 32));
  const wx = Math.max(1, Math.min(threads / wy, nextPow2(nOut)));
  return [wx, wy];
}

/** One reduction dispatch over a kept x reduced layout (sizes, strides and offsets into uniforms). */
function dispatch(
  spec: ReduceSpec,
  x: TensorSpec['buffer'],
  o: TensorSpec['buffer'],
  lay: { ks: number[]; kx: number[]; rs: number[]; rx: number[]; xOff: number; oOff: number },
  n: { nOut: number; r: number; chunks: number; chunk: number; pidx: number },
  ctx: KernelContext,
): Dispatch {
  const { nOut, chunks } = n;
  const groupsOut = Math.ceil(nOut / spec.wx);
  const u = new UniformWords(S_DIMS + 2 * (spec.rk + spec.rr));
  u.u32Array(S_NOUT, [nOut, n.r, n.chunk, groupsOut, lay.xOff, lay.oOff, n.pidx, chunks, 0]);
  u.u32Array(S_DIMS, [...lay.ks, ...lay.kx, ...lay.rs, ...lay.rx]);
  return {
    program: program(spec),
    buffers: [
      { buffer: x, readOnly: true },
      { buffer: o, readOnly: false },
    ],
    uniforms: u.words,
    workgroups: grid(groupsOut * chunks, ctx.limits.maxComputeWorkgroupsPerDimension),
  };
}

/**
 * Dispatches of reduction `op` of `x` over `axes` (sorted) into the contiguous `out`. Empty `axes`
 * is a copy (with sum's bool -> int32 conversion). Float16 accumulates in f32; int32/uint32 sums wrap.
 */
export function reduceDispatches(
  op: ReduceOp,
  x: TensorSpec,
  out: TensorSpec,
  axes: readonly number[],
  ctx: KernelContext,
): Dispatch[] {
  const nOut = numel(out.shape);
  if (nOut === 0) return [];
  const keptShape: number[] = [];
  const keptStrides: number[] = [];
  const redShape: number[] = [];
  const redStrides: number[] = [];
  x.shape.forEach((d, i) => {
    const red = axes.includes(i);
    (red ? redShape : keptShape).push(d);
    (red ? redStrides : keptStrides).push(x.strides[i]!);
  });
  const kept = coalesce(keptShape, [keptStrides]);
  const red = coalesce(redShape, [redStrides]); // row-major order kept: the flat index is argmax's answer
  const r = numel(redShape);
  const ks = kept.shape;
  const kx = kept.strides[0]!;
  const rx = red.strides[0]!;
  const ad = op === 'sum' ? out.dtype : x.dtype;
  const threads = maxThreads(ctx);
  const colFriendly = nOut > 1 && kx[kx.length - 1] === 1 && rx[rx.length - 1] !== 1;
  const [wx, wy] = shape(nOut, r, colFriendly, threads);
  const groupsOut = Math.ceil(nOut / wx);
  const perThread = Math.ceil(r / wy);
  let chunks = 1;
  if (groupsOut < TARGET_GROUPS && perThread > MIN_SPLIT_ITERS) {
    chunks = Math.min(Math.ceil(TARGET_GROUPS / groupsOut), Math.ceil(perThread / 32), MAX_CHUNKS);
  }
  const chunk = Math.max(1, Math.ceil(r / chunks));
  chunks = Math.max(1, Math.ceil(r / chunk));
  const base = { op, xd: x.dtype, ad, od: out.dtype, rk: ks.length, rr: red.shape.length, wx, wy };
  const lay = { ks, kx, rs: red.shape, rx, xOff: x.offset, oOff: out.offset };
  const n = { nOut, r, chunks, chunk, pidx: nOut * chunks };
  if (chunks === 1) return [dispatch({ ...base, stage: 'direct' }, x.buffer, out.buffer, lay, n, ctx)];
  // Pass 1: partials (value bits, then indices for the arg ops) laid out [nOut, chunks] in scratch.
  const words = nOut * chunks * (isArg(op) ? 2 : 1);
  const scratch = ctx.scratch(words * 4);
  const p1 = dispatch({ ...base, stage: 'partial-out' }, x.buffer, scratch, lay, n, ctx);
  // Pass 2: reduce each output's `chunks` partials (one chunk: no further split).
  const [wx2, wy2] = shape(nOut, chunks, false, threads);
  const spec2: ReduceSpec = {
    op,
    xd: 'uint32',
    ad,
    od: out.dtype,
    stage: 'partial-in',
    rk: 1,
    rr: 1,
    wx: wx2,
    wy: wy2,
  };
  const lay2 = { ks: [nOut], kx: [chunks], rs: [chunks], rx: [1], xOff: 0, oOff: out.offset };
  const p2 = dispatch(
    spec2,
    scratch,
    out.buffer,
    lay2,
    { nOut, r: chunks, chunks: 1, chunk: chunks, pidx: nOut * chunks },
    ctx,
  );
  return [p1, p2];
}

function reduceKernel<K extends ReduceOp>(op: K): WebGPUKernel<K> {
  return (inputs, output, attrs, ctx) => reduceDispatches(op, inputs[0] as TensorSpec, output, attrs.axes, ctx);
}

/** sum over attrs.axes (float16 accumulates in f32; bool sums to int32; int32/uint32 wrap). */
export const sum: WebGPUKernel<'sum'> = reduceKernel('sum');
/** max over attrs.axes (NaN propagates). */
export const max: WebGPUKernel<'max'> = reduceKernel('max');
/** min over attrs.axes (NaN propagates). */
export const min: WebGPUKernel<'min'> = reduceKernel('min');
/** argmax over attrs.axes: int32 flat index into the reduced region (row-major); first maximum, NaN wins. */
export const argmax: WebGPUKernel<'argmax'> = reduceKernel('argmax');
/** argmin over attrs.axes: like argmax, for the first minimum. */
export const argmin: WebGPUKernel<'argmin'> = reduceKernel('argmin');

/** The reduction entries of the kernel table. */
export const reduceKernels = { sum, max, min, argmax, argmin };
