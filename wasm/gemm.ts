// The CPU backend's WebAssembly SIMD GEMM (AssemblyScript, built by scripts/build-wasm.mjs into
// src/backend/cpu/wasm/kernels.generated.ts). AssemblyScript rather than hand-written WAT: the kernel
// reads like the TypeScript around it, v128 values stay in wasm locals, and Binaryen optimizes. The module
// also carries the CPU backend's other SIMD kernels (AdamW, at the end), which share its memory and loader.
//
// Memory layout (all offsets in bytes into the one linear memory the host owns and grows):
//   raw A    the operand copied by the host, element (i, p) at rawA + 4 * (i * rs + p * cs)
//   packed A panels of MR rows: panel r holds A[r*MR + i, p] at pa + 4 * (r*MR*k + p*MR + i)
//   packed B panels of NR columns: panel s holds B[p, s*NR + j] at pb + 4 * (s*NR*k + p*NR + j)
//   C        row-major, row stride ldc (a multiple of NR), MR-row and NR-column padded
// Rows past m and columns past n pack as zeros, so the micro-kernel never needs an edge case.
//
// Micro-kernel 4x8 (8 f32x4 accumulators), chosen in a playground on this project's 2-core AMD EPYC (AVX2,
// FMA) under Node 20 (V8 11.3), kernel-only GFLOP/s per CPU-second at 256..1024^3: 4x8 42-46; 4x8 with the
// K loop unrolled by hand x2 / x4 19-21; 5x8 17-25; 6x8 20-24; 3x8 19-21; 4x8 without relaxed SIMD
// (mul + add) 26-28. V8 allocates 15 xmm registers and hoists the loads of an unrolled body, so 12
// accumulators + 2 B vectors + a broadcast spill to the stack; the plain 4x8 loop compiles to 8
// vfmadd231ps, 2 vector loads and 4 vbroadcastss per k with no spill. The 128-bit vectors cap it at
// about half of what native AVX2 code (256-bit FMA) reaches on the same core.

/** Rows and columns of the register tile. */
const MR: i32 = 4;
const NR: i32 = 8;
/** K block: a 4 x KC panel of A (4 KiB) and a KC x 8 panel of B (8 KiB) sit in L1. */
const KC: i32 = 256;
/** Panels of A per M block: 24 panels = 96 rows x KC = 96 KiB of A stay in L2. */
const MCP: i32 = 24;

/** c + a * b, fused when the module is built with relaxed SIMD (small enough that Binaryen inlines it). */
function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * C[0..4, 0..8] (+)= A panel (4 x kc) @ B panel (kc x 8). `a`, `b` point at the packed panels, `c` at
 * the tile, `ldcb` is C's row stride in bytes; `first` stores instead of accumulating (the first K block).
 */
export function kernel4x8(kc: i32, a: usize, b: usize, c: usize, ldcb: usize, first: bool): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  const end = b + ((<usize>kc) << 5); // kc rows of 8 floats
  while (b < end) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let x = v128.load32_splat(a);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    x = v128.load32_splat(a, 4);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    x = v128.load32_splat(a, 8);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    x = v128.load32_splat(a, 12);
    c30 = madd(x, b0, c30);
    c31 = madd(x, b1, c31);
    a += 16;
    b += 32;
  }
  if (!first) {
    c00 = f32x4.add(c00, v128.load(c));
    c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(c + ldcb));
    c11 = f32x4.add(c11, v128.load(c + ldcb, 16));
    c20 = f32x4.add(c20, v128.load(c + 2 * ldcb));
    c21 = f32x4.add(c21, v128.load(c + 2 * ldcb, 16));
    c30 = f32x4.add(c30, v128.load(c + 3 * ldcb));
    c31 = f32x4.add(c31, v128.load(c + 3 * ldcb, 16));
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c + ldcb, c10);
  v128.store(c + ldcb, c11, 16);
  v128.store(c + 2 * ldcb, c20);
  v128.store(c + 2 * ldcb, c21, 16);
  v128.store(c + 3 * ldcb, c30);
  v128.store(c + 3 * ldcb, c31, 16);
}

