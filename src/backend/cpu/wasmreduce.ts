// float32 sums on the WASM SIMD kernels of wasm/ewfast.ts: column sums over leading dims (bias gradients),
// row sums over the last dim (softmax backward), whole-tensor sums (gradient norms) and layer norm's
// parameter gradients. Rows are staged chunk by chunk into the unshared streaming memory (the row loops
// of reduce.ts and layernorm.ts run at JS scalar speed; the typed-array copies at memcpy speed). Sums are
// kept in f64 in a fixed order, so results never depend on chunking or threads; column sums and layer
// norm's sums are the bits of the JS loops they replace.
import { counters } from './counters.js';
import { wasmStreamHost } from './wasmgemm.js';

/** Floats of input staged per chunk (64 KiB): stays in L1/L2 between the copy in and the kernel. */
const CHUNK = 1 << 14;
/** Below this many elements the JS loops are as fast (staging and call overheads). */
export const WASM_REDUCE_MIN = 1 << 13;
/** Longest rows of a column sum or layer norm gradient (their f64 accumulators live in the memory). */
const MAX_COLS = 1 << 16;
/** Region alignment in floats (64 bytes). */
const ALIGN = 16;

function roundUp(x: number, r: number): number {
  return Math.ceil(x / r) * r;
}

/** Copies rows [r0, r0 + k) of c floats (row stride rs, contiguous within a row) into mem at dst. */
function stageRows(
  src: Float32Array,
  off: number,
  rs: number,
  c: number,
  r0: number,
  k: number,
  mem: Float32Array,
  dst: number,
): void {
  if (rs === c) mem.set(src.subarray(off + r0 * c, off + (r0 + k) * c), dst);
  else for (let i = 0; i < k; i++) mem.set(src.subarray(off + (r0 + i) * rs, off + (r0 + i) * rs + c), dst + i * c);
}

/** Rows per chunk for rows of c floats: a multiple of 4 (the column sum's row groups), at least 4. */
function chunkRows(c: number): number {
  return Math.max(4, Math.floor(CHUNK / c) & ~3);
}

/**
 * The streaming kernel `name` (and its host) of a sum down the columns of `rows` rows of c floats into
 * per-column f64 accumulators; null when the problem is small or too wide or the WASM kernels are off.
 */
function columnKernel(name: string, rows: number, c: number) {
  if (rows * c < WASM_REDUCE_MIN || c > MAX_COLS || c === 0) return null;
  const host = wasmStreamHost();
  const fn = host?.fns[name];
  return host && fn ? { host, fn } : null;
}

/**
 * out[oo + j] = sum over r < rows of x[xo + r * rs + j] for j < c. Returns false, having written nothing,
 * when the problem is small or too wide, the WASM kernels are off or the memory cannot grow.
 */
export function wasmColSumF32(
  rows: number,
  c: number,
  x: Float32Array,
  xo: number,
  rs: number,
  out: Float32Array,
  oo: number,
): boolean {
  const kernel = columnKernel('colSumF32', rows, c);
  if (!kernel) return false;
  const { host, fn } = kernel;
  const per = chunkRows(c);
  const aB = ALIGN; // f64 accumulators: 2 floats each
  const xB = roundUp(aB + 2 * c, ALIGN);
  const mem = host.ensure(xB + per * c);
  if (!mem) return false;
  const acc = new Float64Array(mem.buffer, aB * 4, c);
  acc.fill(0);
  for (let r0 = 0; r0 < rows; r0 += per) {
    const k = Math.min(per, rows - r0);
    stageRows(x, xo, rs, c, r0, k, mem, xB);
    fn(xB * 4, aB * 4, k, c, 0, c);
  }
  out.set(new Float64Array(mem.buffer, aB * 4, c), oo); // rounds to float32
  counters.reduceWasm++;
  return true;
}

/**
 * out[oo + r] = sum over j < c of x[xo + r * rs + j] for r < rows; rows = 1 is a whole (contiguous) sum.
 * Returns false, having written nothing, when the problem is small or the WASM kernels are off.
 */
export function wasmRowSumF32(
  rows: number,
  c: number,
  x: Float32Array,
  xo: number,
  rs: number,
  out: Float32Array,
  oo: number,
): boolean {
  if (rows * c < WASM_REDUCE_MIN || c === 0) return false;
  const host = wasmStreamHost();
  const fn = host?.fns.rowSumF32;
  if (!host || !fn) return false;
  // a long row is summed in pieces of CHUNK floats (f64 partial sums added in order)
  const piece = Math.min(c, CHUNK);
  const per = Math.max(1, Math.floor(CHUNK / piece));
  const sB = ALIGN;
  const xB = roundUp(sB + 2 * Math.max(per, Math.ceil(c / piece)), ALIGN);
  const mem = host.ensure(xB + per * piece);
  if (!mem) return false;
  const sums = new Float64Array(mem.buffer, sB * 4, Math.max(per, Math.ceil(c / piece)));
  if (c <= CHUNK) {
    for (let r0 = 0; r0 < rows; r0 += per) {
      const k = Math.min(per, rows - r0);
      stageRows(x, xo, rs, c, r0, k, mem, xB);
      fn(xB * 4, sB * 4, k, c);
      out.set(sums.subarray(0, k), oo + r0);
    }
  } else {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j0 = 0; j0 < c; j0 += piece) {
        const w = Math.min(piece, c - j0);
        mem.set(x.subarray(xo + r * rs + j0, xo + r * rs + j0 + w), xB);
        fn(xB * 4, sB * 4, 1, w);
        s += sums[0]!;
      }
      out[oo + r] = s;
    }
  }
  counters.reduceWasm++;
  return true;
}

/** One operand of wasmLayerNormParamsF32: rows of d floats at arr[off + r * rs + j]. */
export interface Rows {
  readonly arr: Float32Array;
  readonly off: number;
  readonly rs: number;
}

/**
 * Layer norm's parameter gradients: out[oo + j] = sum_r gy (x - mean) rstd and out[oo + d + j] = sum_r gy
 * over `rows` rows of d floats, the f32 [mean, rstd] of row r at st[so + 2 r]. Returns false, having
 * written nothing, when the problem is small or too wide, the WASM kernels are off or memory cannot grow.
 */
export function wasmLayerNormParamsF32(
  rows: number,
  d: number,
  x: Rows,
  g: Rows,
  st: Float32Array,
  so: number,
  out: Float32Array,
  oo: number,
): boolean {
  const kernel = columnKernel('lnParamsF32', rows, d);
  if (!kernel) return false;
  const { host, fn } = kernel;
  const per = chunkRows(d);
  const aB = ALIGN; // 2 d f64 accumulators
  const sB = roundUp(aB + 4 * d, ALIGN);
  const xB = roundUp(sB + 2 * per, ALIGN);
  const gB = xB + per * d;
  const mem = host.ensure(gB + per * d);
  if (!mem) return false;
  new Float64Array(mem.buffer, aB * 4, 2 * d).fill(0);
  for (let r0 = 0; r0 < rows; r0 += per) {
    const k = Math.min(per, rows - r0);
    stageRows(x.arr, x.off, x.rs, d, r0, k, mem, xB);
    stageRows(g.arr, g.off, g.rs, d, r0, k, mem, gB);
    mem.set(st.subarray(so + 2 * r0, so + 2 * (r0 + k)), sB);
    fn(xB * 4, gB * 4, sB * 4, aB * 4, k, d, 0, d);
  }
  out.set(new Float64Array(mem.buffer, aB * 4, 2 * d), oo);
  counters.reduceWasm++;
  return true;
}
