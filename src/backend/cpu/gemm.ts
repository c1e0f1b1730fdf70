// Single-matrix GEMM for the CPU backend: C (M x N, contiguous rows) = A (M x K) @ B (K x N), with A
// and B read through arbitrary strides. Cache-blocked (NC x KC panels of B, MC x KC blocks of A) and
// packed into float64 scratch, with a 4x4 register-tiled micro-kernel; tiny and thin problems use direct loops.
import type { DType } from '../../core/dtype.js';
import { f16DecodeTable, f32ToF16Bits } from '../../core/float16.js';

/** Micro-tile rows/columns, and the cache block sizes (A: MC x KC, B: KC x NC). */
const MR = 4;
const NR = 4;
const MC = 64;
const KC = 256;
const NC = 256;
/** Below this many multiply-adds the packing overhead outweighs the blocked kernel. */
const SMALL = 16 * 16 * 16;

/** A strided matrix operand: element (i, j) is at arr[off + i * rs + j * cs]. */
export interface MatRef {
  readonly arr: Float32Array | Uint16Array;
  readonly f16: boolean;
  readonly off: number;
  readonly rs: number;
  readonly cs: number;
}

/** The output: row-major M x N at arr[off + i * N + j], float32 or float16 (raw bits). */
export interface OutRef {
  readonly arr: Float32Array | Uint16Array;
  readonly dtype: DType;
  readonly off: number;
}

// Grow-only scratch shared by all calls (the backend is single-threaded and kernels never nest). The
// packed B panel and A block live in one array (B first) so the micro-kernel reads a single array.
let packBuf: Float64Array = new Float64Array(KC * NC + MC * KC);
let cBuf: Float64Array = new Float64Array(MC * NC);

/** C = A @ B for one (M, K) x (K, N) pair; accumulates in doubles and rounds once on store. */
export function gemm(m: number, n: number, k: number, a: MatRef, b: MatRef, c: OutRef): void {
  if (m === 0 || n === 0) return;
  if (m * n * k <= SMALL || k === 0 || n < NR || (m < MR && b.rs <= b.cs)) {
    gemmDot(m, n, k, a, b, c); // tiny, K = 0, a few columns, or a few rows against column-contiguous B
    return;
  }
  if (m < MR) {
    gemmAxpy(m, n, k, a, b, c); // a few rows (e.g. one token at a time) against row-contiguous B
    return;
  }
  const ncMax = Math.min(NC, roundUp(n, NR));
  const aBase = k * ncMax; // A block follows the B panel
  if (packBuf.length < aBase + MC * KC) packBuf = new Float64Array(aBase + MC * KC);
  if (cBuf.length < MC * ncMax) cBuf = new Float64Array(MC * ncMax);
  const pk = packBuf;
  const cc = cBuf;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    const ncp = roundUp(nc, NR);
    packB(b, k, jc, nc, ncp, pk); // all of K: panel jr holds rows 0..k of NR columns
    for (let ic = 0; ic < m; ic += MC) {
      const mc = Math.min(MC, m - ic);
      const mcp = roundUp(mc, MR);
      cc.fill(0, 0, mcp * ncp);
      for (let pc = 0; pc < k; pc += KC) {
        const kc = Math.min(KC, k - pc);
        packA(a, ic, mc, mcp, pc, kc, pk, aBase);
        for (let jr = 0; jr < ncp; jr += NR) {
          const pb = jr * k + pc * NR;
          for (let ir = 0; ir < mcp; ir += MR) kernel4x4(kc, pk, aBase + ir * kc, pb, cc, ir * ncp + jr, ncp);
        }
      }
      storeTile(cc, ncp, mc, nc, c, ic * n + jc, n);
    }
  }
}

function roundUp(x: number, r: number): number {
  return Math.ceil(x / r) * r;
}

/**
 * 4x4 micro-kernel: c[pc + i*ldc + j] += sum_p pk[pa + p*4 + i] * pk[pb + p*4 + j]. Sixteen
 * accumulators in locals; one array and int32 index arithmetic keep V8's per-load checks minimal.
 */
