// Dense same-shape float32 add, sub and mul on the WASM SIMD kernel of wasm/elementwise.ts: both operands
// are staged chunk by chunk into the unshared streaming memory and the result copied out. Measured (2-core
// AMD EPYC, node 20, `loom bench elementwise`) 3.5-7x faster than the JS row loop from 64K to 16M
// elements, copies included: the typed-array copies run at memcpy speed while the shared (megamorphic)
// scalar row loop does not. The same staging runs gelu and geluGrad (wasm/ewfast.ts) and add, sub, mul
// and div of a dense operand against a broadcast row vector, column or scalar (the bias add, softmax
// backward's row sums, gradient clipping's scale). Everything else stays on ewloops.ts.
import { counters } from './counters.js';
import { wasmKernelHost, wasmStreamHost } from './wasmgemm.js';

/** Floats per staged chunk: three 64 KiB regions stay in L1/L2 between the copies in, the kernel and the copy out. */
const CHUNK = 1 << 14;
/** Below this many elements the JS loop is as fast (staging and call overheads). */
export const WASM_BINARY_MIN = 1 << 13;
/** Region alignment in floats (64 bytes). */
const ALIGN = 16;
/** The kernel's op codes. */
const OPS = { add: 0, sub: 1, mul: 2 } as const;
/** The broadcast kernel's op codes; +3 on sub and div: the broadcast operand comes first (y - x, y / x). */
const BCAST_OPS = { add: 0, sub: 1, mul: 2, div: 3 } as const;

/** The binary ops this path runs. */
export type WasmBinaryOp = keyof typeof OPS;

/** Whether op `op` has a WASM kernel. */
export function isWasmBinaryOp(op: string): op is WasmBinaryOp {
  return op === 'add' || op === 'sub' || op === 'mul';
}

/**
 * out[oo + i] = a[ao + i] op b[bo + i] for i < n (out may be either input exactly). Returns false, having
 * written nothing, when n is under the threshold, the WASM kernels are off or the memory cannot grow.
 */
export function wasmBinaryF32(
  op: WasmBinaryOp,
  n: number,
  a: Float32Array,
  ao: number,
  b: Float32Array,
  bo: number,
  out: Float32Array,
  oo: number,
): boolean {
  if (n < WASM_BINARY_MIN) return false;
  const host = wasmStreamHost();
  const fn = host?.fns.binaryF32;
  if (!host || !fn) return false;
  const aB = ALIGN;
  const bB = aB + CHUNK;
  const oB = bB + CHUNK;
  const mem = host.ensure(oB + CHUNK);
  if (!mem) return false;
  const code = OPS[op];
  for (let i0 = 0; i0 < n; i0 += CHUNK) {
    const len = Math.min(CHUNK, n - i0);
    mem.set(a.subarray(ao + i0, ao + i0 + len), aB);
    mem.set(b.subarray(bo + i0, bo + i0 + len), bB);
    fn(aB * 4, bB * 4, oB * 4, (len + 3) & ~3, code);
    out.set(mem.subarray(oB, oB + len), oo + i0);
  }
  counters.binaryWasm++;
  return true;
}

/**
 * out[oo + i] = gelu(x[xo + i]) (g null) or g[go + i] gelu'(x[xo + i]) for i < n (out may be x or g at
 * the same offset). Returns false, having written nothing, under the threshold (the geluMin option) or
 * when WASM is off.
 */
export function wasmGeluF32(
  n: number,
  x: Float32Array,
  xo: number,
  g: Float32Array | null,
  go: number,
  out: Float32Array,
  oo: number,
): boolean {
  const host = wasmStreamHost();
  if (!host || n < host.options.geluMin || n === 0) return false;
  const grad = g ? 1 : 0;
  // x (and g) copied chunk by chunk into regions of ch floats from float ALIGN of the host's memory, the
  // kernel run on them and the result copied out; false, having written nothing, when memory cannot grow
  const staged = (h: { ensure(floats: number): Float32Array | null }, ch: number, kernel: GeluKernel): boolean => {
    const xB = ALIGN;
    const gB = xB + ch;
    const oB = gB + ch;
    const mem = h.ensure(oB + ch);
    if (!mem) return false;
    for (let i0 = 0; i0 < n; i0 += ch) {
      const len = Math.min(ch, n - i0);
      mem.set(x.subarray(xo + i0, xo + i0 + len), xB);
      if (g) mem.set(g.subarray(go + i0, go + i0 + len), gB);
      kernel(xB * 4, gB * 4, oB * 4, (len + 7) & ~7); // the kernel's 8-float steps stay in the regions
      out.set(mem.subarray(oB, oB + len), oo + i0);
    }
    return true;
  };
  const pooled = n >= GELU_THREAD_MIN ? geluPool(grad) : null;
  if (pooled && staged(pooled.host, GELU_POOLED_CHUNK, pooled.kernel)) {
    counters.geluWasm++;
    counters.geluThreaded++;
    return true;
  }
  const gelu = host.fns.geluF32;
  if (!gelu || !staged(host, CHUNK, (xb, gb, ob, n8) => gelu(xb, gb, ob, n8, grad))) return false;
  counters.geluWasm++;
  return true;
}

