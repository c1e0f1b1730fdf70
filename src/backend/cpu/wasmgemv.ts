// Small-M float32 matmul (one decoding step of a KV-cached GPT: (1, C) @ (C, 4C), the tied head against a
// transposed (V, C) weight) on the WASM GEMV kernels of wasm/gemv.ts: B streams through the module's memory
// chunk by chunk, unpacked, once per call. B lives in JS memory, which WASM cannot read, so each chunk is
// copied in; on one thread the chunk is L2-sized so the kernel re-reads it from cache and B crosses DRAM
// once. Where the worker pool is up, large products stage bigger chunks into the shared memory and the
// threads split each chunk's columns.
import { counters } from './counters.js';
import type { MatRef, OutRef } from './gemm.js';
import type { GemmFn, GemmPool } from './threads.js';
import { wasmKernelHost, wasmStreamHost } from './wasmgemm.js';

/**
 * Most rows of A (and C) the GEMV path takes. One thread, ms, GEMM vs GEMV: (8,768)@(768,3072) 2.4 vs 1.9,
 * M = 12 2.9 vs 3.0, M = 16 3.4 vs 4.0 (the GEMM's 4x8 tile reuses each load of B); the transposed head
 * (M,768)@(768,50257)^T still gains at 16 (81 vs 61), where the GEMM pays for transposing B while it packs.
 */
export const GEMV_MAX_M = 8;
/** Below this many multiply-adds the JS kernels are as fast (staging and call overheads). */
const GEMV_MIN_MACS = 16 * 1024;
/** Columns per gemvRows panel and rows of B per gemvCols panel (wasm/gemv.ts NP and its 4). */
const NP = 16;
const RP = 4;
/** Floats of B per single-threaded chunk: 256 KiB stays in L2 between the copy in and the kernel. */
const CHUNK = 1 << 16;
/**
 * Floats of B per pooled chunk (4 MiB): each chunk is one pool job, which amortizes a wake-up (~10-50 µs);
 * 2^19..2^20 measured best on 2 cores, 2^18 lost to wake-ups, 2^21 to chunks falling out of cache.
 */
const POOLED_CHUNK = 1 << 20;
/** From this many multiply-adds on, a product may split over the worker pool. */
const THREAD_MIN_MACS = 1 << 22;
/**
 * Rows of A from which a product may split over the pool. The calling thread must copy B into the shared
 * memory alone (workers cannot read JS memory), and that copy is most of a few-row product. Measured on 2
 * busy cores, one thread vs split (ms), (M,768)@(768,50257)^T: M = 1 12.7 vs 17.5, M = 2 15.7 vs 16.7,
 * M = 4 22 vs 19-27, M = 6 27-31 vs 22-24, M = 8 34-36 vs 27; (M,768)@(768,3072): M = 4 0.95 vs 0.96-1.95,
 * M = 8 1.8 vs 1.2-1.3.
 */
const THREAD_MIN_M = 6;
/** Region alignment in floats (64 bytes). */
const ALIGN = 16;

function roundUp(x: number, r: number): number {
  return Math.ceil(x / r) * r;
}

/** Where a call runs: the exports to use, a memory view of `floats` floats, and the pool (null: this thread). */
interface Target {
  readonly fns: Readonly<Record<string, GemmFn>>;
  readonly mem: Float32Array;
  readonly pool: GemmPool | null;
}

/** The shared instance and its pool for a large product once the workers are up, else the unshared one. */
function target(m: number, macs: number, floats: (chunk: number) => number): Target | null {
  const host = wasmKernelHost();
  if (!host) return null;
  const pool = host.pool;
  if (host.threads && pool && m >= THREAD_MIN_M && macs >= THREAD_MIN_MACS) {
    pool.start();
    if (pool.ready) {
      const mem = host.ensure(floats(POOLED_CHUNK));
      if (mem) return { fns: host.exports, mem, pool };
    }
  }
  const stream = wasmStreamHost();
  const mem = stream?.ensure(floats(CHUNK));
  return stream && mem ? { fns: stream.fns, mem, pool: null } : null;
}

/** Copies the m x k operand A (any non-negative strides) row-major into mem at `dst`. */
function stageA(a: MatRef, m: number, k: number, mem: Float32Array, dst: number): void {
  const src = a.arr as Float32Array;
  for (let i = 0; i < m; i++) {
    const o = a.off + i * a.rs;
    if (a.cs === 1) mem.set(src.subarray(o, o + k), dst + i * k);
    else for (let p = 0; p < k; p++) mem[dst + i * k + p] = src[o + p * a.cs]!;
  }
}

/** Copies `rows` rows of `len` contiguous floats (row r at off + r * stride) into mem at `dst`, packed. */
function stageRows(
  src: Float32Array,
  off: number,
  stride: number,
  rows: number,
  len: number,
  mem: Float32Array,
  dst: number,
): void {
  if (stride === len) mem.set(src.subarray(off, off + rows * len), dst);
  else for (let r = 0; r < rows; r++) mem.set(src.subarray(off + r * stride, off + r * stride + len), dst + r * len);
}