function kernel4x4(kc: number, pk: Float64Array, pa: number, pb: number, c: Float64Array, pc: number, ldc: number): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  const end = (pa + 4 * kc) | 0;
  while (pa < end) {
    const a0 = pk[pa]!, a1 = pk[(pa + 1) | 0]!, a2 = pk[(pa + 2) | 0]!, a3 = pk[(pa + 3) | 0]!;
    let x = pk[pb]!;
    c00 += a0 * x; c10 += a1 * x; c20 += a2 * x; c30 += a3 * x;
    x = pk[(pb + 1) | 0]!;
    c01 += a0 * x; c11 += a1 * x; c21 += a2 * x; c31 += a3 * x;
    x = pk[(pb + 2) | 0]!;
    c02 += a0 * x; c12 += a1 * x; c22 += a2 * x; c32 += a3 * x;
    x = pk[(pb + 3) | 0]!;
    c03 += a0 * x; c13 += a1 * x; c23 += a2 * x; c33 += a3 * x;
    pa = (pa + 4) | 0;
    pb = (pb + 4) | 0;
  }
  c[pc]! += c00; c[pc + 1]! += c01; c[pc + 2]! += c02; c[pc + 3]! += c03; pc += ldc;
  c[pc]! += c10; c[pc + 1]! += c11; c[pc + 2]! += c12; c[pc + 3]! += c13; pc += ldc;
  c[pc]! += c20; c[pc + 1]! += c21; c[pc + 2]! += c22; c[pc + 3]! += c23; pc += ldc;
  c[pc]! += c30; c[pc + 1]! += c31; c[pc + 2]! += c32; c[pc + 3]! += c33;
} // prettier-ignore

/**
 * Packs columns jc..jc+nc of B (all K rows) into NR-wide panels: panel jr/NR holds, for each row p,
 * NR consecutive values at bp[jr*k + p*NR + j]; columns past nc are zero.
 */
function packB(b: MatRef, k: number, jc: number, nc: number, ncp: number, bp: Float64Array): void {
  const { arr, rs, cs } = b;
  const tbl = b.f16 ? f16DecodeTable() : null;
  for (let jr = 0; jr < ncp; jr += NR) {
    const w = Math.min(NR, nc - jr);
    let q = jr * k;
    let src = b.off + (jc + jr) * cs;
    if (w === NR && !tbl) {
      for (let p = 0; p < k; p++, src += rs, q += NR) {
        bp[q] = arr[src]!;
        bp[q + 1] = arr[src + cs]!;
        bp[q + 2] = arr[src + 2 * cs]!;
        bp[q + 3] = arr[src + 3 * cs]!;
      }
    } else {
      for (let p = 0; p < k; p++, src += rs, q += NR) {
        for (let j = 0; j < NR; j++) {
          const v = j < w ? arr[src + j * cs]! : 0;
          bp[q + j] = tbl && j < w ? tbl[v]! : v;
        }
      }
    }
  }
}

/**
 * Packs rows ic..ic+mc, columns pc..pc+kc of A into MR-tall panels: panel ir/MR holds, for each p,
 * MR consecutive values at ap[base + ir*kc + p*MR + i]; rows past mc are zero.
 */
function packA(
  a: MatRef,
  ic: number,
  mc: number,
  mcp: number,
  pc: number,
  kc: number,
  ap: Float64Array,
  base: number,
): void {
  const { arr, rs, cs } = a;
  const tbl = a.f16 ? f16DecodeTable() : null;
  for (let ir = 0; ir < mcp; ir += MR) {
    const h = Math.min(MR, mc - ir);
    let q = base + ir * kc;
    let src = a.off + (ic + ir) * rs + pc * cs;
    if (h === MR && !tbl) {
      for (let p = 0; p < kc; p++, src += cs, q += MR) {
        ap[q] = arr[src]!;
        ap[q + 1] = arr[src + rs]!;
        ap[q + 2] = arr[src + 2 * rs]!;
        ap[q + 3] = arr[src + 3 * rs]!;
      }
    } else {
      for (let p = 0; p < kc; p++, src += cs, q += MR) {
        for (let i = 0; i < MR; i++) {
          const v = i < h ? arr[src + i * rs]! : 0;
          ap[q + i] = tbl && i < h ? tbl[v]! : v;
        }
      }
    }
  }
}

/** Stores the valid mc x nc corner of a tile (row stride ldt) into the output at `base`, row stride ldc. */
function storeTile(t: Float64Array, ldt: number, mc: number, nc: number, c: OutRef, base: number, ldc: number): void {
  const o = c.arr;
  const f16 = c.dtype === 'float16';
  for (let i = 0; i < mc; i++) {
    let q = c.off + base + i * ldc;
    let s = i * ldt;
    if (f16) for (let j = 0; j < nc; j++, q++, s++) o[q] = f32ToF16Bits(t[s]!);
    else for (let j = 0; j < nc; j++, q++, s++) o[q] = t[s]!;
  }
}

