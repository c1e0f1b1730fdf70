// The host side of the WebAssembly SIMD conv2d (wasm/conv.ts implicit GEMMs, wasm/depthwise.ts): stages the
// operands into the module's memory (a chunk of images at a time), packs the weight once per call, writes
// the parameter block, runs the kernel's work units on the worker pool (or the calling thread) and copies
// the results out.
import type { TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { counters } from './counters.js';
import { MAX_POOLED_PANELS } from './threads.js';
import { wasmKernelHost } from './wasmgemm.js';

/** Shapes and attributes of one conv2d call (forward shapes; the gradients reuse them). */
export interface ConvGeom {
  n: number; c: number; h: number; w: number; o: number; g: number; cg: number; og: number;
  kh: number; kw: number; oh: number; ow: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
} // prettier-ignore

/** Which conv2d kernel. */
export type ConvKind = 'forward' | 'backwardInput' | 'backwardWeight';

const MR = 4;
const NR = 8;
/** Region alignment in floats (64 bytes); the parameter block sits at the first aligned slot. */
const ALIGN = 16;
const PRM = ALIGN;
/** Floats one thread's packed tile aims at (512 KiB: about an L2). */
const TILE_FLOATS = 1 << 17;
/** From this many multiply-adds on, the units are spread over the worker pool. */
const THREAD_MIN_MACS = 1 << 21;
/**
 * Most floats of staged input and output a forward chunk of images aims at (8 MiB): measured on the 2-core
 * EPYC (32 MiB L3), the ResNet-50 stem at batch 8 ran ~5-8% faster in chunks of 2 images (7.6 MB) than in
 * one chunk of 8 (30 MB), whose staged output went to DRAM and back before the copy-out.
 */
const STAGE_FLOATS = 1 << 21;
/** Slices the weight gradient's reduction over (image, tile) pairs aims at, over all groups. */
const SLICES = 8;
/** Most floats the weight gradient's per-slice partial sums may take. */
const PARTIAL_FLOATS = 1 << 23;

const roundUp = (x: number, r: number): number => Math.ceil(x / r) * r;
const clampTile = (floats: number, p: number): number =>
  Math.min(roundUp(p, NR), Math.max(NR, Math.min(512, Math.floor(floats / NR) * NR)));

/** One call's plan: tile size, work split and the floats each region needs. */
interface Plan {
  nt: number;
  tiles: number;
  /** Blocks and their size: see wasm/conv.ts Params (split, cb, blocks). */
  split: number;
  cb: number;
  blocks: number;
  ogp: number;
  kp: number;
  /** Floats of scratch per thread. */
  scratch: number;
  /** Floats of the staged operand regions for `images` images: [in0, in1, out (or partials)]. */
  regions: (images: number) => [number, number, number];
  units: (images: number) => number;
}

function plan(kind: ConvKind, g: ConvGeom, threads: number): Plan {
  const k = g.cg * g.kh * g.kw;
  const kk = g.kh * g.kw;
  const p = g.oh * g.ow;
  const chw = g.c * g.h * g.w;
  const ogp = roundUp(g.og, MR);
  if (kind === 'forward') {
    let nt = clampTile(Math.max(TILE_FLOATS / k, 128), p);
    // too few (image, group, tile) units for the threads (deep layers at batch 1): shorter tiles first,
    // then output-channel blocks of at least 8 panels (each block gathers its own copy of the tile)
    while (g.n * g.g * Math.ceil(p / nt) < 4 * threads && nt > 32) nt = Math.max(32, roundUp(nt / 2, NR));
    const tiles = Math.ceil(p / nt);
    const panels = ogp / MR;
    let pb = panels;
    while (g.n * g.g * tiles * Math.ceil(panels / pb) < 4 * threads && pb >= 16) pb = Math.ceil(pb / 2);
    const split = Math.ceil(panels / pb);
    return {
      nt, tiles, split, cb: pb, blocks: 1, ogp, kp: 0,
      scratch: roundUp(k * nt + ogp * nt, ALIGN),
      regions: (i) => [i * chw, g.g * ogp * k + g.o, i * g.o * p],
      units: (i) => i * g.g * tiles * split,
    }; // prettier-ignore
  }
  if (kind === 'backwardInput') {
    // channel blocks (multiples of MR channels, so that a block starts on a packed panel) until there
    // are a few units per thread
    let cb = g.cg;
    while (g.n * g.g * Math.ceil(g.cg / cb) < 4 * threads && cb >= 2 * MR) cb = roundUp(Math.ceil(cb / 2), MR);
    const mp = roundUp(cb * kk, MR);
    const nt = clampTile(TILE_FLOATS / Math.max(g.og, mp), p);
    const kp = roundUp(k, MR);
    const split = Math.ceil(g.cg / cb);
    return {
      nt, tiles: Math.ceil(p / nt), split, cb, blocks: 1, ogp, kp,
      scratch: roundUp(g.og * nt + mp * nt, ALIGN),
      regions: (i) => [i * g.o * p, g.g * kp * g.og, i * chw],
      units: (i) => i * g.g * split,
    }; // prettier-ignore
  }
  const kp = roundUp(k, NR);
  // the partial sums (ogp x kp) are read and written once per tile: long tiles amortize that
  const nt = clampTile(Math.max(TILE_FLOATS / (kp + ogp), 256), p);
  const tiles = Math.ceil(p / nt);
  const part = g.g * ogp * kp;
  // slices of the (image, tile) pairs, each summing into its own partial; their number does not depend on
  // the thread count (so neither do the results), and each covers >= 256 positions to amortize its partial
  const slices = Math.max(
    1,
    Math.min(g.n * tiles, Math.ceil(SLICES / g.g), Math.floor(PARTIAL_FLOATS / part), Math.floor((g.n * p) / 256)),
  );
  // still too few units (one image, one tile): split the input channels, NR-aligned columns per block
  let cb = g.cg;
  while (g.g * slices * Math.ceil(g.cg / cb) < 4 * threads && cb >= 2 * NR) cb = roundUp(Math.ceil(cb / 2), NR);
  const blocks = Math.ceil(g.cg / cb);
  return {
    nt, tiles, split: slices, cb, blocks, ogp, kp,
    scratch: roundUp(kp * nt + ogp * nt, ALIGN),
    regions: (i) => [i * chw, i * g.o * p, part * slices],
    units: () => g.g * slices * blocks,
  }; // prettier-ignore
}

/** Depthwise: one input and one output channel per group (wasm/depthwise.ts, a plane per unit). */
const isDepthwise = (g: ConvGeom): boolean => g.g === g.c && g.cg === 1 && g.og === 1;

function planDepthwise(kind: ConvKind, g: ConvGeom): Plan {
  const kk = g.kh * g.kw;
  const chw = g.c * g.h * g.w;
  const cp = g.c * g.oh * g.ow;
  const regions: Record<ConvKind, (i: number) => [number, number, number]> = {
    forward: (i) => [i * chw, g.c * kk + g.c, i * cp],
    backwardInput: (i) => [i * cp, g.c * kk, i * chw],
    backwardWeight: (i) => [i * chw, i * cp, g.c * kk],
  };
  return {
    nt: 0, tiles: 0, split: 0, cb: 0, blocks: 0, ogp: 0, kp: 0, scratch: 0,
    regions: regions[kind],
    units: (i) => (kind === 'backwardWeight' ? g.c : i * g.c),
  }; // prettier-ignore
}

const f32 = (t: TensorSpec): Float32Array => view(t.buffer, 'float32');

const EXPORTS: Record<ConvKind, string> = {
  forward: 'convForward',
  backwardInput: 'convBackwardInput',
  backwardWeight: 'convBackwardWeight',
};
const DW_EXPORTS: Record<ConvKind, string> = {
  forward: 'dwForward',
  backwardInput: 'dwBackwardInput',
  backwardWeight: 'dwBackwardWeight',
};

/**
 * Runs one conv2d kernel (inputs: forward [x, w, bias|null], backwardInput [gy, w], backwardWeight
 * [x, gy], all contiguous float32) on the WASM path; false, having written nothing, when the module is
 * off or one image does not fit its memory. `relu` (forward): clamps each chunk's output at 0 as it is
 * copied out, while it is still in cache.
 */
export function wasmConv(
  kind: ConvKind,
  g: ConvGeom,
  inputs: readonly (TensorSpec | null)[],
  out: TensorSpec,
  relu = false,
): boolean {
  const host = wasmKernelHost();
  const dw = isDepthwise(g);
  const name = (dw ? DW_EXPORTS : EXPORTS)[kind];
  const fn = host?.exports[name];
  const sum = host?.exports.convSumSlices;
  if (!host || !fn || !sum) return false;
  const macs = g.n * g.o * g.oh * g.ow * g.cg * g.kh * g.kw;
  const pool = host.threads && host.pool && macs >= THREAD_MIN_MACS ? host.pool : null;
  pool?.start();
  const threads = pool?.ready ? pool.size + 1 : 1;
  const pl = dw ? planDepthwise(kind, g) : plan(kind, g, threads);
  const k = g.cg * g.kh * g.kw;
  const p = g.oh * g.ow;
  const chw = g.c * g.h * g.w;
  // regions (floats): parameters, in0, in1, out (the weight gradient's slice partials), gw, thread scratch
  const base = PRM + 2 * ALIGN;
  const gwFloats = kind === 'backwardWeight' && !dw ? roundUp(g.o * k, ALIGN) : 0;
  const need = (i: number): number =>
    base + pl.regions(i).reduce((s, r) => s + roundUp(r, ALIGN), 0) + gwFloats + threads * pl.scratch;
  // as many images per chunk as fit the chunk budget (at least one, if the memory can grow to it)
  let images = g.n;
  while (images > 1 && need(images) > host.chunkFloats) images = Math.ceil(images / 2);
  // forward: few enough images per chunk that the staged input and output (the kernels write the output
  // tile by tile, the caller copies it out) stay in the last-level cache; each image is independent, so
  // the results do not depend on the chunking
  if (kind === 'forward') while (images > 1 && images * (chw + g.o * p) > STAGE_FLOATS) images = Math.ceil(images / 2);
  const mem = host.ensure(need(images));
  if (!mem) return false;
  const [r0, r1, r2] = pl.regions(images);
  const in0 = base;
  const in1 = in0 + roundUp(r0, ALIGN);
  const o = in1 + roundUp(r1, ALIGN);
  const gw = o + roundUp(r2, ALIGN);
  const scratch = gw + gwFloats;
  const prm = new Int32Array(mem.buffer, PRM * 4, 32);
  if (dw) {
    // the weight (C, 1, KH, KW) as it is, the bias after it
    const [wt, b] = [inputs[1], inputs[2]];
    if (kind !== 'backwardWeight' && wt) mem.set(f32(wt).subarray(wt.offset, wt.offset + g.o * k), in1);
    if (kind === 'forward' && b) mem.set(f32(b).subarray(b.offset, b.offset + g.o), in1 + g.o * k);
  } else packWeight(kind, g, pl, inputs, mem, in1);
  let threaded = false;
  // a unit is a tile or a plane (~0.1-1 ms of work): claimed one at a time, the threads finish together
  const run = (exportName: string, f: (...a: number[]) => void, units: number, maxChunk: number): void => {
    if (pool && threads > 1 && units >= 2 && units <= MAX_POOLED_PANELS) {
      pool.run(f, [PRM * 4], units, exportName, maxChunk);
      threaded = true;
    } else f(PRM * 4, 0, units, 0);
  };
  for (let n0 = 0; n0 < g.n; n0 += images) {
    const ni = Math.min(images, g.n - n0);
    // forward: the bias follows the packed weight; weight gradient: the gw region and "add" flag
    const extra = kind === 'forward' ? (inputs[2] ? in1 + (dw ? g.o : g.g * pl.ogp) * k : 0) : gw;
    prm.set([
      ni, g.c, g.h, g.w, g.o, g.g, g.cg, g.og, g.kh, g.kw, g.oh, g.ow, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
      in0 * 4, in1 * 4, o * 4, extra * 4, scratch * 4, pl.scratch * 4, pl.nt, pl.tiles, pl.split, pl.cb, pl.ogp, pl.kp,
      pl.blocks, n0 > 0 ? 1 : 0,
    ]); // prettier-ignore
    const a = inputs[0]!;
    const per = kind === 'backwardInput' ? g.o * p : chw;
    mem.set(f32(a).subarray(a.offset + n0 * per, a.offset + (n0 + ni) * per), in0);
    if (kind === 'backwardWeight') {
      const gy = inputs[1]!;
      mem.set(f32(gy).subarray(gy.offset + n0 * g.o * p, gy.offset + (n0 + ni) * g.o * p), in1);
    }
    run(name, fn, pl.units(ni), 1);
    if (kind === 'backwardWeight') {
      if (!dw) run('convSumSlices', sum, g.o, 24);
    } else {
      const per2 = kind === 'forward' ? g.o * p : chw;
      const Y = f32(out);
      const at = out.offset + n0 * per2;
      Y.set(mem.subarray(o, o + ni * per2), at);
      // NaN < 0 is false: NaNs pass through, as torch's relu
      if (relu && kind === 'forward') for (let i = at, e = at + ni * per2; i < e; i++) if (Y[i]! < 0) Y[i] = 0;
    }
  }
  if (kind === 'backwardWeight') f32(out).set(mem.subarray(dw ? o : gw, (dw ? o : gw) + g.o * k), out.offset);
  counters.convWasm++;
  if (threaded) counters.convThreaded++;
  return true;
}

/** Packs the weight (forward: MR-row panels of W[g]; input gradient: of W[g]^T) and the bias at `at`. */
function packWeight(
  kind: ConvKind,
  g: ConvGeom,
  pl: Plan,
  inputs: readonly (TensorSpec | null)[],
  mem: Float32Array,
  at: number,
): void {
  if (kind === 'backwardWeight') return;
  const k = g.cg * g.kh * g.kw;
  const wt = inputs[1]!;
  const W = f32(wt);
  if (kind === 'forward') {
    mem.fill(0, at, at + g.g * pl.ogp * k);
    for (let gi = 0; gi < g.g; gi++) {
      for (let o = 0; o < g.og; o++) {
        const src = wt.offset + (gi * g.og + o) * k;
        const dst = at + gi * pl.ogp * k + (o >> 2) * MR * k + (o & 3);
        for (let q = 0; q < k; q++) mem[dst + q * MR] = W[src + q]!;
      }
    }
    const b = inputs[2];
    if (b) mem.set(f32(b).subarray(b.offset, b.offset + g.o), at + g.g * pl.ogp * k);
    return;
  }
  mem.fill(0, at, at + g.g * pl.kp * g.og);
  for (let gi = 0; gi < g.g; gi++) {
    for (let o = 0; o < g.og; o++) {
      const src = wt.offset + (gi * g.og + o) * k;
      const dst = at + gi * pl.kp * g.og + o * MR;
      for (let q = 0; q < k; q++) mem[dst + (q >> 2) * MR * g.og + (q & 3)] = W[src + q]!;
    }
  }
}
