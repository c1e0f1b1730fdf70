// Batched matmul for WebGPU: out (...batch, M, N) = A (...batch, M, K) @ B (...batch, K, N), operands read
// in place through their strides (transposes and stride-0 broadcast batches are free). Tiled through
// workgroup memory, register-blocked (each thread owns a TM x TN micro-tile), f32 accumulation. The store
// epilogue of every tile variant adds an optional bias (N), applies an optional activation (writing the
// pre-activation h for the backward when asked) and adds an optional strided residual, all on the f32
// accumulator before the one rounding store (F.linear, the GPT MLP and residual adds in one dispatch).
import { contiguousStrides } from '../../../core/shape.js';
import type { DType } from '../../../core/dtype.js';
import type { AttrMap, MatmulActivation } from '../../../ops/opcodes.js';
import type { TensorSpec } from '../../backend.js';
import type { Dispatch, KernelContext, WebGPUKernel, WgslProgram } from '../kernel.js';
import {
  HELPERS_WGSL,
  cachedProgram,
  UniformWords,
  enables,
  grid,
  load,
  storageDecl,
  store,
  uU32,
  uniformDecl,
} from './codegen.js';
import { helperSource, unaryPlan } from './ewexpr.js';

/** A tile configuration: BM x BN output tile, BK-deep K slices, TM x TN outputs per thread. */
export interface MatmulTile {
  readonly bm: number;
  readonly bn: number;
  readonly bk: number;
  readonly tm: number;
  readonly tn: number;
}

