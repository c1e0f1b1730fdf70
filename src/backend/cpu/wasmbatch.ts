// Batched matmuls of many small items (attention's 48 products of 64 x 64 x 64 per call) on the WASM GEMM
// module's gemmItems export: every item's operands staged at once, then pooled jobs of whole items, instead
// of one single-threaded wasmGemm call (staging, packing, call overheads) per item.
import { counters } from './counters.js';
import type { MatRef, OutRef } from './gemm.js';
import { RowIter, coalesce } from './strided.js';
import { GEMV_MAX_M } from './wasmgemv.js';
import { THREAD_MIN_MACS, WASM_MIN_MACS, stage, wasmKernelHost } from './wasmgemm.js';

/** The module's register tile (wasm/gemm.ts) and the region alignment in floats (64 bytes). */
const MR = 4;
const NR = 8;
const ALIGN = 16;

function roundUp(x: number, r: number): number {
  return Math.ceil(x / r) * r;
}

/**
 * Stages `cnt` rows x cols operands at src[offs[i] + r * rs + c * cs] into the area at `dst` (cnt * per
 * floats): as one copy of the span they share when it fits (attention's heads are views of one tensor),
 * else item by item (stage). Returns each item's float address and staged strides, 3 numbers per item.
 */
function stageItems(
  src: Float32Array,
  offs: readonly number[],
  cnt: number,
  rs: number,
  cs: number,
  rows: number,
  cols: number,
  mem: Float32Array,
  dst: number,
  per: number,
): number[] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < cnt; i++) {
    lo = Math.min(lo, offs[i]!);
    hi = Math.max(hi, offs[i]!);
  }
  const span = hi - lo + (rows - 1) * rs + (cols - 1) * cs + 1;
  const res = new Array<number>(3 * cnt);
  if (span <= cnt * per) {
    mem.set(src.subarray(lo, lo + span), dst);
    for (let i = 0; i < cnt; i++) [res[3 * i], res[3 * i + 1], res[3 * i + 2]] = [dst + offs[i]! - lo, rs, cs];
    return res;
  }
  for (let i = 0; i < cnt; i++) {
    const [r, c] = stage(src, offs[i]!, rs, cs, rows, cols, mem, dst + i * per);
    [res[3 * i], res[3 * i + 1], res[3 * i + 2]] = [dst + i * per, r, c];
  }
  return res;
}

/** Ints per item in gemmItems' table (7 used; 32 bytes). */
const ITEM_INTS = 8;

/**
 * The batch items of a matmul whose items are small (each below THREAD_MIN_MACS, so run alone it would
 * be single-threaded) as pooled jobs over whole items: A (..., m, k) and B (..., k, n) walked over `batch`
 * with batch strides ab, bb from a.off, b.off; items' outputs m * n apart from c.off. Returns false, having
 * written nothing, when it does not apply (no ready pool, large, few-row or unsupported items, one item); the
 * caller then runs the items one by one, with the same bits.
 */
export function wasmGemmBatch(
  m: number,
  n: number,
  k: number,
  batch: readonly number[],
  ab: readonly number[],
  bb: readonly number[],
  a: MatRef,
  b: MatRef,
  c: OutRef,
): boolean {
  const w = wasmKernelHost();
  if (!w || !w.threads || !w.options.matmulBatch || a.f16 || b.f16 || c.dtype !== 'float32') return false;
  const items = batch.reduce((x, y) => x * y, 1);
  const macs = m * n * k;
  // items of a few rows (KV-cached decoding) stay on the GEMV kernels
  if (items < 2 || m <= GEMV_MAX_M || n < NR || k === 0 || macs < WASM_MIN_MACS || macs >= THREAD_MIN_MACS)
    return false;
  if (a.rs < 0 || a.cs < 0 || b.rs < 0 || b.cs < 0 || ab.some((s) => s < 0) || bb.some((s) => s < 0)) return false;
  const pool = w.pool;
  if (!pool) return false;
  pool.start();
  if (!pool.ready) return false;
  const mp = roundUp(m, MR);
  const ldc = roundUp(n, NR);
  const scratch = roundUp(mp * k + k * ldc, ALIGN);
  // staging room per item: 3x the operand, for one copy of a span that views of a wider tensor (heads
  // split from attention's fused qkv projection) share
  const rawA = roundUp(3 * m * k + 1, ALIGN);
  const rawB = roundUp(3 * k * n + 1, ALIGN);
  const perItem = rawA + rawB + mp * ldc + ITEM_INTS;
  const fixed = ALIGN + (pool.size + 1) * scratch + 2 * ALIGN;
  const group = Math.min(items, Math.floor((w.chunkFloats - fixed) / perItem));
  if (group < 2) return false;
  const tbl = ALIGN;
  const scr = roundUp(tbl + group * ITEM_INTS, ALIGN);
  const cBase = scr + (pool.size + 1) * scratch;
  const stageBase = cBase + group * mp * ldc;
  const mem = w.ensure(stageBase + group * (rawA + rawB));
  if (!mem) return false;
  const ints = new Int32Array(mem.buffer, 0, scr);
  const A = a.arr as Float32Array;
  const B = b.arr as Float32Array;
  const out = c.arr as Float32Array;
  const it = new RowIter(coalesce(batch, [ab, bb]), [a.off, b.off]);
  let j = 0; // the iterator's position within its current row
  const offA = new Array<number>(group);
  const offB = new Array<number>(group);
  const areaA = stageBase;
  const areaB = stageBase + group * rawA;
  for (let g0 = 0; g0 < items; g0 += group) {
    const cnt = Math.min(group, items - g0);
    for (let i = 0; i < cnt; i++) {
      offA[i] = it.off[0]! + j * it.inner[0]!;
      offB[i] = it.off[1]! + j * it.inner[1]!;
      if (++j === it.len) {
        j = 0;
        it.next();
      }
    }
    const sa = stageItems(A, offA, cnt, a.rs, a.cs, m, k, mem, areaA, rawA);
    const sb = stageItems(B, offB, cnt, b.rs, b.cs, k, n, mem, areaB, rawB);
    for (let i = 0; i < cnt; i++) {
      const t = tbl + i * ITEM_INTS;
      ints.set([sa[3 * i]! * 4, sa[3 * i + 1]!, sa[3 * i + 2]!, sb[3 * i]! * 4, sb[3 * i + 1]!, sb[3 * i + 2]!], t);
      ints[t + 6] = (cBase + i * mp * ldc) * 4;
    }
    pool.run(w.exports.gemmItems!, [tbl * 4, m, n, k, scr * 4, scratch * 4], cnt, 'gemmItems', 2);
    const o = c.off + g0 * m * n;
    if (ldc === n && mp === m) out.set(mem.subarray(cBase, cBase + cnt * m * n), o);
    else {
      for (let i = 0; i < cnt; i++) {
        for (let r = 0; r < m; r++) {
          const q = cBase + i * mp * ldc + r * ldc;
          out.set(mem.subarray(q, q + n), o + (i * m + r) * n);
        }
      }
    }
  }
  counters.matmulWasm += items;
  counters.matmulBatched++;
  return true;
}
