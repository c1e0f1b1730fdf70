// The WebAssembly SIMD matmul of the CPU backend: loads the module built from wasm/gemm.ts (relaxed SIMD
// where the runtime has it, else plain SIMD), stages float32 operands into its linear memory, packs and
// multiplies there (on the worker pool above a size threshold) and copies C out. Small or unsupported
// problems return false and stay on the JS kernels in gemm.ts. The same module's AdamW kernel runs here
// too (wasmAdamw), staged chunk by chunk through the same memory.
import { counters } from './counters.js';
import type { MatRef, OutRef } from './gemm.js';
import { GemmPool, MAX_POOLED_PANELS, type GemmFn } from './threads.js';
import { GEMM_SHARED_MAX_PAGES, GEMM_WASM } from './wasm/kernels.generated.js';
import { webSpawner, webThreadSupport, type WebWorkerCtor } from './webhost.js';

/** The module's register tile (wasm/gemm.ts): packed panels are MR rows of A and NR columns of B. */
const MR = 4;
const NR = 8;
/** Below this many multiply-adds the JS kernels are as fast (staging, packing and call overheads). */
export const WASM_MIN_MACS = 24 * 24 * 24;
/**
 * From this many multiply-adds on, a product is split over the worker pool (a wake-up costs ~10-50 µs).
 * Measured on 2 cores: 256^3 ran 1.6x faster on two threads, 128x128x64 (attention scores) ~10% slower.
 */
export const THREAD_MIN_MACS = 128 * 128 * 128;
/** Row panels below which a pooled product may split by columns (see splitByColumns). */
const COLS_MAX_PANELS = 192;
/** Column panels from which it does: enough claims for every thread. */
const COLS_MIN_NP = 16;
/** Region alignment in floats (64 bytes). */
const ALIGN = 16;
/** The module's K block (wasm/gemm.ts KC): a split K's chunks are multiples of it. */
const KC = 256;
/**
 * A K longer than this and than both chunk sides is split first when a product needs chunks: the
 * 50257-long K of a GPT's lm-head input gradient otherwise split M and N into 32 chunks that each
 * re-staged a slice of the 200 MB gradient (4x its size in copies per step).
 */
const SPLIT_K_MIN = 4 * KC;

// f32x4.relaxed_madd on three v128 params, and a plain SIMD function: feature probes.
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2,
  253, 133, 2, 11,
]);
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

/** What the CPU backend's fast paths found at startup. */
export interface CpuKernelInfo {
  /** The WASM matmul in use: fused multiply-add (relaxed SIMD), plain SIMD, or none (JS kernels). */
  readonly wasm: 'relaxed-simd' | 'simd' | null;
  /** Threads a large matmul runs on (1: the calling thread only). */
  readonly threads: number;
  /** Why a feature is missing (empty when everything is on). */
  readonly notes: string[];
}

/** Switches for benchmarks and tests. Results do not depend on them beyond float32 rounding. */
export interface CpuKernelOptions {
  /** Use the WASM matmul above its threshold (default on). */
  wasm: boolean;
  /** Split large WASM matmuls over the worker pool (default on). */
  threads: boolean;
  /**
   * Floats of WASM linear memory one chunk of a matmul may use (default 2^25, 128 MiB); larger problems
   * run in column and row chunks. The memory grows to the largest chunk seen and never shrinks.
   */
  chunkFloats: number;
  /**
   * How a pooled matmul splits over threads: by row panels, by column panels (each thread packs its own
   * columns of B and multiplies all of A), or by shape (default: columns for few rows against many columns).
   */
  matmulSplit: 'auto' | 'rows' | 'cols';
  /** Run the small items of a batched matmul as pooled jobs of whole items (default on; wasmGemmBatch). */
  matmulBatch: boolean;
  /** Elements from which AdamW runs on the WASM kernel (default 65536; tests lower it). */
  adamwMin: number;
  /** Elements from which contiguous float32 gelu and geluGrad run on the WASM kernels (default 16384). */
  geluMin: number;
  /** Classes (row length) from which float32 cross-entropy rows run on the WASM kernels (default 1024). */
  crossEntropyMinCols: number;
}

/** A linear memory and a float view of it (replaced when the memory grows). */
interface Mem {
  readonly memory: WebAssembly.Memory;
  f32: Float32Array;
}

/**
 * The streaming kernels (AdamW, the elementwise and row kernels): an instance on an ordinary, unshared memory, because copies in and
 * out of a SharedArrayBuffer run ~2.5x slower in V8 and these kernels are mostly copies.
 */
