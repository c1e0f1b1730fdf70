// Bit-exact `low + span * u` for randUniform: the CPU computes it in doubles (one rounding for the
// product, one for the sum) and rounds once more on store. This reproduces those three roundings with
// 16-bit-limb integer arithmetic in WGSL, so every backend draws identical float32/float16 values.
import type { UniformWords } from './codegen.js';
import { uI32, uU32 } from './codegen.js';

/** Uniform words used by `affineExact` (8): span then low, each (mantissa lo, mantissa hi, exponent, sign). */
export const AFFINE_WORDS = 8;

const f64 = new Float64Array(1);
const w32 = new Uint32Array(f64.buffer);

/** Packs finite double `x` as an integer mantissa (< 2^53, in two words), exponent and sign at `slot`..`slot+3`. */
function packDouble(u: UniformWords, slot: number, x: number): void {
  f64[0] = x;
  const lo = w32[0]!;
  const hi = w32[1]!;
  const e = (hi >>> 20) & 0x7ff;
  const mhi = (hi & 0xfffff) | (e === 0 ? 0 : 0x100000);
  u.u32(slot, lo)
    .u32(slot + 1, mhi)
    .i32s(slot + 2, e === 0 ? -1074 : e - 1075)
    .u32(slot + 3, hi >>> 31);
}

/** Packs span and low for `affineExact` into words `slot`..`slot+7` (both must be finite). */
export function packAffine(u: UniformWords, slot: number, span: number, low: number): void {
  packDouble(u, slot, span);
  packDouble(u, slot + 4, low);
}

/** WGSL library: 128-bit integers as 8 limbs of 16 bits, and correctly rounded (ties to even) narrowing. */
const BIG_WGSL = `
var<private> tl_inf_word: u32 = 0x7f800000u;
alias TlBig = array<u32, 8>;
struct TlRounded { m: TlBig, shift: i32 }
fn tl_big(lo: u32, hi: u32) -> TlBig { var o: TlBig; o[0] = lo & 0xffffu; o[1] = lo >> 16u; o[2] = hi & 0xffffu; o[3] = hi >> 16u; return o; }
fn tl_bitlen(x: TlBig) -> u32 {
  var v = x;
  for (var i = 7i; i >= 0i; i--) { if (v[i] != 0u) { return u32(i) * 16u + 32u - countLeadingZeros(v[i]); } }
  return 0u;
}
fn tl_shr(x: TlBig, k: u32) -> TlBig {
  var v = x; var o: TlBig; let q = k >> 4u; let r = k & 15u;
  for (var i = 0u; i < 8u; i++) {
    let j = i + q; var w = 0u;
    if (j < 8u) { w = v[j] >> r; }
    if (r != 0u && j + 1u < 8u) { w = w | ((v[j + 1u] << (16u - r)) & 0xffffu); }
    o[i] = w;
  }
  return o;
}
fn tl_shl(x: TlBig, k: u32) -> TlBig {
  var v = x; var o: TlBig; let q = k >> 4u; let r = k & 15u;
  for (var i = 0u; i < 8u; i++) {
    var w = 0u;
    if (i >= q) { w = (v[i - q] << r) & 0xffffu; if (r != 0u && i > q) { w = w | (v[i - q - 1u] >> (16u - r)); } }
    o[i] = w;
  }
  return o;
}
fn tl_add(x: TlBig, y: TlBig) -> TlBig {
  var a = x; var b = y; var o: TlBig; var c = 0u;
  for (var i = 0u; i < 8u; i++) { let s = a[i] + b[i] + c; o[i] = s & 0xffffu; c = s >> 16u; }
  return o;
}
fn tl_sub(x: TlBig, y: TlBig) -> TlBig {
  var a = x; var b = y; var o: TlBig; var br = 0u;
  for (var i = 0u; i < 8u; i++) { let s = (a[i] | 0x10000u) - b[i] - br; o[i] = s & 0xffffu; br = 1u - (s >> 16u); }
  return o;
}
fn tl_greater(x: TlBig, y: TlBig) -> bool {
  var a = x; var b = y;
  for (var i = 7i; i >= 0i; i--) { if (a[i] != b[i]) { return a[i] > b[i]; } }
  return false;
}
// x (nonzero) ~ m * 2^shift with m rounded to exactly 'keep' bits, ties to even (shorter x is shifted up, exactly)
fn tl_round(x: TlBig, keep: u32) -> TlRounded {
  let n = tl_bitlen(x);
  if (n <= keep) { return TlRounded(tl_shl(x, keep - n), i32(n) - i32(keep)); }
  return tl_round_at(x, n - keep, keep);
}
// x ~ m * 2^s: drops the low s bits with round-to-nearest-even (m may come out with keep + 1 bits; renormalized)
fn tl_round_at(x: TlBig, s: u32, keep: u32) -> TlRounded {
  var v = x;
  var m = tl_shr(x, s);
  let g = (v[(s - 1u) >> 4u] >> ((s - 1u) & 15u)) & 1u;
  var sticky = false;
  let full = (s - 1u) >> 4u;
  for (var i = 0u; i < full; i++) { if (v[i] != 0u) { sticky = true; } }
  let r = (s - 1u) & 15u;
  if (r != 0u && (v[full] & ((1u << r) - 1u)) != 0u) { sticky = true; }
  if (g == 1u && (sticky || (m[0] & 1u) == 1u)) {
    var one: TlBig; one[0] = 1u;
    m = tl_add(m, one);
    if (tl_bitlen(m) > keep) { return TlRounded(tl_shr(m, 1u), i32(s) + 1i); }
  }
  return TlRounded(m, i32(s));
}
`;