/**
 * Packs all of B (k x n, element (p, j) at src + 4 * (p * rs + j * cs)) into NR-column panels at `dst`.
 * Strides are non-negative element counts (0 for a broadcast dim).
 */
export function packB(src: usize, rs: i32, cs: i32, k: i32, n: i32, dst: usize): void {
  packBPanels(src, rs, cs, k, n, dst, 0, (n + NR - 1) / NR, 0, k);
}

/** 4x4 transpose: row q of the result is lane q of x0..x3 (x_j is column j of a 4 x 4 block). */
function tr4(x0: v128, x1: v128, x2: v128, x3: v128, d: usize): void {
  const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
  v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
  v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
  v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
}

/**
 * packB for panels s0..s1 and rows p0..p1 only (disjoint ranges may run on several threads), each value
 * where packB puts it.
 */
function packBPanels(
  src: usize,
  rs: i32,
  cs: i32,
  k: i32,
  n: i32,
  dst: usize,
  s0: i32,
  s1: i32,
  p0: i32,
  p1: i32,
): void {
  const rsb = (<usize>rs) << 2;
  const csb = (<usize>cs) << 2;
  for (let q = s0; q < s1; q++) {
    const j0 = q * NR;
    const w = min(NR, n - j0);
    let d = dst + ((<usize>j0 * k + <usize>p0 * NR) << 2);
    let s = src + ((<usize>j0 * cs + <usize>p0 * rs) << 2);
    let p = p0;
    if (w == NR && cs == 1) {
      for (; p < p1; p++) {
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
        s += rsb;
        d += 32;
      }
    } else if (w == NR && rs == 1) {
      // B stored transposed (its columns contiguous): 4 x 4 blocks transposed in registers
      for (; p + 4 <= p1; p += 4) {
        tr4(v128.load(s), v128.load(s + csb), v128.load(s + 2 * csb), v128.load(s + 3 * csb), d);
        const s4 = s + 4 * csb;
        tr4(v128.load(s4), v128.load(s4 + csb), v128.load(s4 + 2 * csb), v128.load(s4 + 3 * csb), d + 16);
        s += 16;
        d += 128;
      }
    }
    for (; p < p1; p++) {
      for (let j = 0; j < NR; j++) store<f32>(d + ((<usize>j) << 2), j < w ? load<f32>(s + <usize>j * csb) : 0);
      s += rsb;
      d += 32;
    }
  }
}

/** Packs A's MR-row panels r0..r1 (rows r0*MR.. of an m x k operand laid out like B in packB) at `dst`. */
function packA(src: usize, rs: i32, cs: i32, m: i32, k: i32, r0: i32, r1: i32, dst: usize): void {
  const rsb = (<usize>rs) << 2;
  const csb = (<usize>cs) << 2;
  for (let r = r0; r < r1; r++) {
    const i0 = r * MR;
    const h = min(MR, m - i0);
    let d = dst + ((<usize>i0 * k) << 2);
    let s = src + <usize>i0 * rsb;
    if (h == MR && rs == 1) {
      for (let p = 0; p < k; p++) {
        v128.store(d, v128.load(s)); // four rows of one column are contiguous
        s += csb;
        d += 16;
      }
    } else if (h == MR) {
      for (let p = 0; p < k; p++) {
        store<f32>(d, load<f32>(s));
        store<f32>(d, load<f32>(s + rsb), 4);
        store<f32>(d, load<f32>(s + 2 * rsb), 8);
        store<f32>(d, load<f32>(s + 3 * rsb), 12);
        s += csb;
        d += 16;
      }
    } else {
      for (let p = 0; p < k; p++) {
        for (let i = 0; i < MR; i++) store<f32>(d + ((<usize>i) << 2), i < h ? load<f32>(s + <usize>i * rsb) : 0);
        s += csb;
        d += 16;
      }
    }
  }
}

