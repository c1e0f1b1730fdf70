// Elementwise and reduction kernels of the CPU backend over float32 data staged contiguously by
// src/backend/cpu/wasmelementwise.ts and wasmreduce.ts: gelu and its gradient, binary ops against a
// broadcast row, column or scalar, column sums (bias gradients), row sums, and layer norm's parameter
// gradients. Re-exported from wasm/gemm.ts. V8 (11.3) rematerializes every f32x4.splat constant inside a
// loop (three instructions each) and lowers f32x4.min/max, nearest and trunc_sat to long NaN-safe
// sequences; the gelu kernels below use pmin/pmax, the 1.5 * 2^23 rounding trick and two vectors per
// iteration, measured 3.5x faster than the gelu of wasm/gemm.ts on this project's 2-core AMD EPYC.

/** c + a * b, fused where the module is built with relaxed SIMD. */
function fmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

const GC: f32 = 0.7978845608028654; // sqrt(2 / pi)
const GA: f32 = 0.044715;

// Binaryen (-O3) inlines a function into its only caller but not a large one with several, and a call per
// vector costs the kernels 2x (spills, no interleaving); hence one copy of exp per vector of the loop bodies.

/** x clamped to ±20 (NaN stays NaN: pmax / pmin return their first operand on NaN). */
function clamp20(x: v128): v128 {
  return f32x4.pmin(f32x4.pmax(x, f32x4.splat(-20)), f32x4.splat(20));
}

/** z = -2u = -2 c (x + a x^3) of clamped x, itself clamped to ±87 for exp. */
function geluZ(xc: v128): v128 {
  const z = f32x4.mul(xc, fmadd(f32x4.mul(xc, xc), f32x4.splat(-2 * GC * GA), f32x4.splat(-2 * GC)));
  return f32x4.pmin(f32x4.pmax(z, f32x4.splat(-87)), f32x4.splat(87));
}

/**
 * 2^n as f32 lanes from t = z log2(e) + 1.5 * 2^23 (the low mantissa bits of t hold n = round(z log2 e)).
 */
function pow2(t: v128): v128 {
  return i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
}

// One exp, inlined by AssemblyScript at each of its four call sites (`@inline`, where four hand-written
// copies stood before; the built kernels compute the same bits); a static method, because prettier cannot
// parse a decorator on a plain function.
class Fast {
  /**
   * e^z for z in ±87: z = n ln2 + r with |r| <= ln2 / 2 and the Cephes degree-5 polynomial; n is rounded by
   * adding 1.5 * 2^23 (cheaper in V8 than nearest + trunc_sat).
   */
  @inline static exp(z: v128): v128 {
    const t = fmadd(z, f32x4.splat(1.4426950408889634), f32x4.splat(12582912));
    const n = f32x4.sub(t, f32x4.splat(12582912));
    let r = fmadd(n, f32x4.splat(-0.693359375), z);
    r = fmadd(n, f32x4.splat(2.1219444e-4), r);
    let p = fmadd(f32x4.splat(1.98756915e-4), r, f32x4.splat(1.3981999507e-3));
    p = fmadd(p, r, f32x4.splat(8.3334519073e-3));
    p = fmadd(p, r, f32x4.splat(4.1665795894e-2));
    p = fmadd(p, r, f32x4.splat(1.6666665459e-1));
    p = fmadd(p, r, f32x4.splat(5.0000001201e-1));
    return f32x4.mul(f32x4.add(fmadd(f32x4.mul(p, r), r, r), f32x4.splat(1)), pow2(t));
  }
}

/** gelu = x s, s = 1 / (1 + e) = 0.5 (1 + tanh u), e = exp(-2u); gelu(-Inf) is NaN (-Inf * 0 in f64). */
function geluOut(x: v128, e: v128): v128 {
  const y = f32x4.div(x, f32x4.add(f32x4.splat(1), e));
  return v128.bitselect(f32x4.splat(NaN), y, f32x4.eq(x, f32x4.splat(-Infinity)));
}

