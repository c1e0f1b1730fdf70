// Softmax cross-entropy over long float32 rows (the 50257-wide logits of a GPT) on the WASM SIMD row
// kernels of wasm/gemm.ts: rows are staged chunk by chunk into the unshared streaming memory, reduced or
// rewritten there, and (backward) copied out. The JS loops of crossentropy.ts keep short rows, strided
// rows and other dtypes; these run where exp over millions of logits dominated the training step.
// Where the worker pool is up, larger chunks go through the shared memory instead and its threads split
// the rows (each row is computed the same way on any thread, so results do not depend on the thread count).
import { counters } from './counters.js';
import type { GemmFn, GemmPool } from './threads.js';
import { wasmKernelHost, wasmStreamHost } from './wasmgemm.js';

/** Floats of logits staged per chunk: 1 MiB stays in L2 between the copy in, the kernel and the copy out. */
const CHUNK = 1 << 18;
/**
 * Floats of logits per pooled chunk (4 MiB, ~20 rows of 50257): each chunk is one pool job, so it amortizes
 * the wake-up (~10-50 µs) while the calling thread's serial copy in stays short next to the split work.
 */
const POOLED_CHUNK = 1 << 20;
/** Region alignment in floats (64 bytes). */
const ALIGN = 16;

function roundUp(x: number, r: number): number {
  return Math.ceil(x / r) * r;
}

/** The staging layout for rows of c floats: rows per chunk and the region offsets (floats). */
function layout(c: number, chunk = CHUNK): { rows: number; xB: number; sB: number; end: number } {
  const rows = Math.max(1, Math.floor(chunk / c));
  const xB = ALIGN;
  const sB = roundUp(xB + rows * c, ALIGN);
  return { rows, xB, sB, end: sB + 6 * rows + ALIGN };
}

/** The shared memory's exports, pool and a view of `floats` floats, when n rows may split over threads. */
function pooled(
  n: number,
  floats: number,
): { fns: Readonly<Record<string, GemmFn>>; pool: GemmPool; mem: Float32Array } | null {
  const host = wasmKernelHost();
  const pool = host?.pool;
  if (!host || !host.threads || !pool || n < 2) return null;
  pool.start();
  if (!pool.ready) return null; // workers still starting: the single-threaded path does not wait
  const mem = host.ensure(floats);
  return mem ? { fns: host.exports, pool, mem } : null;
}

/** The bit pattern of x rounded to float32, as an i32 (pooled jobs take i32 arguments only). */
function f32Bits(x: number): number {
  return new Int32Array(new Float32Array([x]).buffer)[0]!;
}

/** Copies rows [r0, r0 + k) of c floats (row stride sr, contiguous within a row) into mem at xB. */
function stageRows(
  src: Float32Array,
  off: number,
  sr: number,
  c: number,
  r0: number,
  k: number,
  mem: Float32Array,
  xB: number,
): void {
  if (sr === c) mem.set(src.subarray(off + r0 * c, off + (r0 + k) * c), xB);
  else for (let i = 0; i < k; i++) mem.set(src.subarray(off + (r0 + i) * sr, off + (r0 + i) * sr + c), xB + i * c);
}

/** Whether rows of c float32 logits with column stride sc take the WASM path. */
export function wasmRowsApply(c: number, sc: number): boolean {
  const host = wasmStreamHost();
  return host !== null && sc === 1 && c >= host.options.crossEntropyMinCols;
}

/**
 * For each of n rows of c logits (row r at off + r * sr, unit column stride) writes stats[3r..3r+2] = the
 * row's max (0 when all are -Inf), sum of exp(z - max) and sum of z. Returns false, having written nothing,
 * when the WASM kernels are off or the memory cannot grow.
 */
export function wasmCrossEntropyStats(
  n: number,
  c: number,
  src: Float32Array,
  off: number,
  sr: number,
  stats: Float64Array,
): boolean {
  const host = wasmStreamHost();
  if (!host) return false;
  const big = layout(c, POOLED_CHUNK);
  const shared = pooled(n, big.end);
  if (shared) {
    const { fns, pool, mem } = shared;
    for (let r0 = 0; r0 < n; r0 += big.rows) {
      const k = Math.min(big.rows, n - r0);
      stageRows(src, off, sr, c, r0, k, mem, big.xB);
      pool.run(fns.ceStatsRows!, [big.xB * 4, c, big.sB * 4], k, 'ceStatsRows');
      stats.set(new Float64Array(mem.buffer, big.sB * 4, 3 * k), 3 * r0);
    }
    counters.crossEntropyWasm++;
    counters.crossEntropyThreaded++;
    return true;
  }
  const { rows, xB, sB, end } = layout(c);
  const mem = host.ensure(end);
  if (!mem) return false;
  const stat = host.fns.ceRowStats!;
  for (let r0 = 0; r0 < n; r0 += rows) {
    const k = Math.min(rows, n - r0);
    stageRows(src, off, sr, c, r0, k, mem, xB);
    for (let i = 0; i < k; i++) stat((xB + i * c) * 4, c, (sB + 6 * i) * 4);
    stats.set(new Float64Array(mem.buffer, sB * 4, 3 * k), 3 * r0);
  }
  counters.crossEntropyWasm++;
  return true;
}