/**
 * Rows r0*MR .. r1*MR of C (ldc floats per row) = A @ B, where B is already packed at `pb` (np panels)
 * and A (m x k, raw at `srcA` with element strides rsA, csA) is packed here, panels r0..r1 only, into
 * `pa`. Callers on several threads pass disjoint panel ranges over the same memory.
 */
export function gemm(
  srcA: usize,
  rsA: i32,
  csA: i32,
  m: i32,
  k: i32,
  pa: usize,
  pb: usize,
  np: i32,
  c: usize,
  ldc: i32,
  r0: i32,
  r1: i32,
): void {
  gemmPanels(srcA, rsA, csA, m, k, pa, pb, np, c, ldc, r0, r1, false);
}

/**
 * gemm, adding A @ B to C instead of overwriting it: the host splits a long K into chunks (multiples of
 * KC) and runs this for every chunk after the first, which adds in the same order as one unsplit call.
 */
export function gemmAcc(
  srcA: usize,
  rsA: i32,
  csA: i32,
  m: i32,
  k: i32,
  pa: usize,
  pb: usize,
  np: i32,
  c: usize,
  ldc: i32,
  r0: i32,
  r1: i32,
): void {
  gemmPanels(srcA, rsA, csA, m, k, pa, pb, np, c, ldc, r0, r1, true);
}

/** gemm and gemmAcc: `acc` keeps C's contents as the starting sum of the first K block. */
function gemmPanels(
  srcA: usize,
  rsA: i32,
  csA: i32,
  m: i32,
  k: i32,
  pa: usize,
  pb: usize,
  np: i32,
  c: usize,
  ldc: i32,
  r0: i32,
  r1: i32,
  acc: bool,
): void {
  packA(srcA, rsA, csA, m, k, r0, r1, pa);
  const ldcb = (<usize>ldc) << 2;
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    const first = pc == 0 && !acc;
    for (let ic = r0; ic < r1; ic += MCP) {
      const ie = min(ic + MCP, r1);
      for (let s = 0; s < np; s++) {
        const b = pb + ((<usize>s * NR * k + <usize>pc * NR) << 2);
        const cs = c + ((<usize>s * NR) << 2);
        for (let r = ic; r < ie; r++) {
          const a = pa + ((<usize>r * MR * k + <usize>pc * MR) << 2);
          kernel4x8(kc, a, b, cs + <usize>r * MR * ldcb, ldcb, first);
        }
      }
    }
  }
}

/** Panels of A per M block in gemmCols: 64 panels = 256 rows x KC = 256 KiB of A stay in L2. */
const MCC: i32 = 64;

/** Packs A's row panels r0..r1 at `pa` for gemmCols (a pooled job: threads take disjoint ranges, tid unused). */
export function packAJob(srcA: usize, rsA: i32, csA: i32, m: i32, k: i32, pa: usize, r0: i32, r1: i32, tid: i32): void {
  packA(srcA, rsA, csA, m, k, r0, r1, pa);
}

/**
 * Column panels s0..s1 of C (ldc floats per row) = A @ B with all mp row panels of A already packed at
 * `pa` (packAJob): packs B's panels s0..s1 (raw k x n at srcB, element strides rsB, csB) into `pb`, then
 * multiplies them by every row panel. The split for few rows (M = 256 against a wide B): threads take
 * disjoint column ranges, each packs only its own B and reuses all of A from L2. Every C tile gets the
 * same kernel calls in the same order as in gemm, so the bits match it. tid unused.
 */
export function gemmCols(
  srcB: usize,
  rsB: i32,
  csB: i32,
  k: i32,
  n: i32,
  pb: usize,
  pa: usize,
  mp: i32,
  c: usize,
  ldc: i32,
  s0: i32,
  s1: i32,
  tid: i32,
): void {
  colPanels(srcB, rsB, csB, k, n, pb, pa, mp, c, ldc, s0, s1, false);
}