interface StreamKernels extends Mem {
  readonly adamw: GemmFn;
  /** Every export of the unshared instance, by name (the row kernels of wasmrows.ts). */
  readonly fns: Readonly<Record<string, GemmFn>>;
}

interface Wasm extends Mem {
  /** Every export of the (shared-memory, where threads run) module, by name. */
  readonly exports: Readonly<Record<string, GemmFn>>;
  readonly gemm: GemmFn;
  /** gemm adding to C (the K chunks after the first). */
  readonly gemmAcc: GemmFn;
  readonly packB: GemmFn;
  /** Packs A's row panels (a pooled job ahead of gemmCols). */
  readonly packAJob: GemmFn;
  /** Column panels of C against all of A, packing their own B (the split for few rows). */
  readonly gemmCols: GemmFn;
  readonly gemmColsAcc: GemmFn;
  readonly pool: GemmPool | null;
  readonly stream: StreamKernels;
}

let wasm: Wasm | null = null;
let info: CpuKernelInfo = { wasm: null, threads: 1, notes: ['WASM kernels not initialized'] };
const options: CpuKernelOptions = {
  wasm: true,
  threads: true,
  chunkFloats: 1 << 25,
  matmulSplit: 'auto',
  matmulBatch: true,
  adamwMin: 1 << 16,
  geluMin: 1 << 14,
  crossEntropyMinCols: 1024,
};

/** What the fast paths found (WASM variant, thread count, and why anything is off). */
export function cpuKernelInfo(): CpuKernelInfo {
  return { ...info, notes: [...info.notes] };
}

/** Turns the WASM matmul or its threads on or off (for benchmarks and tests); returns the previous options. */
export function setCpuKernelOptions(opts: Partial<CpuKernelOptions>): CpuKernelOptions {
  const prev = { ...options };
  Object.assign(options, opts);
  return prev;
}

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Compiles and instantiates the WASM matmul and prepares (but does not start) the worker pool. Never
 * throws: anything missing leaves the JS kernels in charge and is noted in cpuKernelInfo().
 */
export async function initWasmKernels(): Promise<void> {
  const notes: string[] = [];
  try {
    if (typeof WebAssembly !== 'object') {
      info = { wasm: null, threads: 1, notes: ['no WebAssembly in this runtime'] };
      return;
    }
    const node = isNode() ? await import('./nodehost.js') : null;
    const relaxed = node ? node.enableRelaxedSimd(RELAXED_PROBE) : WebAssembly.validate(RELAXED_PROBE);
    if (!relaxed) notes.push('no relaxed SIMD: multiply and add instead of fused multiply-add');
    if (!relaxed && !WebAssembly.validate(SIMD_PROBE)) {
      info = { wasm: null, threads: 1, notes: ['no WebAssembly SIMD in this runtime'] };
      return;
    }
    // Threads: Node's worker_threads, or Web Workers in a cross-origin isolated page (webhost.ts); shared
    // memory only where workers can use it.
    const web = node ? null : webThreadSupport();
    const workers = node ? node.cpuCount() - 1 : web!.workers;
    const shared = typeof SharedArrayBuffer === 'function' && workers > 0;
    if (web?.reason) notes.push(web.reason);
    else if (workers <= 0) notes.push('threads: one core');
    const variant = relaxed ? (shared ? 'relaxedShared' : 'relaxed') : shared ? 'simdShared' : 'simd';
    const module = new WebAssembly.Module(decodeBase64(GEMM_WASM[variant]));
    const memory = shared
      ? new WebAssembly.Memory({ initial: 1, maximum: GEMM_SHARED_MAX_PAGES, shared: true })
      : new WebAssembly.Memory({ initial: 1 });
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, GemmFn>;
    const spawn = node ? node.spawnNodeWorker : webSpawner((globalThis as unknown as { Worker: WebWorkerCtor }).Worker);
    // Node's main thread may block in Atomics.wait; a browser's main thread spins while workers finish.
    const pool = shared ? new GemmPool(workers, spawn, module, memory, node ? true : web!.canBlock) : null;
    const plainMemory = shared ? new WebAssembly.Memory({ initial: 1 }) : memory;
    const plain = shared
      ? (new WebAssembly.Instance(new WebAssembly.Module(decodeBase64(GEMM_WASM[relaxed ? 'relaxed' : 'simd'])), {
          env: { memory: plainMemory },
        }).exports as Record<string, GemmFn>)
      : exports;
    const stream: StreamKernels = {
      memory: plainMemory,
      f32: new Float32Array(plainMemory.buffer),
      adamw: plain.adamw!,
      fns: plain,
    };
    wasm = {
      memory,
      exports,
      gemm: exports.gemm!,
      gemmAcc: exports.gemmAcc!,
      packB: exports.packB!,
      packAJob: exports.packAJob!,
      gemmCols: exports.gemmCols!,
      gemmColsAcc: exports.gemmColsAcc!,
      pool,
      f32: new Float32Array(memory.buffer),
      stream,
    };
    info = { wasm: relaxed ? 'relaxed-simd' : 'simd', threads: pool ? pool.size + 1 : 1, notes };
  } catch (e) {
    wasm = null;
    info = { wasm: null, threads: 1, notes: [...notes, `WASM kernels failed to load: ${(e as Error).message}`] };
  }
}