/** g gelu'(x), gelu' = s + 2 c x (1 + 3 a x^2) e s^2 (x clamped to xc); NaN at x = ±Inf. */
function geluGradOut(x: v128, xc: v128, e: v128, g: v128): v128 {
  const s = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), e));
  const k = f32x4.mul(xc, fmadd(f32x4.mul(xc, xc), f32x4.splat(6 * GC * GA), f32x4.splat(2 * GC)));
  const r = f32x4.mul(g, fmadd(f32x4.mul(k, f32x4.mul(e, s)), s, s));
  return v128.bitselect(f32x4.splat(NaN), r, f32x4.eq(f32x4.abs(x), f32x4.splat(Infinity)));
}

/**
 * o[i] = gelu(x[i]) (grad = 0) or g[i] gelu'(x[i]) (grad != 0) over n8 (a multiple of 8) floats at byte
 * addresses x, g and o (o may be x or g). Two vectors per iteration: their exps interleave.
 */
export function geluF32(x: usize, g: usize, o: usize, n8: i32, grad: i32): void {
  const end = (<usize>n8) << 2;
  if (grad) {
    for (let i: usize = 0; i < end; i += 32) {
      const a = v128.load(x + i);
      const b = v128.load(x + i, 16);
      const ac = clamp20(a);
      const bc = clamp20(b);
      const ea = Fast.exp(geluZ(ac));
      const eb = Fast.exp(geluZ(bc));
      v128.store(o + i, geluGradOut(a, ac, ea, v128.load(g + i)));
      v128.store(o + i, geluGradOut(b, bc, eb, v128.load(g + i, 16)), 16);
    }
    return;
  }
  for (let i: usize = 0; i < end; i += 32) {
    const a = v128.load(x + i);
    const b = v128.load(x + i, 16);
    const ea = Fast.exp(geluZ(clamp20(a)));
    const eb = Fast.exp(geluZ(clamp20(b)));
    v128.store(o + i, geluOut(a, ea));
    v128.store(o + i, geluOut(b, eb), 16);
  }
}

// ---------------------------------------------------------------------------------------------------
// Binary ops with a broadcast operand. Op codes: 0 add, 1 sub, 2 mul, 3 div, 4 reversed sub (y - x),
// 5 reversed div (y / x). One correctly rounded f32 operation per element: the same bits as the JS loops
// (which compute in f64 and round once; exact for + - * / of two f32).

function opv(op: i32, x: v128, y: v128): v128 {
  if (op == 0) return f32x4.add(x, y);
  if (op == 1) return f32x4.sub(x, y);
  if (op == 2) return f32x4.mul(x, y);
  if (op == 3) return f32x4.div(x, y);
  if (op == 4) return f32x4.sub(y, x);
  return f32x4.div(y, x);
}

function ops(op: i32, x: f32, y: f32): f32 {
  if (op == 0) return x + y;
  if (op == 1) return x - y;
  if (op == 2) return x * y;
  if (op == 3) return x / y;
  if (op == 4) return y - x;
  return y / x;
}

/** o[i] = a[i] op y for c floats (any c) at byte addresses a and o. */
function rowScalar(a: usize, o: usize, c: i32, y: f32, op: i32): void {
  const c4 = (<usize>(c & ~3)) << 2;
  const end = (<usize>c) << 2;
  const yv = f32x4.splat(y);
  let i: usize = 0;
  if (op == 0) for (; i < c4; i += 16) v128.store(o + i, f32x4.add(v128.load(a + i), yv));
  else if (op == 2) for (; i < c4; i += 16) v128.store(o + i, f32x4.mul(v128.load(a + i), yv));
  else for (; i < c4; i += 16) v128.store(o + i, opv(op, v128.load(a + i), yv));
  for (; i < end; i += 4) store<f32>(o + i, ops(op, load<f32>(a + i), y));
}

/**
 * `rows` rows of c floats (row r at a + 4 r c and o + 4 r c; o may be a) against a broadcast operand at b:
 * mode 0 a row vector of c floats (o[r, j] = a[r, j] op b[j]), mode 1 a column of `rows` floats
 * (a[r, j] op b[r]), mode 2 one scalar (a[r, j] op b[0]).
 */