/** gemmCols adding A @ B to C (the K chunks after the first, as gemmAcc). */
export function gemmColsAcc(
  srcB: usize,
  rsB: i32,
  csB: i32,
  k: i32,
  n: i32,
  pb: usize,
  pa: usize,
  mp: i32,
  c: usize,
  ldc: i32,
  s0: i32,
  s1: i32,
  tid: i32,
): void {
  colPanels(srcB, rsB, csB, k, n, pb, pa, mp, c, ldc, s0, s1, true);
}

/** gemmCols and gemmColsAcc: `acc` keeps C's contents as the starting sum of the first K block. */
function colPanels(
  srcB: usize,
  rsB: i32,
  csB: i32,
  k: i32,
  n: i32,
  pb: usize,
  pa: usize,
  mp: i32,
  c: usize,
  ldc: i32,
  s0: i32,
  s1: i32,
  acc: bool,
): void {
  const ldcb = (<usize>ldc) << 2;
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    const first = pc == 0 && !acc;
    packBPanels(srcB, rsB, csB, k, n, pb, s0, s1, pc, pc + kc); // packed just before use, while in L2
    for (let ic = 0; ic < mp; ic += MCC) {
      const ie = min(ic + MCC, mp);
      for (let s = s0; s < s1; s++) {
        const b = pb + ((<usize>s * NR * k + <usize>pc * NR) << 2);
        const cs = c + ((<usize>s * NR) << 2);
        for (let r = ic; r < ie; r++) {
          const a = pa + ((<usize>r * MR * k + <usize>pc * MR) << 2);
          kernel4x8(kc, a, b, cs + <usize>r * MR * ldcb, ldcb, first);
        }
      }
    }
  }
}

/**
 * Batch items i0..i1 of one batched product, each C_i (m x n, row stride NR-padded n) = A_i @ B_i, every
 * item whole on the calling thread: many small items (attention's 48 products of 64 x 64 x 64) as one
 * pooled job instead of one single-threaded call each. Item i's raw operands and C are described at
 * tbl + 32 i (byte addresses and element strides, i32): srcA, rsA, csA, srcB, rsB, csB, c. Each thread
 * packs into its own scratch at scratch + tid * scratchBytes (A panels, then B panels). The same packing
 * and kernel calls as gemm over all of an item's rows, so the bits match it.
 */
