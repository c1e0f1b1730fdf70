// The implicit-GEMM engine of the WebGPU convolutions: per conv group, C[m, j] = sum_k A[m, k] * B[k, j],
// where A is read through a per-k offset table and B is gathered from an NCHW tensor (padding, stride
// and dilation resolved in the gather, zeros outside), never materialized. conv.ts maps conv2d and both
// of its backward ops onto this one shader with uniforms only; split-K partial sums go to scratch.
import type { DType } from '../../../core/dtype.js';
import { OpError } from '../../../core/errors.js';
import type { KernelContext, WgslProgram } from '../kernel.js';
import { cachedProgram, enables, load, storageDecl, store, uI32, uU32, uniformDecl } from './codegen.js';

/** A tile configuration: BM x BN output tile, BK-deep K slices, TM x TN outputs per thread. */
export interface ConvTile {
  readonly bm: number;
  readonly bn: number;
  readonly bk: number;
  readonly tm: number;
  readonly tn: number;
}

/**
 * Candidate tiles, largest first, all of 256 threads. The gather keeps one column per thread, which
 * needs the thread count to be a multiple of BN and BK * BN a multiple of the thread count. The tiles
 * under 16 rows serve only GEMMs of at most 4 rows (depthwise convs, the input grad of an RGB layer).
 */
