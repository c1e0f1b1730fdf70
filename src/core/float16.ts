// Exact IEEE 754 binary16 <-> binary64 conversion (round to nearest, ties to even), used by the CPU
// backend, which stores float16 tensors as raw 16-bit words and computes in wider precision.

const f64 = new Float64Array(1);
const w32 = new Uint32Array(f64.buffer); // [low word, high word] on little-endian hosts (all WebAssembly/JS targets we support)

/**
 * Converts a number to the nearest float16 bit pattern (ties to even; overflow to ±Inf; NaN kept).
 * Rounds once, straight from the float64 bits: rounding to float32 first would round twice and
 * could be off by one unit for values that are not float32-exact.
 */
export function f32ToF16Bits(x: number): number {
  f64[0] = x;
  const hi = w32[1]!;
  const lo = w32[0]!;
  const sign = (hi >>> 16) & 0x8000;
  const exp = (hi >>> 20) & 0x7ff;
  const mantHi = hi & 0xfffff; // top 20 of the 52 mantissa bits
  if (exp === 0x7ff) return sign | 0x7c00 | (mantHi !== 0 || lo !== 0 ? 0x200 : 0); // Inf / NaN
  const e = exp - 1023 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    // float16 subnormal (or zero): the value in units of 2^-24, rounded half to even (exact scaling)
    const q = Math.abs(x) * 16777216;
    const f = Math.floor(q);
    const d = q - f;
    return sign | (d > 0.5 || (d === 0.5 && (f & 1) === 1) ? f + 1 : f);
  }
  let r = (e << 10) | (mantHi >>> 10);
  const rest = (mantHi & 0x3ff) * 4294967296 + lo; // the 42 dropped bits, exact in a double
  const half = 0x200 * 4294967296;
  if (rest > half || (rest === half && (r & 1) === 1)) r += 1; // a carry into the exponent is correct, up to Inf
  return sign | r;
}

/** Converts a float16 bit pattern to its exact value. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let table: Float32Array | undefined;

/** A 65536-entry decode table (256 KiB), built on first use: the fast path for bulk float16 reads. */
export function f16DecodeTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = f16BitsToF32(h);
  }
  return table;
}

/** Rounds a number to the nearest float16 value (as a JS number). */
export function roundToF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}