/**
 * WGSL: `tl_affine(m: u32) -> f32` = round(low + round64(span * m * 2^-24)) with the double roundings of
 * the CPU and a final rounding to `keep` bits (24 for float32, 11 for float16, subnormal positions
 * included down to 2^`minExp`), reading span/low from uniform words `slot`..`slot+7` (`packAffine`).
 */
export function affineExact(slot: number, keep: number, minExp: number): string {
  const w = (k: number): string => uU32(slot + k);
  const e = (k: number): string => uI32(slot + k);
  return `${BIG_WGSL}
fn tl_affine(mu: u32) -> f32 {
  var sm = tl_big(${w(0)}, ${w(1)});
  var q: TlBig;
  let b0 = mu & 0xffffu; let b1 = mu >> 16u;
  for (var i = 0u; i < 4u; i++) {
    let t0 = sm[i] * b0; let t1 = sm[i] * b1;
    q[i] += t0 & 0xffffu; q[i + 1u] += (t0 >> 16u) + (t1 & 0xffffu); q[i + 2u] += t1 >> 16u;
  }
  var c = 0u;
  for (var i = 0u; i < 8u; i++) { let v = q[i] + c; q[i] = v & 0xffffu; c = v >> 16u; }
  var lm = tl_big(${w(4)}, ${w(5)});
  var le = ${e(6)};
  let pz = tl_bitlen(q) == 0u;
  let lz = tl_bitlen(lm) == 0u;
  if (pz && lz) { return 0.0; }
  var pm: TlBig; var pe = 0i;
  if (!pz) { let r = tl_round(q, 53u); pm = r.m; pe = ${e(2)} - 24i + r.shift; }
  if (!lz) { let r = tl_round(lm, 53u); lm = r.m; le = le + r.shift; }
  // v = round64(low + p), both normalized to 53-bit mantissas
  var vm = pm; var ve = pe; var vneg = ${w(3)};
  if (pz) { vm = lm; ve = le; vneg = ${w(7)}; }
  else if (!lz) {
    var a = lm; var ae = le; var an = ${w(7)}; var b = pm; var be = pe; var bn = ${w(3)};
    if (pe > le || (pe == le && tl_greater(pm, lm))) { a = pm; ae = pe; an = ${w(3)}; b = lm; be = le; bn = ${w(7)}; }
    let d = ae - be;
    vm = a; ve = ae; vneg = an;
    if (d <= 60i) {
      let aw = tl_shl(a, u32(d));
      var x = tl_add(aw, b);
      if (an != bn) { x = tl_sub(aw, b); }
      if (tl_bitlen(x) == 0u) { return 0.0; }
      let r = tl_round(x, 53u); vm = r.m; ve = be + r.shift;
    }
  }
  // final rounding to ${keep} bits, or at 2^${minExp} for subnormal results
  let lsb = max(ve + 53i - ${keep}i, ${minExp}i);
  let s = u32(lsb - ve);
  if (s >= 54u) { return bitcast<f32>(vneg << 31u); }
  let r = tl_round_at(vm, s, 53u - s);
  var mm = r.m;
  let m = mm[0] | (mm[1] << 16u);
  let e2 = ve + r.shift;
  if (m == 0u) { return bitcast<f32>(vneg << 31u); }
  let n = 32u - countLeadingZeros(m);
  let ex = e2 + i32(n) - 1i + 127i;
  var mag: f32;
  if (ex >= 255i) { mag = bitcast<f32>(tl_inf_word); }
  else if (ex <= 0i) { mag = ldexp(f32(m), e2); }
  else { mag = bitcast<f32>((u32(ex) << 23u) | ((m << (24u - n)) & 0x7fffffu)); }
  return select(mag, -mag, vneg == 1u);
}
`;
}