/** Candidate tiles, largest first; `pickTile` takes the largest that still yields enough workgroups. */
export const MATMUL_TILES: readonly MatmulTile[] = [
  { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 },
  { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  { bm: 32, bn: 32, bk: 16, tm: 2, tn: 2 },
  { bm: 16, bn: 16, bk: 16, tm: 1, tn: 1 },
];

/** Workgroups a tile must produce before a larger tile is preferred over a smaller one (fills a big GPU). */
const MIN_GROUPS = 192;
/** Batch dims handled by one dispatch (after coalescing); more are split over several dispatches. */
const MAX_BATCH_DIMS = 4;

/** How an operand's two matrix dims are laid out: 'row' = last stride 1, 'col' = second-to-last stride 1. */
type Layout = 'row' | 'col' | 'gen';

function layoutOf(rs: number, cs: number): Layout {
  if (cs === 1) return 'row';
  if (rs === 1) return 'col';
  return 'gen';
}

/** Shrinks a tile's thread count to the adapter limit by growing the micro-tile (keeps BM, BN). */
export function fitTile(t: MatmulTile, maxThreads: number): MatmulTile {
  let { tm, tn } = t;
  while ((t.bm / tm) * (t.bn / tn) > maxThreads && (tm < t.bm || tn < t.bn)) {
    if (tm <= tn && tm < t.bm) tm *= 2;
    else tn *= 2;
  }
  return { ...t, tm, tn };
}

/**
 * The tile for an (M, N) problem with `batch` matrices: the largest whose workgroup count reaches
 * MIN_GROUPS (so small problems get small tiles and keep the GPU busy), else the smallest.
 */
export function pickTile(m: number, n: number, batch: number, maxThreads: number): MatmulTile {
  for (const t of MATMUL_TILES) {
    const groups = Math.ceil(m / t.bm) * Math.ceil(n / t.bn) * batch;
    if (groups >= MIN_GROUPS) return fitTile(t, maxThreads);
  }
  return fitTile(MATMUL_TILES[MATMUL_TILES.length - 1]!, maxThreads);
}

// Uniform word slots (see `matmul` for the packing).
// prettier-ignore
const S_M = 0, S_N = 1, S_K = 2, S_TILES_M = 3, S_TILES_N = 4, S_GROUPS = 5;
// prettier-ignore
const S_A_OFF = 6, S_A_RS = 7, S_A_CS = 8, S_B_OFF = 9, S_B_RS = 10, S_B_CS = 11, S_O_OFF = 12;
/** Batch dim d (innermost last) has its size at S_BATCH + 3d, then A's and B's strides. */
const S_BATCH = 13;
/** The bias's offset and element stride (bias variant only). */
const S_BIAS_OFF = S_BATCH + 3 * MAX_BATCH_DIMS,
  S_BIAS_S = S_BIAS_OFF + 1;
/** The residual's offset, row and column strides, then its stride along each batch dim (residual variant). */
// prettier-ignore
const S_R_OFF = S_BIAS_S + 1, S_R_RS = S_R_OFF + 1, S_R_CS = S_R_OFF + 2, S_R_BATCH = S_R_OFF + 3;
/** The aux pre-activation's offset (it is contiguous like the output). */
const S_H_OFF = S_R_BATCH + MAX_BATCH_DIMS;
const WORDS = S_H_OFF + 1;

/**
 * The epilogue of a specialization: the bias's dtype (null: none), whether a residual (the output's dtype)
 * is added, the activation, and whether the pre-activation h is stored (the output's dtype). `inOut`: the
 * residual is the output itself (in-place accumulation, out += A @ B), read from the output binding.
 */
interface Epilogue {
  readonly dbias: DType | null;
  readonly residual: boolean;
  readonly inOut?: boolean;
  readonly act: MatmulActivation | null;
  readonly h: boolean;
}

const PLAIN: Epilogue = { dbias: null, residual: false, act: null, h: false };

/** The epilogue's part of a program key ('' for a plain matmul, so plain keys stay as they were). */
function epilogueKey(e: Epilogue): string {
  return `${e.dbias ? `_bias_${e.dbias}` : ''}${e.act ? `_${e.act}` : ''}${e.h ? '_h' : ''}${e.residual ? (e.inOut ? '_resio' : '_res') : ''}`;
}

/**
 * The storage declarations after O (bindings 3.., in the order bias, residual, h, then the uniforms), the
 * helper functions, and the body of st() that turns the f32 accumulator v of output (r, c) into the stored
 * value: index i = ob + r * N + c in O (and h), rb the residual's batch offset.
 */
function epilogueSource(e: Epilogue, dout: DType): { decls: string; helpers: string; body: string } {
  let binding = 3;
  let decls = '';
  const lines: string[] = ['var x = v;'];
  if (e.dbias) {
    decls += storageDecl(binding++, 'Bias', e.dbias, true);
    lines.push(`x = x + ${load('Bias', `${uU32(S_BIAS_OFF)} + c * ${uU32(S_BIAS_S)}`, e.dbias)};`);
  }
  if (e.residual && !e.inOut) decls += storageDecl(binding++, 'R', dout, true);
  if (e.h) {
    decls += storageDecl(binding++, 'H', dout, false);
    lines.push(store('H', `${uU32(S_H_OFF)} + i`, dout, 'x'));
  }
  let helpers = '';
  if (e.act) {
    // the elementwise op's own expression, so the fused activation matches the unfused gelu/relu
    const plan = unaryPlan(e.act, 'float32', 'float32');
    lines.push(`x = ${plan.expr(['x'])};`);
    helpers = HELPERS_WGSL + helperSource(plan.helpers);
  }
  // in place: each output element is read, then written, by the one thread that owns it
  if (e.residual && e.inOut) lines.push(`x = x + ${load('O', `${uU32(S_O_OFF)} + i`, dout)};`);
  else if (e.residual) lines.push(`x = x + ${load('R', `rb + r * ${uU32(S_R_RS)} + c * ${uU32(S_R_CS)}`, dout)};`);
  decls += uniformDecl(binding, WORDS);
  lines.push(store('O', `${uU32(S_O_OFF)} + i`, dout, 'x'));
  return { decls, helpers, body: lines.join('\n    ') };
}

/**
 * WGSL for one specialization (tile, dtypes, operand layouts, epilogue); sizes and strides come from
 * uniforms.
 */
function matmulSource(t: MatmulTile, da: DType, db: DType, dout: DType, la: Layout, lb: Layout, ep: Epilogue): string {
  const { bm, bn, bk, tm, tn } = t;
  const cols = bn / tn; // threads along N
  const rows = bm / tm; // threads along M
  const threads = rows * cols;
  const [M, N, K] = [uU32(S_M), uU32(S_N), uU32(S_K)];
  // Element (r, k) of A and (k, c) of B; the layout fixes which stride is the constant 1.
  const [ars, acs, brs, bcs] = [uU32(S_A_RS), uU32(S_A_CS), uU32(S_B_RS), uU32(S_B_CS)];
  const aAddr =
    la === 'row' ? `base + r * ${ars} + k` : la === 'col' ? `base + r + k * ${acs}` : `base + r * ${ars} + k * ${acs}`;
  const bAddr =
    lb === 'row' ? `base + k * ${brs} + c` : lb === 'col' ? `base + k + c * ${bcs}` : `base + k * ${brs} + c * ${bcs}`;
  // Consecutive threads load along the operand's unit-stride dim (coalesced reads).
  const aLoad = la === 'col' ? `let r = e % ${bm}u; let kk = e / ${bm}u;` : `let r = e / ${bk}u; let kk = e % ${bk}u;`;
  const bLoad = lb === 'col' ? `let kk = e % ${bk}u; let c = e / ${bk}u;` : `let kk = e / ${bn}u; let c = e % ${bn}u;`;
  // The micro-tile is strided (rows ty + i*rows, cols tx + j*cols): conflict-free shared reads, coalesced stores.
  const acc: string[] = [];
  const fma: string[] = [];
  const st: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn; j++) {
      acc.push(`var c${i}_${j} = 0.0;`);
      fma.push(`c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`);
      st.push(`st(obase, roff, row0 + ${i * rows}u, col0 + ${j * cols}u, c${i}_${j});`);
    }
  }
  const aRegs = Array.from({ length: tm }, (_, i) => `let a${i} = As[kk * ${bm}u + ty + ${i * rows}u];`).join(
    '\n      ',
  );
  const bRegs = Array.from({ length: tn }, (_, j) => `let b${j} = Bs[kk * ${bn}u + tx + ${j * cols}u];`).join(
    '\n      ',
  );
  const unbatch = Array.from({ length: MAX_BATCH_DIMS }, (_, i) => {
    const d = MAX_BATCH_DIMS - 1 - i;
    const [sz, sa, sb] = [uU32(S_BATCH + 3 * d), uU32(S_BATCH + 3 * d + 1), uU32(S_BATCH + 3 * d + 2)];
    const res = ep.residual ? ` roff += q * ${uU32(S_R_BATCH + d)};` : '';
    return `{ let q = rest % ${sz}; rest = rest / ${sz}; aoff += q * ${sa}; boff += q * ${sb};${res} }`;
  }).join('\n  ');
  // The epilogue: bias, activation (h stored first), residual on the f32 accumulator, then one rounding store.
  const epi = epilogueSource(ep, dout);
  return `${enables(ep.dbias ? [da, db, dout, ep.dbias] : [da, db, dout])}
${storageDecl(0, 'A', da, true)}${storageDecl(1, 'B', db, true)}${storageDecl(2, 'O', dout, false)}${epi.decls}${epi.helpers}
var<workgroup> As: array<f32, ${bk * bm}>;
var<workgroup> Bs: array<f32, ${bk * bn}>;

fn ldA(base: u32, r: u32, k: u32) -> f32 {
  if (r >= ${M} || k >= ${K}) { return 0.0; }
  return ${load('A', aAddr, da)};
}
fn ldB(base: u32, k: u32, c: u32) -> f32 {
  if (k >= ${K} || c >= ${N}) { return 0.0; }
  return ${load('B', bAddr, db)};
}
fn st(ob: u32, rb: u32, r: u32, c: u32, v: f32) {
  if (r < ${M} && c < ${N}) {
    let i = ob + r * ${N} + c;
    ${epi.body}
  }
}

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= ${uU32(S_GROUPS)}) { return; }
  let tiles_n = ${uU32(S_TILES_N)};
  let tiles_m = ${uU32(S_TILES_M)};
  let m0 = ((g / tiles_n) % tiles_m) * ${bm}u;
  let n0 = (g % tiles_n) * ${bn}u;
  let bidx = g / (tiles_n * tiles_m);
  var rest = bidx;
  var aoff = ${uU32(S_A_OFF)};
  var boff = ${uU32(S_B_OFF)};
  var roff = ${ep.residual ? uU32(S_R_OFF) : '0u'};
  ${unbatch}
  let tx = lid % ${cols}u;
  let ty = lid / ${cols}u;
  ${acc.join('\n  ')}
  for (var k0 = 0u; k0 < ${K}; k0 = k0 + ${bk}u) {
    for (var e = lid; e < ${bm * bk}u; e = e + ${threads}u) {
      ${aLoad}
      As[kk * ${bm}u + r] = ldA(aoff, m0 + r, k0 + kk);
    }
    for (var e = lid; e < ${bk * bn}u; e = e + ${threads}u) {
      ${bLoad}
      Bs[kk * ${bn}u + c] = ldB(boff, k0 + kk, n0 + c);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk = kk + 1u) {
      ${aRegs}
      ${bRegs}
      ${fma.join('\n      ')}
    }
    workgroupBarrier();
  }
  let obase = bidx * ${M} * ${N};
  let row0 = m0 + ty;
  let col0 = n0 + tx;
  ${st.join('\n  ')}
}
`;
}