/**
 * C = A @ B for m <= GEMV_MAX_M rows through the WASM GEMV kernels, when B is row-major (unit column
 * stride) or transposed (unit row stride, i.e. an (N, K) row-major matrix viewed as (K, N)) and all three
 * are float32; returns false, having written nothing, when it does not apply.
 */
export function wasmGemv(m: number, n: number, k: number, a: MatRef, b: MatRef, c: OutRef): boolean {
  if (a.f16 || b.f16 || c.dtype !== 'float32' || m < 1 || m > GEMV_MAX_M || n < 1 || k < 1) return false;
  if (m * n * k < GEMV_MIN_MACS || a.rs < 0 || a.cs < 0) return false;
  // rows: B's rows (K of them) are contiguous N-runs; cols: B's columns are contiguous K-runs
  const rows = b.cs === 1 && b.rs >= n;
  if (!rows && !(b.rs === 1 && b.cs >= k)) return false;
  const ran = rows ? gemvRows(m, n, k, a, b, c) : gemvCols(m, n, k, a, b, c);
  if (ran === null) return false;
  counters.matmulGemv++;
  if (ran) counters.matmulGemvThreaded++;
  return true;
}

/**
 * B row-major: K chunks of whole rows stream through; C (m x N, padded to NP columns) accumulates.
 * Returns null when the memory is unavailable, else whether the pool split it.
 */
function gemvRows(m: number, n: number, k: number, a: MatRef, b: MatRef, c: OutRef): boolean | null {
  const ldc = roundUp(n, NP);
  const aB = ALIGN;
  const cB = roundUp(aB + m * k, ALIGN);
  const bB = roundUp(cB + m * ldc, ALIGN);
  const kcOf = (chunk: number): number => Math.min(k, Math.max(1, Math.floor(chunk / n)));
  const t = target(m, m * n * k, (chunk) => bB + kcOf(chunk) * n + 2 * NP);
  if (!t) return null;
  const { mem, pool } = t;
  const kc = kcOf(pool ? POOLED_CHUNK : CHUNK);
  const panels = ldc / NP;
  let threaded = false;
  stageA(a, m, k, mem, aB);
  const B = b.arr as Float32Array;
  for (let p0 = 0; p0 < k; p0 += kc) {
    const kw = Math.min(kc, k - p0);
    stageRows(B, b.off + p0 * b.rs, b.rs, kw, n, mem, bB);
    const args = [(aB + p0) * 4, k, m, kw, bB * 4, n, cB * 4, ldc, p0 === 0 ? 1 : 0];
    threaded = run(t, 'gemvRows', args, panels) || threaded;
  }
  const out = c.arr as Float32Array;
  for (let i = 0; i < m; i++) out.set(mem.subarray(cB + i * ldc, cB + i * ldc + n), c.off + i * n);
  return threaded;
}

/** B transposed: chunks of B's (N, K) rows stream through; each chunk's columns of C are dot products. As gemvRows. */
function gemvCols(m: number, n: number, k: number, a: MatRef, b: MatRef, c: OutRef): boolean | null {
  const nbOf = (chunk: number): number => Math.min(roundUp(n, RP), Math.max(RP, roundUp(Math.floor(chunk / k), RP)));
  const aB = ALIGN;
  const bB = roundUp(aB + m * k, ALIGN);
  const floats = (chunk: number): number => roundUp(bB + nbOf(chunk) * k, ALIGN) + m * nbOf(chunk);
  const t = target(m, m * n * k, floats);
  if (!t) return null;
  const { mem, pool } = t;
  const nb = nbOf(pool ? POOLED_CHUNK : CHUNK);
  const cB = roundUp(bB + nb * k, ALIGN);
  stageA(a, m, k, mem, aB);
  const B = b.arr as Float32Array;
  const out = c.arr as Float32Array;
  let threaded = false;
  for (let j0 = 0; j0 < n; j0 += nb) {
    const nw = Math.min(nb, n - j0);
    stageRows(B, b.off + j0 * b.cs, b.cs, nw, k, mem, bB);
    threaded = run(t, 'gemvCols', [aB * 4, k, m, k, bB * 4, k, nw, cB * 4, nb], Math.ceil(nw / RP)) || threaded;
    for (let i = 0; i < m; i++) out.set(mem.subarray(cB + i * nb, cB + i * nb + nw), c.off + i * n + j0);
  }
  return threaded;
}

/**
 * Runs export `name` over panels [0, panels): split over the pool when the target has one (returns true),
 * else on this thread.
 */
function run(t: Target, name: string, args: number[], panels: number): boolean {
  const fn = t.fns[name]!;
  if (t.pool && panels >= 2) {
    t.pool.run(fn, args, panels, name, 1 << 16);
    return true;
  }
  fn(...args, 0, panels, 0);
  return false;
}
