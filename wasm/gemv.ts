// Small-M matmul (GEMV) kernels: C (m x n, m <= ~8) = A (m x k) @ B, streaming B once without packing, for
// one decoding step of a KV-cached GPT. Memory-bound: B is read once, A and C stay in L1/L2. Re-exported by
// gemm.ts so that they share its module, memory and worker pool; both are pool jobs over column panels.
// Each output element is computed by the same instructions whichever panel range or thread runs it, so
// results do not depend on the thread count or on where the host splits N.

/** Columns of C per panel of gemvRows (four f32x4 accumulators). */
const NP: i32 = 16;

/** c + a * b, fused when the module is built with relaxed SIMD (as in gemm.ts). */
function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * B row-major: C[i, j] (+)= sum_p A[i, p] * B[p, j] for the column panels r0..r1 (NP columns each) and
 * i < m. A at `a` (row stride lda floats), B's k rows at `b` (row stride ldb floats), C at `c` (row stride
 * ldc floats, a multiple of NP). `first` stores instead of adding (the first of K chunks the host streams).
 * Lanes past the last column read whatever follows B's row (the host pads the region) and land in C's
 * padding columns, so there is no edge case.
 */
export function gemvRows(
  a: usize,
  lda: i32,
  m: i32,
  k: i32,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  first: i32,
  r0: i32,
  r1: i32,
  tid: i32,
): void {
  const ldbb = (<usize>ldb) << 2;
  const ldcb = (<usize>ldc) << 2;
  const ldab = (<usize>lda) << 2;
  for (let r = r0; r < r1; r++) {
    const col = (<usize>(r * NP)) << 2;
    let i = 0;
    // two rows of A per pass share each load of B (the pass is bound by loads from L2, not by FMAs)
    for (; i + 2 <= m; i += 2) {
      const ci = c + <usize>i * ldcb + col;
      let c0 = f32x4.splat(0);
      let c1 = f32x4.splat(0);
      let c2 = f32x4.splat(0);
      let c3 = f32x4.splat(0);
      let d0 = f32x4.splat(0);
      let d1 = f32x4.splat(0);
      let d2 = f32x4.splat(0);
      let d3 = f32x4.splat(0);
      if (!first) {
        c0 = v128.load(ci);
        c1 = v128.load(ci, 16);
        c2 = v128.load(ci, 32);
        c3 = v128.load(ci, 48);
        d0 = v128.load(ci + ldcb);
        d1 = v128.load(ci + ldcb, 16);
        d2 = v128.load(ci + ldcb, 32);
        d3 = v128.load(ci + ldcb, 48);
      }
      let ap = a + <usize>i * ldab;
      const aEnd = ap + ((<usize>k) << 2);
      let bp = b + col;
      while (ap < aEnd) {
        const x = v128.load32_splat(ap);
        const y = v128.load32_splat(ap + ldab);
        let v = v128.load(bp);
        c0 = madd(x, v, c0);
        d0 = madd(y, v, d0);
        v = v128.load(bp, 16);
        c1 = madd(x, v, c1);
        d1 = madd(y, v, d1);
        v = v128.load(bp, 32);
        c2 = madd(x, v, c2);
        d2 = madd(y, v, d2);
        v = v128.load(bp, 48);
        c3 = madd(x, v, c3);
        d3 = madd(y, v, d3);
        ap += 4;
        bp += ldbb;
      }
      v128.store(ci, c0);
      v128.store(ci, c1, 16);
      v128.store(ci, c2, 32);
      v128.store(ci, c3, 48);
      v128.store(ci + ldcb, d0);
      v128.store(ci + ldcb, d1, 16);
      v128.store(ci + ldcb, d2, 32);
      v128.store(ci + ldcb, d3, 48);
    }
    // an odd last row: the same sequence of multiply-adds per element, so pairing does not change the bits
    if (i < m) {
      const ci = c + <usize>i * ldcb + col;
      let c0 = f32x4.splat(0);
      let c1 = f32x4.splat(0);
      let c2 = f32x4.splat(0);
      let c3 = f32x4.splat(0);
      if (!first) {
        c0 = v128.load(ci);
        c1 = v128.load(ci, 16);
        c2 = v128.load(ci, 32);
        c3 = v128.load(ci, 48);
      }
      let ap = a + <usize>i * ldab;
      const aEnd = ap + ((<usize>k) << 2);
      let bp = b + col;
      while (ap < aEnd) {
        const x = v128.load32_splat(ap);
        c0 = madd(x, v128.load(bp), c0);
        c1 = madd(x, v128.load(bp, 16), c1);
        c2 = madd(x, v128.load(bp, 32), c2);
        c3 = madd(x, v128.load(bp, 48), c3);
        ap += 4;
        bp += ldbb;
      }
      v128.store(ci, c0);
      v128.store(ci, c1, 16);
      v128.store(ci, c2, 32);
      v128.store(ci, c3, 48);
    }
  }
}

/** sum_p x[p] * y[p] for p < k: four f32x4 partial sums over 16-float steps, then 4-float steps, then scalars. */
function dot(x: usize, y: usize, k: i32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let s2 = f32x4.splat(0);
  let s3 = f32x4.splat(0);
  const end16 = x + ((<usize>(k & ~15)) << 2);
  while (x < end16) {
    s0 = madd(v128.load(x), v128.load(y), s0);
    s1 = madd(v128.load(x, 16), v128.load(y, 16), s1);
    s2 = madd(v128.load(x, 32), v128.load(y, 32), s2);
    s3 = madd(v128.load(x, 48), v128.load(y, 48), s3);
    x += 64;
    y += 64;
  }
  const end4 = x + ((<usize>(k & 12)) << 2);
  while (x < end4) {
    s0 = madd(v128.load(x), v128.load(y), s0);
    x += 16;
    y += 16;
  }
  const s = f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3));
  let t = f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + (f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3));
  for (let p = 0; p < (k & 3); p++) t += load<f32>(x + ((<usize>p) << 2)) * load<f32>(y + ((<usize>p) << 2));
  return t;
}

/**
 * B transposed (an n x k row-major matrix, row j at b + 4 * j * ldb): C[i, j] = dot(A row i, B row j) for
 * the rows j of panels r0..r1 (4 rows each, clamped to n) and i < m. A at `a` (row stride lda floats), C at
 * `c` (row stride ldc floats). Dot products over K keep each B row in L1 while the m rows of A pass over it.
 */
export function gemvCols(
  a: usize,
  lda: i32,
  m: i32,
  k: i32,
  b: usize,
  ldb: i32,
  n: i32,
  c: usize,
  ldc: i32,
  r0: i32,
  r1: i32,
  tid: i32,
): void {
  const j1 = min(n, r1 * 4);
  for (let j = r0 * 4; j < j1; j++) {
    const bj = b + ((<usize>j * ldb) << 2);
    // one dot per row of A: pairing rows to share B's loads measured slower (M = 8, 50257^T: 34 -> 48 ms)
    const cj = c + ((<usize>j) << 2);
    for (let i = 0; i < m; i++) store<f32>(cj + ((<usize>(i * ldc)) << 2), dot(a + ((<usize>(i * lda)) << 2), bj, k));
  }
}