export function binaryBcastF32(a: usize, b: usize, o: usize, rows: i32, c: i32, mode: i32, op: i32): void {
  const rb = (<usize>c) << 2;
  if (mode != 0) {
    for (let r = 0; r < rows; r++) {
      const y = load<f32>(mode == 1 ? b + ((<usize>r) << 2) : b);
      rowScalar(a + <usize>r * rb, o + <usize>r * rb, c, y, op);
    }
    return;
  }
  const c4 = (<usize>(c & ~3)) << 2;
  for (let r = 0; r < rows; r++) {
    const pa = a + <usize>r * rb;
    const po = o + <usize>r * rb;
    let i: usize = 0;
    for (; i < c4; i += 16) v128.store(po + i, opv(op, v128.load(pa + i), v128.load(b + i)));
    for (; i < rb; i += 4) store<f32>(po + i, ops(op, load<f32>(pa + i), load<f32>(b + i)));
  }
}

// ---------------------------------------------------------------------------------------------------
// Reductions, summed in f64 lanes.

/** Two f64 lanes of the low (hi = 0) or high half of an f32x4. */
function half(v: v128, hi: i32): v128 {
  return hi ? f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)) : f64x2.promote_low_f32x4(v);
}

/**
 * acc[j] (f64, byte address acc) += sum over `rows` rows of x[r, j] for the c columns of rows at x (row r
 * at x + 4 r c). Rows go in groups of four, acc + (((x0 + x1) + x2) + x3) in f64, then one at a time: the
 * order and the bits of the JS kernel (reduce.ts sumLeadingRows) when chunks hold multiples of 4 rows.
 * Columns [j0, j1) only (multiples of 4, or j1 = c): a job for disjoint column ranges on threads.
 */
export function colSumF32(x: usize, acc: usize, rows: i32, c: i32, j0: i32, j1: i32): void {
  const rb = (<usize>c) << 2;
  const r4 = rows & ~3;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const px = x + ((<usize>j) << 2);
    const pa = acc + ((<usize>j) << 3);
    let lo = v128.load(pa);
    let hi = v128.load(pa, 16);
    let p = px;
    for (let r = 0; r < r4; r += 4, p += rb << 2) {
      const v0 = v128.load(p);
      const v1 = v128.load(p + rb);
      const v2 = v128.load(p + 2 * rb);
      const v3 = v128.load(p + 3 * rb);
      let tl = f64x2.add(half(v0, 0), half(v1, 0));
      let th = f64x2.add(half(v0, 1), half(v1, 1));
      tl = f64x2.add(f64x2.add(tl, half(v2, 0)), half(v3, 0));
      th = f64x2.add(f64x2.add(th, half(v2, 1)), half(v3, 1));
      lo = f64x2.add(lo, tl);
      hi = f64x2.add(hi, th);
    }
    for (let r = r4; r < rows; r++, p += rb) {
      const v = v128.load(p);
      lo = f64x2.add(lo, half(v, 0));
      hi = f64x2.add(hi, half(v, 1));
    }
    v128.store(pa, lo);
    v128.store(pa, hi, 16);
  }
  for (; j < j1; j++) {
    let s = load<f64>(acc + ((<usize>j) << 3));
    let p = x + ((<usize>j) << 2);
    for (let r = 0; r < r4; r += 4, p += rb << 2) {
      s += <f64>load<f32>(p) + <f64>load<f32>(p + rb) + <f64>load<f32>(p + 2 * rb) + <f64>load<f32>(p + 3 * rb);
    }
    for (let r = r4; r < rows; r++, p += rb) s += <f64>load<f32>(p);
    store<f64>(acc + ((<usize>j) << 3), s);
  }
}