export const CONV_TILES: readonly ConvTile[] = [
  { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 },
  { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  { bm: 32, bn: 128, bk: 16, tm: 2, tn: 8 },
  { bm: 16, bn: 128, bk: 16, tm: 1, tn: 8 },
  { bm: 4, bn: 256, bk: 8, tm: 1, tn: 4 },
  { bm: 32, bn: 32, bk: 16, tm: 2, tn: 2 },
  { bm: 16, bn: 64, bk: 16, tm: 1, tn: 4 },
  { bm: 1, bn: 256, bk: 8, tm: 1, tn: 1 },
  { bm: 16, bn: 16, bk: 16, tm: 1, tn: 1 },
];

/** Workgroups a problem should produce to fill a large GPU (below it: a smaller tile, then split-K). */
export const MIN_GROUPS = 192;
/** Split-K never cuts the reduction into chunks shorter than this. */
const MIN_SPLIT_K = 256;
/** Most K chunks of one problem (each chunk's partial output lives in scratch). */
const MAX_SPLITS = 64;
/** Most scratch bytes split-K may use. */
const MAX_SPLIT_BYTES = 64 * 1024 * 1024;

const threadsOf = (t: ConvTile): number => (t.bm / t.tm) * (t.bn / t.tn);
const sharedBytes = (t: ConvTile): number => 4 * (t.bk * (t.bm + t.bn) + 4 * t.bk);
const pow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
const cap = (n: number): number => Math.max(16, pow2(n));

/** The most K chunks a reduction of length `k` may be split into. */
const maxSplits = (k: number): number => Math.max(1, Math.min(MAX_SPLITS, Math.floor(k / MIN_SPLIT_K)));

/**
 * The tile for an M x N x K problem over `batch` conv groups. The candidates are the tiles that fit the
 * adapter and are no wider than N: for M <= 4 those no taller than M, else those of 16 rows or more
 * and no taller than M (M and N rounded up to a power of two, at least 16). Of these, the largest whose
 * workgroups, times the most K chunks split-K may cut K into, reach MIN_GROUPS; else the smallest.
 * (A long reduction keeps a large tile and splits K rather than shrinking the tile.)
 */
export function pickConvTile(
  m: number,
  n: number,
  k: number,
  batch: number,
  limits: KernelContext['limits'],
): ConvTile {
  const fits = CONV_TILES.filter(
    (t) =>
      threadsOf(t) <= limits.maxComputeInvocationsPerWorkgroup &&
      threadsOf(t) <= limits.maxComputeWorkgroupSizeX &&
      sharedBytes(t) <= limits.maxComputeWorkgroupStorageSize,
  );
  const shaped = fits.filter((t) => t.bm >= 16 && t.bm <= cap(m) && t.bn <= cap(n));
  const short = m <= 4 ? fits.filter((t) => t.bm < 16 && t.bm <= pow2(m) && t.bn <= cap(n)) : [];
  const pool = short.length > 0 ? short : shaped.length > 0 ? shaped : fits;
  for (const t of pool) {
    if (Math.ceil(m / t.bm) * Math.ceil(n / t.bn) * batch * maxSplits(k) >= MIN_GROUPS) return t;
  }
  const last = pool[pool.length - 1];
  if (!last) {
    throw new OpError(
      'conv2d',
      `no WebGPU conv tile fits the adapter (256 invocations and ${Math.min(...CONV_TILES.map(sharedBytes))} bytes of ` +
        `workgroup memory needed; it allows ${limits.maxComputeInvocationsPerWorkgroup} and ${limits.maxComputeWorkgroupStorageSize})`,
    );
  }
  return last;
}

/** The sizes of one GEMM of a conv op (per conv group). */
export interface GemmShape {
  readonly m: number;
  readonly n: number;
  readonly k: number;
}

/** How the GEMMs of one conv op run: a tile per GEMM, and one K split shared by all of them. */
export interface ConvPlan {
  /** The tile of each GEMM. */
  readonly tiles: readonly ConvTile[];
  /** Output tiles of each GEMM (tiles along M x tiles along N x conv groups), per K chunk. */
  readonly counts: readonly number[];
  /** K chunks (1: no split-K). */
  readonly splits: number;
  /** K chunk length of each GEMM (a multiple of its tile's BK). */
  readonly chunks: readonly number[];
}

/**
 * Plans the GEMMs that together write one output of `outElems` elements (one GEMM, or one per stride
 * phase): each takes `pickConvTile`; when all their tiles are fewer than MIN_GROUPS and the longest K
 * allows, K is split into enough chunks to reach MIN_GROUPS, each chunk at least MIN_SPLIT_K long, the
 * float32 partial outputs within MAX_SPLIT_BYTES and the storage binding limit.
 */
export function convPlan(
  parts: readonly GemmShape[],
  groups: number,
  outElems: number,
  limits: KernelContext['limits'],
): ConvPlan {
  const tiles = parts.map((p) => pickConvTile(p.m, p.n, p.k, groups, limits));
  const counts = parts.map((p, i) => Math.ceil(p.m / tiles[i]!.bm) * Math.ceil(p.n / tiles[i]!.bn) * groups);
  const total = counts.reduce((a, b) => a + b, 0);
  const longest = parts.reduce((best, p, i) => (p.k > parts[best]!.k ? i : best), 0);
  const kMax = parts[longest]?.k ?? 0;
  const byBytes = Math.floor(Math.min(MAX_SPLIT_BYTES, limits.maxStorageBufferBindingSize) / Math.max(1, 4 * outElems));
  const want = Math.min(Math.ceil(MIN_GROUPS / Math.max(1, total)), maxSplits(kMax), byBytes);
  const chunkOf = (k: number, bk: number, s: number): number => Math.max(bk, Math.ceil(Math.ceil(k / s) / bk) * bk);
  let splits = 1;
  if (total < MIN_GROUPS && want >= 2) {
    // whole BK slices per chunk can leave the last chunks of the longest K empty: drop them
    splits = Math.ceil(kMax / chunkOf(kMax, tiles[longest]!.bk, want));
  }
  const chunks = parts.map((p, i) =>
    i === longest && splits > 1 ? chunkOf(kMax, tiles[i]!.bk, want) : chunkOf(p.k, tiles[i]!.bk, splits),
  );
  return { tiles, counts, splits, chunks };
}

// Uniform word slots. Problem: M, N (columns), K, tiles along N and M, workgroups, conv groups, K chunk.
// k and j split as (a, b, c) with sizes (_, kB, kC) and (_, jB, jC). A[m, k] = A[aOff + grp * aGS + m * aRS
// + a * aSA + b * aSB + c * aSC]. The gather reads B[bOff + grp * bGS + base(j) + base(k) + h * WW + w]
// with base, h = h(j) + h(k) and w = w(j) + w(k) affine in the split parts, zero outside [0, HH) x [0, WW).
// C[m, j] goes to O[oOff + grp * oGS + split * oSS + m * oRS + (j / oP) * oNS + (j % oP / oC) * oBS +
// (j % oC) * oCS] (+ bias[biasOff + grp * M + m]).
// prettier-ignore
export const S = {
  M: 0, N: 1, K: 2, TILES_N: 3, TILES_M: 4, GROUPS: 5, CG: 6, KCHUNK: 7,
  A_OFF: 8, A_GS: 9, A_RS: 10, A_SA: 11, A_SB: 12, A_SC: 13,
  K_B: 14, K_C: 15, T_SA: 16, T_HB: 17, T_HO: 18, T_WC: 19, T_WO: 20,
  J_B: 21, J_C: 22, C_SA: 23, C_HB: 24, C_HO: 25, C_WC: 26, C_WO: 27,
  B_OFF: 28, B_GS: 29, HH: 30, WW: 31,
  O_OFF: 32, O_GS: 33, O_RS: 34, O_P: 35, O_NS: 36, O_C: 37, O_BS: 38, O_CS: 39, O_SS: 40, BIAS_OFF: 41,
} as const;
/** Uniform words of the GEMM shader. */
export const GEMM_WORDS = 42;

/** What a GEMM program is specialized on (everything else is uniforms). */
export interface GemmVariant {
  readonly tile: ConvTile;
  readonly a: DType;
  readonly b: DType;
  readonly out: DType;
  /** Dtype of the fused bias input (bound between B and the output), or null. */
  readonly bias: DType | null;
  /** Clamp each stored value (after the bias) at 0: conv2d's fused ReLU. Default false. */
  readonly relu?: boolean;
}

/** The cached program of a GEMM variant. */
export function gemmProgram(v: GemmVariant): WgslProgram {
  const t = v.tile;
  const key = `conv2d.gemm_${t.bm}x${t.bn}x${t.bk}_${t.tm}x${t.tn}_${v.a}_${v.b}_${v.out}_${v.bias ?? 'nobias'}${v.relu ? '_relu' : ''}`;
  return cachedProgram(key, () => gemmSource(v));
}

const u = (name: keyof typeof S): string => uU32(S[name]);
const i = (name: keyof typeof S): string => uI32(S[name]);

function gemmSource(v: GemmVariant): string {
  const { bm, bn, bk, tm, tn } = v.tile;
  const cols = bn / tn;
  const rows = bm / tm;
  const threads = rows * cols;
  const acc: string[] = [];
  const fma: string[] = [];
  const aRegs: string[] = [];
  const bRegs: string[] = [];
  const colOffs: string[] = [];
  const stores: string[] = [];
  for (let r = 0; r < tm; r++) aRegs.push(`let a${r} = As[kk * ${bm}u + ty + ${r * rows}u];`);
  for (let c = 0; c < tn; c++) {
    bRegs.push(`let b${c} = Bs[kk * ${bn}u + tx + ${c * cols}u];`);
    colOffs.push(
      `let j${c} = col0 + ${c * cols}u; let q${c} = (j${c} / ${u('O_P')}) * ${u('O_NS')} + ` +
        `(j${c} % ${u('O_P')} / ${u('O_C')}) * ${u('O_BS')} + (j${c} % ${u('O_C')}) * ${u('O_CS')};`,
    );
  }
  for (let r = 0; r < tm; r++) {
    const row: string[] = [];
    for (let c = 0; c < tn; c++) {
      acc.push(`var c${r}_${c} = 0.0;`);
      fma.push(`c${r}_${c} = fma(a${r}, b${c}, c${r}_${c});`);
      const value = v.relu ? `max(c${r}_${c} + bv, 0.0)` : `c${r}_${c} + bv`;
      row.push(`if (j${c} < ${u('N')}) { ${store('O', `mo + q${c}`, v.out, value)} }`);
    }
    const bias = v.bias ? load('BIAS', `${u('BIAS_OFF')} + grp * ${u('M')} + m`, v.bias, 'float32') : '0.0';
    stores.push(`{ let m = row0 + ${r * rows}u; if (m < ${u('M')}) {
    let mo = obase + m * ${u('O_RS')}; let bv = ${bias};
    ${row.join('\n    ')}
  } }`);
  }
  let binding = 0;
  const decl = [storageDecl(binding++, 'A', v.a, true), storageDecl(binding++, 'B', v.b, true)];
  if (v.bias) decl.push(storageDecl(binding++, 'BIAS', v.bias, true));
  decl.push(storageDecl(binding++, 'O', v.out, false), uniformDecl(binding, GEMM_WORDS));
  return `${enables([v.a, v.b, v.out, ...(v.bias ? [v.bias] : [])])}${decl.join('')}
var<workgroup> As: array<f32, ${bk * bm}>;
var<workgroup> Bs: array<f32, ${bk * bn}>;
var<workgroup> tA: array<u32, ${bk}>;
var<workgroup> tB: array<u32, ${bk}>;
var<workgroup> tH: array<i32, ${bk}>;
var<workgroup> tW: array<i32, ${bk}>;
// a row far outside any tensor: gathers there read zero (sums of two FARs still fit an i32)
const FAR: i32 = -0x20000000;
const NONE: u32 = 0xffffffffu;

// the k-dependent parts of A's offset and of the gather for one slot of the current K slice
fn table(kk: u32, k: u32, kEnd: u32) {
  if (k >= kEnd) { tA[kk] = NONE; tB[kk] = 0u; tH[kk] = FAR; tW[kk] = 0; return; }
  let c = k % ${u('K_C')};
  let q = k / ${u('K_C')};
  let b = q % ${u('K_B')};
  let a = q / ${u('K_B')};
  tA[kk] = a * ${u('A_SA')} + b * ${u('A_SB')} + c * ${u('A_SC')};
  tB[kk] = a * ${u('T_SA')};
  tH[kk] = i32(b) * ${i('T_HB')} + ${i('T_HO')};
  tW[kk] = i32(c) * ${i('T_WC')} + ${i('T_WO')};
}

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= ${u('GROUPS')}) { return; }
  let tiles_n = ${u('TILES_N')};
  let tiles_m = ${u('TILES_M')};
  let n0 = (g % tiles_n) * ${bn}u;
  let m0 = ((g / tiles_n) % tiles_m) * ${bm}u;
  let rest = g / (tiles_n * tiles_m);
  let grp = rest % ${u('CG')};
  let split = rest / ${u('CG')};
  let kBegin = split * ${u('KCHUNK')};
  let kEnd = min(${u('K')}, kBegin + ${u('KCHUNK')});
  let abase = ${u('A_OFF')} + grp * ${u('A_GS')};
  // this thread gathers one fixed column of every B slice (threads is a multiple of BN)
  let bc = lid % ${bn}u;
  let jg = n0 + bc;
  var pbase = 0u;
  var ph = FAR;
  var pw = 0;
  if (jg < ${u('N')}) {
    let c = jg % ${u('J_C')};
    let q = jg / ${u('J_C')};
    pbase = ${u('B_OFF')} + grp * ${u('B_GS')} + (q / ${u('J_B')}) * ${u('C_SA')};
    ph = i32(q % ${u('J_B')}) * ${i('C_HB')} + ${i('C_HO')};
    pw = i32(c) * ${i('C_WC')} + ${i('C_WO')};
  }
  let tx = lid % ${cols}u;
  let ty = lid / ${cols}u;
  ${acc.join('\n  ')}
  if (lid < ${bk}u) { table(lid, kBegin + lid, kEnd); }
  workgroupBarrier();
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${bk}u) {
    for (var e = lid; e < ${bm * bk}u; e = e + ${threads}u) {
      let kk = e % ${bk}u;
      let r = e / ${bk}u;
      let ta = tA[kk];
      var v = 0.0;
      if (m0 + r < ${u('M')} && ta != NONE) { v = ${load('A', `abase + (m0 + r) * ${u('A_RS')} + ta`, v.a, 'float32')}; }
      As[kk * ${bm}u + r] = v;
    }
    for (var s = 0u; s < ${(bk * bn) / threads}u; s = s + 1u) {
      let kk = lid / ${bn}u + s * ${threads / bn}u;
      let ih = ph + tH[kk];
      let iw = pw + tW[kk];
      var v = 0.0;
      if (u32(ih) < ${u('HH')} && u32(iw) < ${u('WW')}) {
        v = ${load('B', `pbase + tB[kk] + u32(ih) * ${u('WW')} + u32(iw)`, v.b, 'float32')};
      }
      Bs[kk * ${bn}u + bc] = v;
    }
    workgroupBarrier();
    // the table is read only by the loads above, so the next slice's can be written now
    if (lid < ${bk}u) { table(lid, k0 + ${bk}u + lid, kEnd); }
    for (var kk = 0u; kk < ${bk}u; kk = kk + 1u) {
      ${aRegs.join('\n      ')}
      ${bRegs.join('\n      ')}
      ${fma.join('\n      ')}
    }
    workgroupBarrier();
  }
  let obase = ${u('O_OFF')} + grp * ${u('O_GS')} + split * ${u('O_SS')};
  let row0 = m0 + ty;
  let col0 = n0 + tx;
  ${colOffs.join('\n  ')}
  ${stores.join('\n  ')}
}
`;
}