export function gemmItems(
  tbl: usize,
  m: i32,
  n: i32,
  k: i32,
  scratch: usize,
  scratchBytes: i32,
  i0: i32,
  i1: i32,
  tid: i32,
): void {
  const mp = (m + MR - 1) / MR;
  const np = (n + NR - 1) / NR;
  const pa = scratch + <usize>tid * <usize>scratchBytes;
  const pb = pa + ((<usize>mp * MR * k) << 2);
  for (let i = i0; i < i1; i++) {
    const t = tbl + <usize>i * 32;
    packB(load<i32>(t, 12), load<i32>(t, 16), load<i32>(t, 20), k, n, pb);
    gemmPanels(
      load<i32>(t),
      load<i32>(t, 4),
      load<i32>(t, 8),
      m,
      k,
      pa,
      pb,
      np,
      load<i32>(t, 24),
      np * NR,
      0,
      mp,
      false,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// AdamW (not a GEMM: it shares this module so that one build, one memory and one load serve both).

/**
 * One Adam/AdamW step, in place, over n4 (a multiple of 4) float32 elements at the byte addresses p, g,
 * m, v and (when `ams`) x = the AMSGrad maximum; the host pads the last vector and ignores its padding.
 * The same formula as src/backend/cpu/adamw.ts, in f32 lanes with the host's float64 constants rounded
 * to f32 (c1 = 1 - β1, c2 = 1 - β2, step = lr / (1 - β1^t), rbc2 = 1 / sqrt(1 - β2^t), decay = 1 - lr·λ
 * or 1, l2 = λ or 0, sign = ±1 for maximize). Multiply then add, never fused, so that every variant of
 * the module gives the same bits.
 */
export function adamw(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  x: usize,
  n4: i32,
  b1: f32,
  c1: f32,
  b2: f32,
  c2: f32,
  eps: f32,
  step: f32,
  rbc2: f32,
  decay: f32,
  l2: f32,
  sign: f32,
  ams: i32,
): void {
  const vb1 = f32x4.splat(b1);
  const vc1 = f32x4.splat(c1);
  const vb2 = f32x4.splat(b2);
  const vc2 = f32x4.splat(c2);
  const veps = f32x4.splat(eps);
  const vstep = f32x4.splat(step);
  const vrbc2 = f32x4.splat(rbc2);
  const vdecay = f32x4.splat(decay);
  const vl2 = f32x4.splat(l2);
  const vsign = f32x4.splat(sign);
  const end = (<usize>n4) << 2;
  for (let o: usize = 0; o < end; o += 16) {
    const th0 = v128.load(p + o);
    const gi = f32x4.add(f32x4.mul(vsign, v128.load(g + o)), f32x4.mul(vl2, th0));
    const mi = f32x4.add(f32x4.mul(vb1, v128.load(m + o)), f32x4.mul(vc1, gi));
    const vi = f32x4.add(f32x4.mul(vb2, v128.load(v + o)), f32x4.mul(f32x4.mul(vc2, gi), gi));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    let u = vi;
    if (ams) {
      // max that keeps a NaN from either side, like Math.max
      const xm = v128.load(x + o);
      u = v128.bitselect(xm, vi, f32x4.gt(xm, vi));
      u = v128.bitselect(xm, u, f32x4.ne(xm, xm));
      v128.store(x + o, u);
    }
    const th = f32x4.mul(th0, vdecay);
    const den = f32x4.add(f32x4.mul(f32x4.sqrt(u), vrbc2), veps);
    v128.store(p + o, f32x4.sub(th, f32x4.div(f32x4.mul(vstep, mi), den)));
  }
}

// ---------------------------------------------------------------------------------------------------
// exp in f32 lanes, for the softmax cross-entropy rows below.

/** e^z per lane (Cephes expf: z = n ln2 + r, |r| <= ln2 / 2, degree-5 polynomial), z clamped to ±87. */
function expv(z: v128): v128 {
  z = f32x4.min(f32x4.max(z, f32x4.splat(-87)), f32x4.splat(87));
  const n = f32x4.nearest(f32x4.mul(z, f32x4.splat(1.4426950408889634)));
  let r = f32x4.sub(z, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.1219444e-4)));
  let p = f32x4.splat(1.98756915e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(y, pow2n);
}

// ---------------------------------------------------------------------------------------------------
// Softmax cross-entropy rows (50257-wide logits): the forward's max and sums and the backward's gradient
// row, in f32 lanes with sums kept in f64. exp underflows to exactly 0 below -87 (as the float64 formula
// nearly does), so an all -Inf row still sums to 0 and a masked logit gets a zero gradient.

/** e^z per lane, exactly 0 where z < -87 (expv clamps there instead). */
function expz(z: v128): v128 {
  return v128.andnot(expv(z), f32x4.lt(z, f32x4.splat(-87)));
}

/** The f64 sum of a vector's four f32 lanes added to `acc` (two f64 lanes). */
function addF64(acc: v128, v: v128): v128 {
  acc = f64x2.add(acc, f64x2.promote_low_f32x4(v));
  return f64x2.add(acc, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
}

/**
 * One logits row of c floats at byte address x: writes f64 max (0 when every logit is -Inf; NaN when any
 * is NaN), sum of exp(z - max) and sum of z at byte address out (3 doubles).
 */
export function ceRowStats(x: usize, c: i32, out: usize): void {
  const c4 = (<usize>(c & ~3)) << 2;
  const end = (<usize>c) << 2;
  let vm = f32x4.splat(-Infinity);
  for (let i: usize = 0; i < c4; i += 16) vm = f32x4.max(vm, v128.load(x + i)); // NaN-propagating
  let m = f32x4.max(vm, v128.shuffle<f32>(vm, vm, 2, 3, 0, 1));
  m = f32x4.max(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2));
  let max = f32x4.extract_lane(m, 0);
  for (let i = c4; i < end; i += 4) {
    const v = load<f32>(x + i);
    if (v > max || v != v) max = v;
  }
  if (max == -Infinity) max = 0;
  const mv = f32x4.splat(max);
  let s = f64x2.splat(0);
  let sz = f64x2.splat(0);
  for (let i: usize = 0; i < c4; i += 16) {
    const v = v128.load(x + i);
    s = addF64(s, expz(f32x4.sub(v, mv)));
    sz = addF64(sz, v);
  }
  let ss = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  let szz = f64x2.extract_lane(sz, 0) + f64x2.extract_lane(sz, 1);
  for (let i = c4; i < end; i += 4) {
    const v = load<f32>(x + i);
    ss += <f64>f32x4.extract_lane(expz(f32x4.splat(v - max)), 0);
    szz += <f64>v;
  }
  store<f64>(out, <f64>max);
  store<f64>(out + 8, ss);
  store<f64>(out + 16, szz);
}

/** o[j] = up * (exp(x[j] - lse) - off) for the c floats of one row (o may be x). */
export function ceRowGrad(x: usize, o: usize, c: i32, lse: f32, up: f32, off: f32): void {
  const c4 = (<usize>(c & ~3)) << 2;
  const end = (<usize>c) << 2;
  const vl = f32x4.splat(lse);
  const vu = f32x4.splat(up);
  const vo = f32x4.splat(off);
  for (let i: usize = 0; i < c4; i += 16) {
    v128.store(o + i, f32x4.mul(vu, f32x4.sub(expz(f32x4.sub(v128.load(x + i), vl)), vo)));
  }
  for (let i = c4; i < end; i += 4) {
    const e = f32x4.extract_lane(expz(f32x4.splat(load<f32>(x + i) - lse)), 0);
    store<f32>(o + i, up * (e - off));
  }
}

/**
 * ceRowStats for rows r0..r1 of c floats each (row r at x + 4 r c), stats of row r at out + 24 r: a job of
 * the worker pool, whose threads take disjoint row ranges (tid unused).
 */
export function ceStatsRows(x: usize, c: i32, out: usize, r0: i32, r1: i32, tid: i32): void {
  for (let r = r0; r < r1; r++) ceRowStats(x + ((<usize>r * c) << 2), c, out + <usize>r * 24);
}

/**
 * ceRowGrad in place for rows r0..r1 laid out as in ceStatsRows, row r's lse and up (f32) at lu + 8 r;
 * `offBits` is off's f32 bit pattern (pooled jobs pass i32 arguments only). A job of the worker pool.
 */
export function ceGradRows(x: usize, c: i32, lu: usize, offBits: i32, r0: i32, r1: i32, tid: i32): void {
  const off = reinterpret<f32>(offBits);
  for (let r = r0; r < r1; r++) {
    const p = x + ((<usize>r * c) << 2);
    const q = lu + ((<usize>r) << 3);
    ceRowGrad(p, p, c, load<f32>(q), load<f32>(q, 4), off);
  }
}

// ---------------------------------------------------------------------------------------------------
// conv2d as implicit GEMMs on the kernel above (wasm/conv.ts).
export { convForward, convBackwardInput, convBackwardWeight, convSumSlices, convPad } from './conv';
export { dwForward, dwBackwardInput, dwBackwardWeight } from './depthwise';
// Small-M matmul streaming B without packing (wasm/gemv.ts).
export { gemvRows, gemvCols } from './gemv';
// softmax / logSoftmax and layerNorm forward and backward rows (wasm/rows.ts).
export { softmaxRows, softmaxRowsJob, layerNormRows, layerNormBackRows } from './rows';
// Dense float32 add / sub / mul (wasm/elementwise.ts).
export { binaryF32 } from './elementwise';
// gelu, broadcast binary ops, column / row sums and layer norm parameter gradients (wasm/ewfast.ts).
export { geluF32, geluBlocksF32, binaryBcastF32, colSumF32, rowSumF32, lnParamsF32 } from './ewfast';
