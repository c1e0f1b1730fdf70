// Counter-based random numbers (Threefry-2x32, 20 rounds): the value at element i of draw c depends
// only on (seed, c, i), so every backend produces the same stream and kernels need no shared state.

const ROT = [13, 15, 26, 6, 17, 29, 16, 24] as const;

/**
 * Threefry-2x32-20 block function. Returns the two output words for key (k0, k1) and counter
 * (c0, c1). Only 32-bit adds, rotates and xors, so the WGSL version is line for line the same.
 */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (0x1bd11bda ^ k0 ^ k1) >>> 0];
  let x0 = (c0 + ks[0]!) >>> 0;
  let x1 = (c1 + ks[1]!) >>> 0;
  for (let r = 0; r < 20; r++) {
    x0 = (x0 + x1) >>> 0;
    const s = ROT[r % 8]!;
    x1 = ((x1 << s) | (x1 >>> (32 - s))) >>> 0;
    x1 = (x1 ^ x0) >>> 0;
    if (r % 4 === 3) {
      const j = (r + 1) / 4;
      x0 = (x0 + ks[j % 3]!) >>> 0;
      x1 = (x1 + ks[(j + 1) % 3]! + j) >>> 0;
    }
  }
  return [x0, x1];
}

/** Maps a 32-bit word to a float in [0, 1) with 24 bits of precision (exact in float32). */
export function u32ToUnit(u: number): number {
  return (u >>> 8) * 5.9604644775390625e-8; // 2^-24
}

/** Maps two words to one standard normal sample (Box-Muller; the uniform is shifted to (0, 1]). */
export function u32PairToNormal(a: number, b: number): number {
  const u1 = 1 - u32ToUnit(a);
  const u2 = u32ToUnit(b);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Splits a seed into the two Threefry key words (accepts any safe integer). */
export function seedToKey(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed)) throw new TypeError(`seed must be a safe integer, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  return [lo, hi];
}