/**
 * dst[dOff + r * c + j] = up[r] * (exp(z[r, j] - lse[r]) - off) for n rows of c logits laid out as in
 * wasmCrossEntropyStats (dst contiguous). The caller applies the target term and zeroes ignored rows.
 * Returns false, having written nothing, when the WASM kernels are off or the memory cannot grow.
 */
export function wasmCrossEntropyGrad(
  n: number,
  c: number,
  src: Float32Array,
  off: number,
  sr: number,
  lse: Float32Array,
  up: Float64Array,
  shift: number,
  dst: Float32Array,
  dOff: number,
): boolean {
  const host = wasmStreamHost();
  if (!host) return false;
  const big = layout(c, POOLED_CHUNK);
  const shared = pooled(n, big.end);
  if (shared) {
    const { fns, pool, mem } = shared;
    const offBits = f32Bits(shift);
    const lu = big.sB; // (lse, up) float32 pairs per row, in the stats region (6 floats a row)
    for (let r0 = 0; r0 < n; r0 += big.rows) {
      const k = Math.min(big.rows, n - r0);
      stageRows(src, off, sr, c, r0, k, mem, big.xB);
      for (let i = 0; i < k; i++) {
        mem[lu + 2 * i] = lse[r0 + i]!;
        mem[lu + 2 * i + 1] = up[r0 + i]!;
      }
      pool.run(fns.ceGradRows!, [big.xB * 4, c, lu * 4, offBits], k, 'ceGradRows');
      dst.set(mem.subarray(big.xB, big.xB + k * c), dOff + r0 * c);
    }
    counters.crossEntropyWasm++;
    counters.crossEntropyThreaded++;
    return true;
  }
  const { rows, xB, end } = layout(c);
  const mem = host.ensure(end);
  if (!mem) return false;
  const grad = host.fns.ceRowGrad!;
  for (let r0 = 0; r0 < n; r0 += rows) {
    const k = Math.min(rows, n - r0);
    stageRows(src, off, sr, c, r0, k, mem, xB);
    for (let i = 0; i < k; i++) {
      const p = (xB + i * c) * 4;
      grad(p, p, c, lse[r0 + i]!, up[r0 + i]!, shift);
    }
    dst.set(mem.subarray(xB, xB + k * c), dOff + r0 * c);
  }
  counters.crossEntropyWasm++;
  return true;
}

// ---------------------------------------------------------------------------------------------------
// softmax / logSoftmax forward and layerNorm forward and backward over contiguous float32 rows (the
// attention probabilities, a transformer's normalized activations) on wasm/rows.ts: each chunk of rows is
// copied into the unshared streaming memory, rewritten there and copied out. Large softmax calls go
// through the shared memory instead, their rows split over the worker pool (same bits on any thread).

/** Switches of the row kernels below (tests lower the threshold). */
export interface RowKernelOptions {
  /** Elements (rows x cols) from which contiguous float32 softmax and layerNorm run on WASM (65536). */
  minElements: number;
  /** Elements from which softmax rows split over the worker pool (262144: its wake-up is then small). */
  minThreadedElements: number;
}

const rowOptions: RowKernelOptions = { minElements: 1 << 16, minThreadedElements: 1 << 18 };

/** Sets the row kernels' options; returns the previous ones. */
export function setRowKernelOptions(opts: Partial<RowKernelOptions>): RowKernelOptions {
  const prev = { ...rowOptions };
  Object.assign(rowOptions, opts);
  return prev;
}

/** The unshared streaming host when n rows of c floats are enough work for the row kernels. */
function rowHost(n: number, c: number): ReturnType<typeof wasmStreamHost> {
  if (n * c < rowOptions.minElements || c < 1) return null;
  return wasmStreamHost();
}

/**
 * Softmax (log false) or logSoftmax of n contiguous rows of c float32s at src[off..] into dst[dOff..].
 * With `causal` (tq rows a (tq, c) plane, offset), row r keeps keys j <= r % tq + offset, as softmax.ts.
 * Returns false, having written nothing, below the size threshold, when the WASM kernels are off or the
 * memory cannot grow.
 */