/** The cached program of a specialization (built lazily, keyed by everything the source depends on). */
function program(t: MatmulTile, da: DType, db: DType, dout: DType, la: Layout, lb: Layout, ep: Epilogue): WgslProgram {
  const key = `matmul_${t.bm}x${t.bn}x${t.bk}_${t.tm}x${t.tn}_${da}_${db}_${dout}_${la}_${lb}${epilogueKey(ep)}`;
  return cachedProgram(key, () => matmulSource(t, da, db, dout, la, lb, ep));
}

/** An operand's batch strides right-aligned to `nb` batch dims (missing leading dims broadcast, stride 0). */
function batchStrides(x: TensorSpec, nb: number): number[] {
  const own = x.strides.slice(0, x.strides.length - 2);
  const pad = new Array<number>(Math.max(0, nb - own.length)).fill(0);
  return [...pad, ...own.slice(Math.max(0, own.length - nb))];
}

/**
 * Drops size-1 batch dims and merges neighbours that are mergeable for A, B, the output and the residual
 * (`sr`, zeros without one) alike.
 */
function coalesceBatch(
  shape: readonly number[],
  sa: number[],
  sb: number[],
  so: number[],
  sr: number[],
): [number[], number[], number[], number[]] {
  const sh: number[] = [];
  const a: number[] = [];
  const b: number[] = [];
  const o: number[] = [];
  const r: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d]!;
    if (n === 1) continue;
    const l = sh.length - 1;
    if (l >= 0 && a[l] === sa[d]! * n && b[l] === sb[d]! * n && o[l] === so[d]! * n && r[l] === sr[d]! * n) {
      sh[l] = sh[l]! * n;
      a[l] = sa[d]!;
      b[l] = sb[d]!;
      o[l] = so[d]!;
      r[l] = sr[d]!;
    } else {
      sh.push(n);
      a.push(sa[d]!);
      b.push(sb[d]!);
      o.push(so[d]!);
      r.push(sr[d]!);
    }
  }
  return [sh, a, b, r];
}