/** Direct dot products, one per output (K = 0 gives zeros); fine when B's columns are contiguous. */
function gemmDot(m: number, n: number, k: number, a: MatRef, b: MatRef, c: OutRef): void {
  if (!a.f16 && !b.f16) {
    gemmDotF32(m, n, k, a, b, c);
    return;
  }
  const tA = a.f16 ? f16DecodeTable() : null;
  const tB = b.f16 ? f16DecodeTable() : null;
  const f16 = c.dtype === 'float16';
  const o = c.arr;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let pa = a.off + i * a.rs;
      let pb = b.off + j * b.cs;
      for (let p = 0; p < k; p++, pa += a.cs, pb += b.rs) {
        const x = tA ? tA[a.arr[pa]!]! : a.arr[pa]!;
        const y = tB ? tB[b.arr[pb]!]! : b.arr[pb]!;
        s += x * y;
      }
      o[c.off + i * n + j] = f16 ? f32ToF16Bits(s) : s;
    }
  }
}

/** gemmDot for float32 operands: four columns of B per pass share each load of A's row. */
function gemmDotF32(m: number, n: number, k: number, a: MatRef, b: MatRef, c: OutRef): void {
  const A = a.arr as Float32Array;
  const B = b.arr as Float32Array;
  const { rs, cs } = b;
  const acs = a.cs;
  const f16 = c.dtype === 'float16';
  const o = c.arr;
  for (let i = 0; i < m; i++) {
    const row = a.off + i * a.rs;
    const out = c.off + i * n;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0; // prettier-ignore
      let q = b.off + j * cs;
      for (let p = 0, pa = row; p < k; p++, pa += acs, q += rs) {
        const x = A[pa]!;
        s0 += x * B[q]!;
        s1 += x * B[q + cs]!;
        s2 += x * B[q + 2 * cs]!;
        s3 += x * B[q + 3 * cs]!;
      }
      o[out + j] = f16 ? f32ToF16Bits(s0) : s0;
      o[out + j + 1] = f16 ? f32ToF16Bits(s1) : s1;
      o[out + j + 2] = f16 ? f32ToF16Bits(s2) : s2;
      o[out + j + 3] = f16 ? f32ToF16Bits(s3) : s3;
    }
    for (; j < n; j++) {
      let s0 = 0;
      for (let p = 0, pa = row, q = b.off + j * cs; p < k; p++, pa += acs, q += rs) s0 += A[pa]! * B[q]!;
      o[out + j] = f16 ? f32ToF16Bits(s0) : s0;
    }
  }
}

/**
 * Row-at-a-time updates acc += A[i, p] * B[p, :] over B's (contiguous) rows, four rows of B per pass
 * so that the accumulator is read and written a quarter as often: the shape of matrix-vector work.
 */
function gemmAxpy(m: number, n: number, k: number, a: MatRef, b: MatRef, c: OutRef): void {
  if (cBuf.length < n) cBuf = new Float64Array(n);
  const acc = cBuf;
  const tA = a.f16 ? f16DecodeTable() : null;
  const { rs, cs } = b;
  for (let i = 0; i < m; i++) {
    acc.fill(0, 0, n);
    const pa = a.off + i * a.rs;
    const x = (p: number): number => (tA ? tA[a.arr[pa + p * a.cs]!]! : a.arr[pa + p * a.cs]!);
    let p = 0;
    if (!b.f16) {
      const barr = b.arr as Float32Array;
      for (; p + 4 <= k; p += 4) {
        const q = b.off + p * rs;
        axpy4(n, acc, x(p), x(p + 1), x(p + 2), x(p + 3), barr, q, q + rs, q + 2 * rs, q + 3 * rs, cs);
      }
    }
    const tB = f16DecodeTable();
    for (; p < k; p++) {
      const xp = x(p);
      let q = b.off + p * rs;
      if (b.f16) for (let j = 0; j < n; j++, q += cs) acc[j]! += xp * tB[b.arr[q]!]!;
      else for (let j = 0; j < n; j++, q += cs) acc[j]! += xp * b.arr[q]!;
    }
    storeTile(acc, n, 1, n, c, i * n, n);
  }
}

/** acc[j] += x0 * B[q0 + j*cs] + x1 * B[q1 + j*cs] + x2 * B[q2 + j*cs] + x3 * B[q3 + j*cs] for j < n. */
function axpy4(
  n: number, acc: Float64Array, x0: number, x1: number, x2: number, x3: number,
  bm: Float32Array, q0: number, q1: number, q2: number, q3: number, cs: number,
): void {
  for (let j = 0; j < n; j++, q0 += cs, q1 += cs, q2 += cs, q3 += cs) {
    acc[j]! += x0 * bm[q0]! + x1 * bm[q1]! + x2 * bm[q2]! + x3 * bm[q3]!;
  }
} // prettier-ignore