/**
 * Starts the worker pool if it is not running and resolves when its workers are ready (or at once
 * when there is no pool). Large matmuls start the pool by themselves and use it once it is ready.
 */
export async function cpuThreadsReady(timeoutMs = 10000): Promise<boolean> {
  const pool = wasm?.pool;
  if (!pool) return false;
  pool.start();
  const t0 = Date.now();
  while (!pool.ready) {
    if (Date.now() - t0 > timeoutMs) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return true;
}

function roundUp(x: number, r: number): number {
  return Math.ceil(x / r) * r;
}

/**
 * Whether a pooled product of `panels` row panels and `np` column panels splits by columns. Split by
 * rows, each claim of at most ~panels / (4 threads) panels streams every packed B panel from L3 and packs
 * B on the calling thread alone: fine for many rows, slow for M = 256 (claims of 8 panels, 1/3 of the
 * kernel's 24-panel A block).
 */
function splitByColumns(panels: number, np: number): boolean {
  if (options.matmulSplit !== 'auto') return options.matmulSplit === 'cols';
  return panels < COLS_MAX_PANELS && np >= COLS_MIN_NP;
}

/** Floats a chunk of mc x nc (x k) needs: staged A and B (at most twice their size), packed A, B, and C. */
function chunkFloats(mc: number, nc: number, k: number): number {
  return 3 * roundUp(mc, MR) * k + 3 * k * roundUp(nc, NR) + roundUp(mc, MR) * roundUp(nc, NR) + 8 * ALIGN;
}

/**
 * The module, its memory and worker pool for the backend's other WASM SIMD kernels (conv2d): null when
 * the WASM kernels are off. Users call `ensure` for a view of enough memory and may use all of it for
 * the duration of one synchronous kernel call (kernels never nest).
 */
export function wasmKernelHost(): {
  readonly exports: Readonly<Record<string, GemmFn>>;
  readonly pool: GemmPool | null;
  readonly threads: boolean;
  readonly chunkFloats: number;
  /** The current options (all of them). */
  readonly options: Readonly<CpuKernelOptions>;
  ensure(floats: number): Float32Array | null;
} | null {
  const w = wasm;
  if (!w || !options.wasm) return null;
  return {
    exports: w.exports,
    pool: w.pool,
    threads: options.threads,
    chunkFloats: options.chunkFloats,
    options,
    ensure: (floats) => ensure(w, floats),
  };
}

/**
 * The unshared module instance of the streaming kernels (see StreamKernels) for other files' row kernels,
 * with the current options: null when the WASM kernels are off. `ensure` as in wasmKernelHost.
 */
export function wasmStreamHost(): {
  readonly fns: Readonly<Record<string, GemmFn>>;
  readonly options: Readonly<CpuKernelOptions>;
  ensure(floats: number): Float32Array | null;
} | null {
  const w = wasm?.stream;
  if (!w || !options.wasm) return null;
  return { fns: w.fns, options, ensure: (floats) => ensure(w, floats) };
}

/** A WASM memory view of at least `floats` floats (grown as needed), or null when it cannot grow. */
function ensure(w: Mem, floats: number): Float32Array | null {
  const bytes = floats * 4;
  const have = w.memory.buffer.byteLength;
  try {
    if (have < bytes) w.memory.grow(Math.ceil((bytes - have) / 65536));
  } catch {
    return null; // past the shared memory's maximum, or out of memory: the JS kernels take it
  }
  if (w.f32.buffer !== w.memory.buffer || w.f32.length * 4 !== w.memory.buffer.byteLength) {
    w.f32 = new Float32Array(w.memory.buffer);
  }
  return w.f32;
}

/**
 * Copies the rows x cols operand at src[off + i*rs + j*cs] into mem at `dst`, as one span when that is
 * at most twice the elements (strides kept), else compacted row- or column-wise. Returns the staged
 * row and column strides.
 */
export function stage(
  src: Float32Array,
  off: number,
  rs: number,
  cs: number,
  rows: number,
  cols: number,
  mem: Float32Array,
  dst: number,
): [number, number] {
  const span = (rows - 1) * rs + (cols - 1) * cs + 1;
  if (span <= 2 * rows * cols) {
    mem.set(src.subarray(off, off + span), dst);
    return [rs, cs];
  }
  if (cs === 1) {
    for (let i = 0; i < rows; i++) mem.set(src.subarray(off + i * rs, off + i * rs + cols), dst + i * cols);
    return [cols, 1];
  }
  if (rs === 1) {
    for (let j = 0; j < cols; j++) mem.set(src.subarray(off + j * cs, off + j * cs + rows), dst + j * rows);
    return [1, rows];
  }
  for (let i = 0, q = dst; i < rows; i++) for (let j = 0; j < cols; j++) mem[q++] = src[off + i * rs + j * cs]!;
  return [cols, 1];
}

/**
 * C = A @ B (C += A @ B with `accumulate`: a gradient summed into its .grad) through the WASM kernel when it
 * applies (float32 operands and output, non-negative strides, at least MR x NR x WASM_MIN_MACS); returns
 * false, having written nothing, when it does not. C is contiguous with rows of n.
 */
export function wasmGemm(
  m: number,
  n: number,
  k: number,
  a: MatRef,
  b: MatRef,
  c: OutRef,
  accumulate = false,
): boolean {
  const w = wasm;
  if (!w || !options.wasm || a.f16 || b.f16 || c.dtype !== 'float32') return false;
  if (m < MR || n < NR || k === 0 || m * n * k < WASM_MIN_MACS) return false;
  if (a.rs < 0 || a.cs < 0 || b.rs < 0 || b.cs < 0) return false;
  let mc = m;
  let nc = n;
  let kc = k;
  while (chunkFloats(mc, nc, kc) > options.chunkFloats) {
    // K chunks (multiples of KC) add to C in the kernel's own order, so results do not change
    if (kc > SPLIT_K_MIN && kc >= mc && kc >= nc) kc = roundUp(Math.ceil(kc / 2), KC);
    else if (nc >= mc && nc > NR) nc = roundUp(Math.ceil(nc / 2), NR);
    else if (mc > MR) mc = roundUp(Math.ceil(mc / 2), MR);
    else return false; // K alone is too long for a chunk
  }
  const mcp = roundUp(mc, MR);
  const ncp = roundUp(nc, NR);
  // Regions (floats): raw B, packed B, raw A, packed A, C; sized for the largest chunk.
  const rawB = ALIGN;
  const packB = roundUp(rawB + 2 * kc * ncp + 1, ALIGN);
  const rawA = roundUp(packB + kc * ncp, ALIGN);
  const packA = roundUp(rawA + 2 * mcp * kc + 1, ALIGN);
  const cBase = roundUp(packA + mcp * kc, ALIGN);
  const mem = ensure(w, cBase + mcp * ncp);
  if (!mem) return false;
  const A = a.arr as Float32Array;
  const B = b.arr as Float32Array;
  const out = c.arr as Float32Array;
  const pool = options.threads && w.pool && m * n * k >= THREAD_MIN_MACS ? w.pool : null;
  pool?.start();
  const poolReady = pool !== null && pool.ready;
  let threaded = false;
  for (let j0 = 0; j0 < n; j0 += nc) {
    const nw = Math.min(nc, n - j0);
    const np = Math.ceil(nw / NR);
    for (let i0 = 0; i0 < m; i0 += mc) {
      const mh = Math.min(mc, m - i0);
      const panels = Math.ceil(mh / MR);
      const byCols = poolReady && mc === m && Math.max(np, panels) <= MAX_POOLED_PANELS && splitByColumns(panels, np);
      const ldc = np * NR;
      // accumulating: C's tile is staged in and every K pass adds to it (the kernels' accumulate mode)
      if (accumulate)
        for (let i = 0; i < mh; i++)
          mem.set(out.subarray(c.off + (i0 + i) * n + j0, c.off + (i0 + i) * n + j0 + nw), cBase + i * ldc);
      for (let p0 = 0; p0 < k; p0 += kc) {
        const kw = Math.min(kc, k - p0);
        const first = p0 === 0 && !accumulate;
        // an unsplit K stages B once per column chunk; a split one per (row chunk, K chunk)
        let brs = 0;
        let bcs = 0;
        if (kc < k || i0 === 0) {
          [brs, bcs] = stage(B, b.off + j0 * b.cs + p0 * b.rs, b.rs, b.cs, kw, nw, mem, rawB);
          if (!byCols) w.packB(rawB * 4, brs, bcs, kw, nw, packB * 4);
        }
        const [ars, acs] = stage(A, a.off + i0 * a.rs + p0 * a.cs, a.rs, a.cs, mh, kw, mem, rawA);
        if (byCols) {
          // every thread packs and multiplies its own column panels against all of A, packed first
          pool.run(w.packAJob, [rawA * 4, ars, acs, mh, kw, packA * 4], panels, 'packAJob');
          const args = [rawB * 4, brs, bcs, kw, nw, packB * 4, packA * 4, panels, cBase * 4, np * NR];
          pool.run(first ? w.gemmCols : w.gemmColsAcc, args, np, first ? 'gemmCols' : 'gemmColsAcc');
          threaded = true;
          continue;
        }
        const args = [rawA * 4, ars, acs, mh, kw, packA * 4, packB * 4, np, cBase * 4, np * NR];
        const name = first ? 'gemm' : 'gemmAcc';
        const fn = first ? w.gemm : w.gemmAcc;
        if (poolReady && panels >= 2 && panels <= MAX_POOLED_PANELS) {
          pool.run(fn, args, panels, name);
          threaded = true;
        } else fn(...args, 0, panels);
      }
      if (kc < k) counters.matmulSplitK++;
      if (byCols) counters.matmulByColumns++;
      if (accumulate) counters.matmulAccumulated++;
      if (nw === n && ldc === n) out.set(mem.subarray(cBase, cBase + mh * n), c.off + i0 * n);
      else {
        for (let i = 0; i < mh; i++) {
          out.set(mem.subarray(cBase + i * ldc, cBase + i * ldc + nw), c.off + (i0 + i) * n + j0);
        }
      }
    }
  }
  counters.matmulWasm++;
  if (threaded) counters.matmulThreaded++;
  if (pool) counters.matmulWorkerPanels = pool.workerPanels;
  return true;
}

/** Elements of one AdamW chunk: five 256 KiB arrays (p, g, m, v, vmax) stay in L2 between copies. */
const ADAMW_CHUNK = 1 << 16;

/** The AdamW step's operands and float64 constants (see adamw.ts), as wasmAdamw takes them. */
export interface AdamWOperands {
  readonly n: number;
  readonly p: Float32Array;
  readonly g: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** The AMSGrad maximum, or null. */
  readonly x: Float32Array | null;
  /** Element offsets of p, g, m, v, x in their arrays. */
  readonly offs: readonly [number, number, number, number, number];
  /** b1, 1 - b1, b2, 1 - b2, eps, stepSize, rbc2, decay, l2, sign (float64, rounded to f32 by the call). */
  readonly consts: readonly number[];
}

/**
 * One AdamW step through the WASM kernel, chunk by chunk (copy p, g, m, v[, vmax] in, update, copy p, m,
 * v[, vmax] back); returns false, having written nothing, when the module is off or n is below the
 * threshold. f32 arithmetic: within a few float32 ulps of the float64 JS kernel.
 */
export function wasmAdamw(o: AdamWOperands): boolean {
  const w = wasm?.stream;
  const n = o.n;
  if (!w || !options.wasm || n < options.adamwMin || n === 0) return false;
  const ch = Math.min(ADAMW_CHUNK, roundUp(n, 4));
  const span = roundUp(ch, ALIGN); // regions (floats): p, g, m, v, vmax
  const pB = ALIGN;
  const gB = pB + span;
  const mB = gB + span;
  const vB = mB + span;
  const xB = vB + span;
  const mem = ensure(w, xB + roundUp(ch, ALIGN));
  if (!mem) return false;
  const [po, go, mo, vo, xo] = o.offs;
  const ams = o.x !== null;
  for (let i0 = 0; i0 < n; i0 += ch) {
    const len = Math.min(ch, n - i0);
    mem.set(o.p.subarray(po + i0, po + i0 + len), pB);
    mem.set(o.g.subarray(go + i0, go + i0 + len), gB);
    mem.set(o.m.subarray(mo + i0, mo + i0 + len), mB);
    mem.set(o.v.subarray(vo + i0, vo + i0 + len), vB);
    if (o.x) mem.set(o.x.subarray(xo + i0, xo + i0 + len), xB);
    w.adamw(pB * 4, gB * 4, mB * 4, vB * 4, xB * 4, roundUp(len, 4), ...o.consts, ams ? 1 : 0);
    o.p.set(mem.subarray(pB, pB + len), po + i0);
    o.m.set(mem.subarray(mB, mB + len), mo + i0);
    o.v.set(mem.subarray(vB, vB + len), vo + i0);
    if (o.x) o.x.set(mem.subarray(xB, xB + len), xo + i0);
  }
  counters.adamwWasm++;
  return true;
}