/**
 * Whether the residual is the output itself (same buffer, offset, dtype and contiguous layout: in-place
 * accumulation): it is then bound once, through the output's read_write binding. Any other overlap with
 * the output would be a read-only binding aliasing a writable one: refused.
 */
function residualIsOutput(r: TensorSpec, out: TensorSpec): boolean {
  if (r.buffer !== out.buffer) return false;
  const strides = contiguousStrides(out.shape);
  if (
    r.offset === out.offset &&
    r.dtype === out.dtype &&
    r.strides.every((s, d) => s === strides[d] || out.shape[d] === 1)
  )
    return true;
  throw new Error('webgpu matmul: the residual shares the output buffer but is not the output itself');
}

/** The optional operands of the epilogue (see `matmul`). */
export interface MatmulEpilogueSpecs {
  readonly bias?: TensorSpec | undefined;
  readonly residual?: TensorSpec | undefined;
  readonly activation?: MatmulActivation | undefined;
  /** The pre-activation output (contiguous, the output's shape and dtype). */
  readonly h?: TensorSpec | undefined;
}

/**
 * The dispatches of out = act(A @ B + bias) + residual (see `matmul`); `tile` overrides the size-based
 * choice (playground only: it must fit ctx.limits).
 */
export function matmulDispatches(
  a: TensorSpec,
  b: TensorSpec,
  out: TensorSpec,
  ctx: KernelContext,
  tile?: MatmulTile,
  epi: MatmulEpilogueSpecs = {},
): Dispatch[] {
  const { bias, residual, h } = epi;
  const nd = out.shape.length;
  const m = out.shape[nd - 2]!;
  const n = out.shape[nd - 1]!;
  const k = a.shape[a.shape.length - 1]!;
  const batch = out.shape.slice(0, nd - 2);
  if (m === 0 || n === 0 || batch.some((d) => d === 0)) return [];
  const [bShape, sa, sb, sr] = coalesceBatch(
    batch,
    batchStrides(a, batch.length),
    batchStrides(b, batch.length),
    contiguousStrides(batch).map((s) => s * m * n),
    residual ? batchStrides(residual, batch.length) : batch.map(() => 0),
  );
  const [ars, acs] = a.strides.slice(-2) as [number, number];
  const [brs, bcs] = b.strides.slice(-2) as [number, number];
  const count = bShape.reduce((x, y) => x * y, 1);
  tile ??= pickTile(m, n, count, ctx.limits.maxComputeInvocationsPerWorkgroup);
  const inOut = residual !== undefined && residualIsOutput(residual, out);
  const ep: Epilogue =
    epi.activation || residual || bias
      ? {
          dbias: bias?.dtype ?? null,
          residual: !!residual,
          inOut,
          act: epi.activation ?? null,
          h: !!h && !!epi.activation,
        }
      : PLAIN;
  const prog = program(tile, a.dtype, b.dtype, out.dtype, layoutOf(ars, acs), layoutOf(brs, bcs), ep);
  const dispatches: Dispatch[] = [];
  // Batch dims beyond MAX_BATCH_DIMS: one dispatch per index of the extra leading dims.
  const extra = Math.max(0, bShape.length - MAX_BATCH_DIMS);
  const lead = bShape.slice(0, extra);
  const inner = bShape.slice(extra);
  const innerCount = inner.reduce((x, y) => x * y, 1);
  const leadCount = lead.reduce((x, y) => x * y, 1);
  const tilesM = Math.ceil(m / tile.bm);
  const tilesN = Math.ceil(n / tile.bn);
  const groups = tilesM * tilesN * innerCount;
  for (let l = 0; l < leadCount; l++) {
    let rest = l;
    let aOff = a.offset;
    let bOff = b.offset;
    let rOff = residual?.offset ?? 0;
    for (let d = extra - 1; d >= 0; d--) {
      const q = rest % lead[d]!;
      rest = Math.floor(rest / lead[d]!);
      aOff += q * sa[d]!;
      bOff += q * sb[d]!;
      rOff += q * sr[d]!;
    }
    const u = new UniformWords(WORDS).u32Array(S_M, [m, n, k, tilesM, tilesN, groups]);
    u.u32Array(S_A_OFF, [aOff, ars, acs, bOff, brs, bcs, out.offset + l * innerCount * m * n]);
    if (bias) u.u32Array(S_BIAS_OFF, [bias.offset, bias.strides[0]!]);
    if (residual) u.u32Array(S_R_OFF, [rOff, ...(residual.strides.slice(-2) as [number, number])]);
    if (ep.h) u.u32Array(S_H_OFF, [h!.offset + l * innerCount * m * n]);
    for (let d = 0; d < MAX_BATCH_DIMS; d++) {
      // Missing leading dims have size 1 (stride 0), so the shader always unbatches MAX_BATCH_DIMS dims.
      const src = d - (MAX_BATCH_DIMS - inner.length);
      u.u32Array(S_BATCH + 3 * d, src >= 0 ? [inner[src]!, sa[extra + src]!, sb[extra + src]!] : [1, 0, 0]);
      if (residual) u.u32Array(S_R_BATCH + d, [src >= 0 ? sr[extra + src]! : 0]);
    }
    dispatches.push({
      program: prog,
      buffers: [
        { buffer: a.buffer, readOnly: true },
        { buffer: b.buffer, readOnly: true },
        { buffer: out.buffer, readOnly: false },
        ...(bias ? [{ buffer: bias.buffer, readOnly: true }] : []),
        ...(residual && !inOut ? [{ buffer: residual.buffer, readOnly: true }] : []),
        ...(ep.h ? [{ buffer: h!.buffer, readOnly: false }] : []),
      ],
      uniforms: u.words,
      workgroups: grid(groups, ctx.limits.maxComputeWorkgroupsPerDimension),
    });
  }
  return dispatches;
}

/**
 * matmul: out (...batch, M, N) contiguous = act(A @ B + bias) + residual; inputs A, B, then as `attrs`
 * says a bias (N, the operands' dtype) and a residual (the output's shape and dtype, any strides), then the
 * aux pre-activation h when the engine asked for it. float32 or float16 (f16 loads, f32 accumulation, the
 * epilogue on f32 before the one rounding store); a float32 output over float16 operands is the autocast
 * "cast" epilogue.
 */
export const matmul: WebGPUKernel<'matmul'> = (inputs, out, attrs: AttrMap['matmul'], ctx) => {
  let i = 2;
  const bias = attrs.bias ? (inputs[i++] as TensorSpec) : undefined;
  const residual = attrs.residual ? (inputs[i++] as TensorSpec) : undefined;
  const h = inputs[i] as TensorSpec | undefined;
  return matmulDispatches(inputs[0] as TensorSpec, inputs[1] as TensorSpec, out, ctx, undefined, {
    bias,
    residual,
    activation: attrs.activation,
    h,
  });
};

/** The matmul entry of the kernel table. */
export const matmulKernels = { matmul };