/** A gelu kernel over staged regions: the byte addresses of x, g and out, and n8 floats (a multiple of 8). */
type GeluKernel = (xb: number, gb: number, ob: number, n8: number) => void;

/** Elements from which gelu splits over the worker pool, where it is up. */
export const GELU_THREAD_MIN = 1 << 18;
/**
 * Workers the pool needs before gelu splits over it. On this project's 2-core machine (one worker) the
 * pooled path measured ~10% slower than the single-threaded one at 2^20 floats (copies into the shared
 * memory run ~2.5x slower than into the unshared one, and eat the halved kernel time), so it needs more.
 */
let geluPoolMinWorkers = 3;

/** Sets how many workers gelu needs to split over the pool (tests, benchmarks); returns the previous value. */
export function setGeluPoolMinWorkers(k: number): number {
  const prev = geluPoolMinWorkers;
  geluPoolMinWorkers = k;
  return prev;
}
/** Floats per pooled gelu job: 1 MiB per operand in the shared memory. */
const GELU_POOLED_CHUNK = 1 << 18;
/** Floats per pooled block (wasm/ewfast.ts GELU_BLOCK). */
const GELU_BLOCK = 8192;

/**
 * wasmGeluF32's pooled path: the shared-memory host and a kernel that splits its blocks over the worker pool
 * (elementwise: the same bits on any thread count); null when the pool is off or not ready yet.
 */
function geluPool(grad: number): { host: NonNullable<ReturnType<typeof wasmKernelHost>>; kernel: GeluKernel } | null {
  const host = wasmKernelHost();
  const pool = host?.pool;
  const fn = host?.exports.geluBlocksF32;
  if (!host || !host.threads || !pool || !fn || pool.size < geluPoolMinWorkers) return null;
  pool.start();
  if (!pool.ready) return null; // workers still starting: the single-threaded path does not wait
  const kernel: GeluKernel = (xb, gb, ob, n8) =>
    pool.run(fn, [xb, gb, ob, n8, grad], Math.ceil(n8 / GELU_BLOCK), 'geluBlocksF32', 4);
  return { host, kernel };
}

/** The binary ops the broadcast kernel runs. */
export type WasmBcastOp = keyof typeof BCAST_OPS;

/** Whether op `op` has a broadcast WASM kernel. */
export function isWasmBcastOp(op: string): op is WasmBcastOp {
  return op === 'add' || op === 'sub' || op === 'mul' || op === 'div';
}

/**
 * The broadcast operand of wasmBinaryBcastF32: a row vector of `len` floats (row), one value per row
 * (column, element r at arr[off + r * stride]) or one value (scalar, at arr[off]).
 */
export interface Bcast {
  readonly kind: 'row' | 'column' | 'scalar';
  readonly arr: Float32Array;
  readonly off: number;
  readonly stride: number;
}

/**
 * out = x op y (first = false) or y op x (first = true) for `rows` contiguous rows of `len` floats of x
 * (x[xo + r * len + j], out likewise; out may be x) against the broadcast operand y. Returns false, having
 * written nothing, under the threshold or when WASM is off.
 */
export function wasmBinaryBcastF32(
  op: WasmBcastOp,
  rows: number,
  len: number,
  x: Float32Array,
  xo: number,
  y: Bcast,
  first: boolean,
  out: Float32Array,
  oo: number,
): boolean {
  const n = rows * len;
  if (n < WASM_BINARY_MIN || len === 0) return false;
  const host = wasmStreamHost();
  const fn = host?.fns.binaryBcastF32;
  if (!host || !fn) return false;
  const code = BCAST_OPS[op] + (first && (op === 'sub' || op === 'div') ? 3 : 0);
  // rows of at most CHUNK floats: whole rows per chunk, or one row's column pieces
  const piece = Math.min(len, CHUNK);
  const per = Math.max(1, Math.floor(CHUNK / len));
  const xB = ALIGN;
  const oB = xB + CHUNK;
  const yB = oB + CHUNK;
  const mem = host.ensure(yB + Math.max(piece, per) + ALIGN);
  if (!mem) return false;
  const mode = y.kind === 'row' ? 0 : y.kind === 'column' ? 1 : 2;
  if (y.kind === 'scalar') mem[yB] = y.arr[y.off]!;
  if (y.kind === 'row' && len <= CHUNK) mem.set(y.arr.subarray(y.off, y.off + len), yB);
  for (let r0 = 0; r0 < rows; r0 += per) {
    const k = Math.min(per, rows - r0);
    if (y.kind === 'column') for (let i = 0; i < k; i++) mem[yB + i] = y.arr[y.off + (r0 + i) * y.stride]!;
    for (let j0 = 0; j0 < len; j0 += piece) {
      const w = Math.min(piece, len - j0);
      const src = xo + r0 * len + j0;
      mem.set(x.subarray(src, src + k * w), xB); // k > 1 only when piece = len
      if (y.kind === 'row' && len > CHUNK) mem.set(y.arr.subarray(y.off + j0, y.off + j0 + w), yB);
      fn(xB * 4, yB * 4, oB * 4, k, w, mode, code);
      out.set(mem.subarray(oB, oB + k * w), oo + r0 * len + j0);
    }
  }
  counters.binaryBcastWasm++;
  return true;
}