export function wasmSoftmaxRows(
  log: boolean,
  n: number,
  c: number,
  src: Float32Array,
  off: number,
  dst: Float32Array,
  dOff: number,
  causal: { tq: number; offset: number } | null = null,
): boolean {
  const host = rowHost(n, c);
  if (!host) return false;
  const tq = causal ? Math.max(1, causal.tq) : 1;
  // clamped so that i + offset + 1 stays in i32 and keeps its meaning (<= 0: no key, >= c: every key)
  const shift = causal ? Math.min(c, Math.max(-tq, causal.offset)) : c;
  const bigRows = Math.max(1, Math.min(1 << 16, Math.floor(POOLED_CHUNK / c))); // under MAX_POOLED_PANELS
  const shared = n * c >= rowOptions.minThreadedElements ? pooled(n, ALIGN + Math.min(bigRows, n) * c) : null;
  if (shared) {
    const { fns, pool, mem } = shared;
    for (let r0 = 0; r0 < n; r0 += bigRows) {
      const k = Math.min(bigRows, n - r0);
      mem.set(src.subarray(off + r0 * c, off + (r0 + k) * c), ALIGN);
      // a claim of >= ~8K elements keeps the ticket traffic small next to the rows' work
      const claim = Math.max(1, Math.ceil(8192 / c));
      pool.run(fns.softmaxRowsJob!, [ALIGN * 4, c, log ? 1 : 0, tq, r0 % tq, shift], k, 'softmaxRowsJob', claim);
      dst.set(mem.subarray(ALIGN, ALIGN + k * c), dOff + r0 * c);
    }
    counters.rowsWasm++;
    counters.rowsThreaded++;
    return true;
  }
  const rows = Math.max(1, Math.floor(CHUNK / c));
  const mem = host.ensure(ALIGN + Math.min(rows, n) * c);
  if (!mem) return false;
  const fn = host.fns.softmaxRows!;
  for (let r0 = 0; r0 < n; r0 += rows) {
    const k = Math.min(rows, n - r0);
    mem.set(src.subarray(off + r0 * c, off + (r0 + k) * c), ALIGN);
    fn(ALIGN * 4, c, k, log ? 1 : 0, tq, r0 % tq, shift);
    dst.set(mem.subarray(ALIGN, ALIGN + k * c), dOff + r0 * c);
  }
  counters.rowsWasm++;
  return true;
}

/**
 * Layer norm forward of n contiguous rows of d float32s at src[off..] into dst[dOff..] with weight w and
 * bias b (d values each), writing each row's [mean, rstd] at stats[sOff + 2r..]. Returns false, having
 * written nothing, as wasmSoftmaxRows.
 */
export function wasmLayerNormRows(
  n: number,
  d: number,
  src: Float32Array,
  off: number,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  eps: number,
  dst: Float32Array,
  dOff: number,
  stats: Float32Array,
  sOff: number,
): boolean {
  const host = rowHost(n, d);
  if (!host) return false;
  const rows = Math.max(1, Math.floor(CHUNK / d));
  const wB = ALIGN;
  const bB = roundUp(wB + d, ALIGN);
  const sB = roundUp(bB + d, ALIGN);
  const xB = roundUp(sB + 2 * Math.min(rows, n), ALIGN);
  const mem = host.ensure(xB + Math.min(rows, n) * d);
  if (!mem) return false;
  for (let j = 0; j < d; j++) {
    mem[wB + j] = w[j]!;
    mem[bB + j] = b[j]!;
  }
  const fn = host.fns.layerNormRows!;
  for (let r0 = 0; r0 < n; r0 += rows) {
    const k = Math.min(rows, n - r0);
    mem.set(src.subarray(off + r0 * d, off + (r0 + k) * d), xB);
    fn(xB * 4, wB * 4, bB * 4, sB * 4, d, k, eps);
    dst.set(mem.subarray(xB, xB + k * d), dOff + r0 * d);
    stats.set(mem.subarray(sB, sB + 2 * k), sOff + 2 * r0);
  }
  counters.rowsWasm++;
  return true;
}

/**
 * Layer norm input gradient of n contiguous rows of d float32s: x at xs[xOff..], gy at gs[gOff..], weight
 * w (d values), saved [mean, rstd] at stats[sOff + 2r..]; writes gx to dst[dOff..]. Returns false, having
 * written nothing, as wasmSoftmaxRows.
 */
export function wasmLayerNormBackwardRows(
  n: number,
  d: number,
  xs: Float32Array,
  xOff: number,
  gs: Float32Array,
  gOff: number,
  w: ArrayLike<number>,
  stats: Float32Array,
  sOff: number,
  dst: Float32Array,
  dOff: number,
): boolean {
  const host = rowHost(n, d);
  if (!host) return false;
  const rows = Math.max(1, Math.floor(CHUNK / d));
  const m = Math.min(rows, n);
  const wB = ALIGN;
  const sB = roundUp(wB + d, ALIGN);
  const xB = roundUp(sB + 2 * m, ALIGN);
  const gB = roundUp(xB + m * d, ALIGN);
  const mem = host.ensure(gB + m * d);
  if (!mem) return false;
  for (let j = 0; j < d; j++) mem[wB + j] = w[j]!;
  const fn = host.fns.layerNormBackRows!;
  for (let r0 = 0; r0 < n; r0 += rows) {
    const k = Math.min(rows, n - r0);
    mem.set(xs.subarray(xOff + r0 * d, xOff + (r0 + k) * d), xB);
    mem.set(gs.subarray(gOff + r0 * d, gOff + (r0 + k) * d), gB);
    mem.set(stats.subarray(sOff + 2 * r0, sOff + 2 * (r0 + k)), sB);
    fn(xB * 4, gB * 4, wB * 4, sB * 4, d, k);
    dst.set(mem.subarray(gB, gB + k * d), dOff + r0 * d);
  }
  counters.rowsWasm++;
  return true;
}
