// Row kernels of the CPU backend's softmax / logSoftmax forward and layerNorm forward and backward
// (float32 rows staged contiguously by src/backend/cpu/wasmrows.ts), re-exported from wasm/gemm.ts.
// The row passes run in f32x4 lanes; the sums a result depends on (sum of exp, the mean and variance,
// the backward's two dot products) are accumulated in f64 lanes, and per-row scalars (log, sqrt) in f64.

/** c + a * b, fused where the module is built with relaxed SIMD. */
function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * e^z per f32 lane, exactly 0 below -87: z = n ln2 + r with |r| <= ln2 / 2 and a degree-5 minimax
 * polynomial for e^r. n is rounded by adding 1.5 * 2^23 (so the sum's low mantissa bits hold n as an
 * integer and 2^n is those bits shifted into the exponent), cheaper in V8 than nearest + trunc_sat.
 */
function expRow(z: v128): v128 {
  // pmax / pmin are single instructions (max / min carry NaN and -0 rules); a NaN z stays NaN
  const zc = f32x4.pmin(f32x4.pmax(z, f32x4.splat(-87)), f32x4.splat(87));
  const t = fma(zc, f32x4.splat(1.4426950408889634), f32x4.splat(12582912));
  const n = f32x4.sub(t, f32x4.splat(12582912));
  let r = fma(n, f32x4.splat(-0.693359375), zc);
  r = fma(n, f32x4.splat(2.1219444e-4), r);
  let p = f32x4.splat(1.98756915e-4);
  p = fma(p, r, f32x4.splat(1.3981999507e-3));
  p = fma(p, r, f32x4.splat(8.3334519073e-3));
  p = fma(p, r, f32x4.splat(4.1665795894e-2));
  p = fma(p, r, f32x4.splat(1.6666665459e-1));
  p = fma(p, r, f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(fma(f32x4.mul(p, r), r, r), f32x4.splat(1));
  const scale = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
  return v128.andnot(f32x4.mul(y, scale), f32x4.lt(z, f32x4.splat(-87)));
}

/** acc (two f64 lanes) plus the four f32 lanes of v. */
function sumF64(acc: v128, v: v128): v128 {
  acc = f64x2.add(acc, f64x2.promote_low_f32x4(v));
  return f64x2.add(acc, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
}

function hsum(acc: v128): f64 {
  return f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
}

/** e^z of one f32 (the tails past the 4-lane vectors). */
function exp1(z: f32): f32 {
  return f32x4.extract_lane(expRow(f32x4.splat(z)), 0);
}

/**
 * ln(v) in f64 for a sum of exps (v >= 1, or 0 / NaN / Inf): v = 2^e m with m in [sqrt(1/2), sqrt(2)),
 * ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its odd series to s^17 (relative error
 * below 1e-14). Not Math.log: its lookup tables sit in the low memory the host stages rows into.
 */
function lnSum(v: f64): f64 {
  if (!(v > 0) || v == Infinity) return v == 0 ? -Infinity : v; // 0 -> -Inf; NaN and +Inf stay
  const bits = reinterpret<i64>(v);
  let e = <i32>((bits >> 52) & 0x7ff) - 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  let p = 1.0 / 17;
  p = p * s2 + 1.0 / 15;
  p = p * s2 + 1.0 / 13;
  p = p * s2 + 1.0 / 11;
  p = p * s2 + 1.0 / 9;
  p = p * s2 + 1.0 / 7;
  p = p * s2 + 1.0 / 5;
  p = p * s2 + 1.0 / 3;
  p = p * s2 + 1;
  return <f64>e * 0.6931471805599453 + 2 * s * p;
}

/**
 * Softmax (log = 0) or logSoftmax (log != 0) of `rows` rows of c floats, in place at byte address x (row r
 * at x + 4 r c). A row with a NaN (or +Inf) gives NaN; an all -Inf row gives NaN (softmax) / -Inf (log).
 * Causal rows: row r is query i = (i0 + r) % tq of its (tq, c) plane and only its first
 * clamp(i + off + 1, 0, c) keys take part; the others are written 0 (log: -Inf), or NaN when the row is
 * NaN (no key left, or a NaN / all -Inf prefix). tq = 1, i0 = 0, off = c keeps every key.
 */
export function softmaxRows(x: usize, c: i32, rows: i32, log: i32, tq: i32, i0: i32, off: i32): void {
  const cend = (<usize>c) << 2;
  for (let rr = 0; rr < rows; rr++) {
    const p = x + ((<usize>rr * c) << 2);
    let lim = ((i0 + rr) % tq) + off + 1;
    if (lim < 0) lim = 0;
    if (lim > c) lim = c;
    const c4 = (<usize>(lim & ~3)) << 2;
    const end = (<usize>lim) << 2;
    let vm = f32x4.splat(-Infinity);
    let nan = v128.splat<i32>(0);
    for (let i: usize = 0; i < c4; i += 16) {
      const v = v128.load(p + i);
      vm = f32x4.pmax(vm, v);
      nan = v128.or(nan, f32x4.ne(v, v));
    }
    let m = f32x4.pmax(vm, v128.shuffle<f32>(vm, vm, 2, 3, 0, 1));
    m = f32x4.pmax(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2));
    let max = v128.any_true(nan) ? <f32>NaN : f32x4.extract_lane(m, 0);
    for (let i = c4; i < end; i += 4) {
      const v = load<f32>(p + i);
      if (v > max || v != v) max = v;
    }
    if (max == -Infinity) max = 0;
    const mv = f32x4.splat(max);
    let s = f64x2.splat(0);
    if (log) {
      for (let i: usize = 0; i < c4; i += 16) s = sumF64(s, expRow(f32x4.sub(v128.load(p + i), mv)));
      let sum = hsum(s);
      for (let i = c4; i < end; i += 4) sum += <f64>exp1(load<f32>(p + i) - max);
      // (x - max) is exact near the max, so the largest log-probabilities keep their relative precision
      const ls = <f32>lnSum(sum);
      const lv = f32x4.splat(ls);
      for (let i: usize = 0; i < c4; i += 16) v128.store(p + i, f32x4.sub(f32x4.sub(v128.load(p + i), mv), lv));
      for (let i = c4; i < end; i += 4) store<f32>(p + i, load<f32>(p + i) - max - ls);
    } else {
      for (let i: usize = 0; i < c4; i += 16) {
        const e = expRow(f32x4.sub(v128.load(p + i), mv));
        v128.store(p + i, e);
        s = sumF64(s, e);
      }
      let sum = hsum(s);
      for (let i = c4; i < end; i += 4) {
        const e = exp1(load<f32>(p + i) - max);
        store<f32>(p + i, e);
        sum += <f64>e;
      }
      const inv = <f32>(1 / sum);
      const iv = f32x4.splat(inv);
      for (let i: usize = 0; i < c4; i += 16) v128.store(p + i, f32x4.mul(v128.load(p + i), iv));
      for (let i = c4; i < end; i += 4) store<f32>(p + i, load<f32>(p + i) * inv);
    }
    if (lim < c) {
      // the masked keys (unaligned stores are fine in wasm); a row with no key left, or whose keys gave NaN
      // (the first one is NaN then), is NaN throughout, as the -Inf-masked softmax of torch
      const v0 = load<f32>(p);
      const fill: f32 = lim == 0 || v0 != v0 ? <f32>NaN : log ? <f32>-Infinity : 0;
      const fv = f32x4.splat(fill);
      let i = end;
      for (; i + 16 <= cend; i += 16) v128.store(p + i, fv);
      for (; i < cend; i += 4) store<f32>(p + i, fill);
    }
  }
}

/**
 * softmaxRows for rows r0..r1 (row r at x + 4 r c; row 0 is query i0 of its plane): a job of the worker
 * pool, whose threads take disjoint row ranges (tid unused).
 */
export function softmaxRowsJob(
  x: usize,
  c: i32,
  log: i32,
  tq: i32,
  i0: i32,
  off: i32,
  r0: i32,
  r1: i32,
  tid: i32,
): void {
  softmaxRows(x + ((<usize>r0 * c) << 2), c, r1 - r0, log, tq, (i0 + r0) % tq, off);
}

/**
 * Layer norm forward of `rows` rows of d floats in place at byte address x, with d weights at w and d
 * biases at b (floats), writing each row's f32 [mean, rstd] at st + 8 r. The mean and variance are summed
 * in f64; rows are centered on the f32 mean and corrected by its rounding error (lo).
 */
export function layerNormRows(x: usize, w: usize, b: usize, st: usize, d: i32, rows: i32, eps: f64): void {
  const d4 = (<usize>(d & ~3)) << 2;
  const end = (<usize>d) << 2;
  const fd = <f64>d;
  for (let rr = 0; rr < rows; rr++) {
    const p = x + ((<usize>rr * d) << 2);
    let s = f64x2.splat(0);
    for (let i: usize = 0; i < d4; i += 16) s = sumF64(s, v128.load(p + i));
    let sum = hsum(s);
    for (let i = d4; i < end; i += 4) sum += <f64>load<f32>(p + i);
    const mean = sum / fd;
    const mf = <f32>mean;
    const lo = <f32>(mean - <f64>mf);
    const mv = f32x4.splat(mf);
    const lv = f32x4.splat(lo);
    let q = f64x2.splat(0);
    for (let i: usize = 0; i < d4; i += 16) {
      const e = f32x4.sub(f32x4.sub(v128.load(p + i), mv), lv);
      q = sumF64(q, f32x4.mul(e, e));
    }
    let qs = hsum(q);
    for (let i = d4; i < end; i += 4) {
      const e = load<f32>(p + i) - mf - lo;
      qs += <f64>(e * e);
    }
    const var_ = qs / fd;
    const rstd = 1 / Math.sqrt(var_ + eps);
    const rf = <f32>rstd;
    const rv = f32x4.splat(rf);
    for (let i: usize = 0; i < d4; i += 16) {
      const e = f32x4.sub(f32x4.sub(v128.load(p + i), mv), lv);
      const y = f32x4.add(f32x4.mul(f32x4.mul(e, rv), v128.load(w + i)), v128.load(b + i));
      v128.store(p + i, y);
    }
    for (let i = d4; i < end; i += 4) {
      const e = load<f32>(p + i) - mf - lo;
      store<f32>(p + i, e * rf * load<f32>(w + i) + load<f32>(b + i));
    }
    const q8 = st + ((<usize>rr) << 3);
    store<f32>(q8, mf);
    store<f32>(q8, rf, 4);
  }
}

/**
 * Layer norm input gradient of `rows` rows of d floats: x and gy (byte addresses, row r at + 4 r d), the
 * d weights at w and the saved f32 [mean, rstd] at st + 8 r; writes gx over gy:
 * gx = rstd (gy w - mean(gy w) - xhat mean(gy w xhat)), xhat = (x - mean) rstd.
 */
export function layerNormBackRows(x: usize, g: usize, w: usize, st: usize, d: i32, rows: i32): void {
  const d4 = (<usize>(d & ~3)) << 2;
  const end = (<usize>d) << 2;
  const fd = <f64>d;
  for (let rr = 0; rr < rows; rr++) {
    const o = (<usize>rr * d) << 2;
    const px = x + o;
    const pg = g + o;
    const q8 = st + ((<usize>rr) << 3);
    const mf = load<f32>(q8);
    const rf = load<f32>(q8, 4);
    const mv = f32x4.splat(mf);
    const rv = f32x4.splat(rf);
    let sa = f64x2.splat(0);
    let sb = f64x2.splat(0);
    for (let i: usize = 0; i < d4; i += 16) {
      const h = f32x4.mul(f32x4.sub(v128.load(px + i), mv), rv);
      const v = f32x4.mul(v128.load(pg + i), v128.load(w + i));
      sa = sumF64(sa, v);
      sb = sumF64(sb, f32x4.mul(v, h));
    }
    let a = hsum(sa);
    let bb = hsum(sb);
    for (let i = d4; i < end; i += 4) {
      const h = (load<f32>(px + i) - mf) * rf;
      const v = load<f32>(pg + i) * load<f32>(w + i);
      a += <f64>v;
      bb += <f64>(v * h);
    }
    const ma = <f32>(a / fd);
    const mb = <f32>(bb / fd);
    const av = f32x4.splat(ma);
    const bv = f32x4.splat(mb);
    for (let i: usize = 0; i < d4; i += 16) {
      const h = f32x4.mul(f32x4.sub(v128.load(px + i), mv), rv);
      const v = f32x4.mul(v128.load(pg + i), v128.load(w + i));
      v128.store(pg + i, f32x4.mul(rv, f32x4.sub(f32x4.sub(v, av), f32x4.mul(h, bv))));
    }
    for (let i = d4; i < end; i += 4) {
      const h = (load<f32>(px + i) - mf) * rf;
      const v = load<f32>(pg + i) * load<f32>(w + i);
      store<f32>(pg + i, rf * (v - ma - h * mb));
    }
  }
}