/** o[r] (f64, byte address o) = the f64 sum of row r's c floats, for `rows` rows at x (row r at x + 4 r c). */
export function rowSumF32(x: usize, o: usize, rows: i32, c: i32): void {
  const c4 = (<usize>(c & ~3)) << 2;
  const end = (<usize>c) << 2;
  for (let rr = 0; rr < rows; rr++) {
    const p = x + <usize>rr * end;
    let lo = f64x2.splat(0);
    let hi = f64x2.splat(0);
    let i: usize = 0;
    for (; i < c4; i += 16) {
      const v = v128.load(p + i);
      lo = f64x2.add(lo, half(v, 0));
      hi = f64x2.add(hi, half(v, 1));
    }
    const s2 = f64x2.add(lo, hi);
    let s = f64x2.extract_lane(s2, 0) + f64x2.extract_lane(s2, 1);
    for (; i < end; i += 4) s += <f64>load<f32>(p + i);
    store<f64>(o + ((<usize>rr) << 3), s);
  }
}

/**
 * Layer norm's parameter gradients over `rows` rows of d floats: x and gy at byte addresses x and g (row r
 * at + 4 r d), the f32 [mean, rstd] of row r at st + 8 r; adds sum_r gy (x - mean) rstd to the f64 acc[j]
 * and sum_r gy to acc[d + j]. All in f64, row by row, as (gy (x - mean)) rstd: the bits of layernorm.ts's
 * JS loop. Columns [j0, j1) only (even, or j1 = d): a job for disjoint column ranges on threads.
 */
export function lnParamsF32(x: usize, g: usize, st: usize, acc: usize, rows: i32, d: i32, j0: i32, j1: i32): void {
  const rb = (<usize>d) << 2;
  const ab = (<usize>d) << 3;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const pw = acc + ((<usize>j) << 3);
    const pb = pw + ab;
    let w0 = v128.load(pw);
    let w1 = v128.load(pw, 16);
    let b0 = v128.load(pb);
    let b1 = v128.load(pb, 16);
    let px = x + ((<usize>j) << 2);
    let pg = g + ((<usize>j) << 2);
    for (let r = 0; r < rows; r++, px += rb, pg += rb) {
      const q = st + ((<usize>r) << 3);
      const mean = f64x2.splat(<f64>load<f32>(q));
      const rstd = f64x2.splat(<f64>load<f32>(q, 4));
      const xv = v128.load(px);
      const gv = v128.load(pg);
      const g0 = half(gv, 0);
      const g1 = half(gv, 1);
      w0 = f64x2.add(w0, f64x2.mul(f64x2.mul(g0, f64x2.sub(half(xv, 0), mean)), rstd));
      w1 = f64x2.add(w1, f64x2.mul(f64x2.mul(g1, f64x2.sub(half(xv, 1), mean)), rstd));
      b0 = f64x2.add(b0, g0);
      b1 = f64x2.add(b1, g1);
    }
    v128.store(pw, w0);
    v128.store(pw, w1, 16);
    v128.store(pb, b0);
    v128.store(pb, b1, 16);
  }
  for (; j < j1; j++) {
    const pw = acc + ((<usize>j) << 3);
    let sw = load<f64>(pw);
    let sb = load<f64>(pw + ab);
    for (let r = 0; r < rows; r++) {
      const q = st + ((<usize>r) << 3);
      const v = <f64>load<f32>(g + <usize>r * rb + ((<usize>j) << 2));
      const h = <f64>load<f32>(x + <usize>r * rb + ((<usize>j) << 2)) - <f64>load<f32>(q);
      sw += v * h * <f64>load<f32>(q, 4);
      sb += v;
    }
    store<f64>(pw, sw);
    store<f64>(pw + ab, sb);
  }
}

/** Floats per block of geluBlocksF32 (a pooled job's unit). */
const GELU_BLOCK: i32 = 8192;

/**
 * geluF32 over blocks [r0, r1) of GELU_BLOCK floats (the last may be partial: n8 floats in all): a job of
 * the worker pool, whose threads take disjoint blocks (tid unused). Elementwise, so any split gives the
 * same bits.
 */
export function geluBlocksF32(x: usize, g: usize, o: usize, n8: i32, grad: i32, r0: i32, r1: i32, tid: i32): void {
  for (let r = r0; r < r1; r++) {
    const off = (<usize>r * GELU_BLOCK) << 2;
    const len = min(GELU_BLOCK, n8 - r * GELU_BLOCK);
    geluF32(x + off, g + off, o + off, len, grad);
  }
}
