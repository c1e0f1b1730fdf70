// Transposing copies (a weight gradient produced as a transposed view and made contiguous) walked in
// square tiles, so that the source's cache lines are used whole while they sit in L1 instead of once per
// output row. Measured 1.25-1.4x faster than the row loop for [256, 1024] float32 on this project's
// 2-core AMD EPYC; the same tiling of add/sub/mul/div against a transposed operand measured no gain
// (their row loops are bound by the JS arithmetic, not the cache), so those stay on the row loops.

/** Tile side in elements: 32 x 32 words (4 KiB) of the source stay in L1. */
const TILE = 32;

/**
 * o[oo + i os + j] = y[yo + j ys + i] for i < rows, j < cols: a transposing copy of 32-bit words (bit exact,
 * any 4-byte dtype), tile by tile.
 */
export function tiledTransposedCopy32(
  rows: number,
  cols: number,
  y: Int32Array,
  yo: number,
  ys: number,
  o: Int32Array,
  oo: number,
  os: number,
): void {
  for (let i0 = 0; i0 < rows; i0 += TILE) {
    const i1 = Math.min(rows, i0 + TILE);
    for (let j0 = 0; j0 < cols; j0 += TILE) {
      const j1 = Math.min(cols, j0 + TILE);
      for (let i = i0; i < i1; i++) for (let j = j0, q = oo + i * os; j < j1; j++) o[q + j] = y[yo + j * ys + i]!;
    }
  }
}
