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
 * Most floats of staged input and output a chunk of images aims at (8 MiB): measured on the 2-core EPYC
 * (32 MiB L3), the ResNet-50 stem forward at batch 8 ran ~5-8% faster in chunks of 2 images (7.6 MB) than
 * in one chunk of 8 (30 MB), whose staged output went to DRAM and back before the copy-out.
 */
const STAGE_FLOATS = 1 << 21;
/** Finished forward tiles the calling thread copies out at a time (each copy is one call per row). */
const COPY_MIN = 4;
/** Units per phase the input gradient's row bands aim at, over all images and groups. */
const BANDS_MIN = 8;
/** Slices the weight gradient's reduction over (image, tile) pairs aims at, over all groups. */
const SLICES = 8;
/** From this many floats of partial sums on, the weight gradient's slices are summed on the pool. */
const SUM_POOL_FLOATS = 1 << 19;
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
    // bands of output rows, in two phases (see wasm/conv.ts convBackwardInput): enough for BANDS_MIN units
    // per phase over all images and groups (a stem at batch 1 has one image, one group and 3 channels), each
    // band at least (KH-1)*DH/SH rows long so that bands two apart touch disjoint gx rows. Their number
    // depends on the shapes only (the banding sets the order of the sums, so the result must not depend on
    // the thread count).
    const minRows = Math.max(1, Math.ceil(((g.kh - 1) * g.dh) / g.sh));
    const bands = Math.max(1, Math.min(Math.floor(g.oh / minRows), Math.ceil((2 * BANDS_MIN) / (g.n * g.g))));
    // then channel blocks (multiples of MR channels, so that a block starts on a packed panel) until there
    // are a few units per thread
    let cb = g.cg;
    const perPhase = Math.ceil(bands / 2);
    while (g.n * g.g * perPhase * Math.ceil(g.cg / cb) < 4 * threads && cb >= 2 * MR)
      cb = roundUp(Math.ceil(cb / 2), MR);
    const mp = roundUp(cb * kk, MR);
    const nt = clampTile(TILE_FLOATS / Math.max(g.og, mp), p);
    const kp = roundUp(k, MR);
    const split = Math.ceil(g.cg / cb);
    return {
      nt, tiles: Math.ceil(p / nt), split, cb, blocks: bands, ogp, kp,
      scratch: roundUp(g.og * nt + mp * nt, ALIGN),
      regions: (i) => [i * g.o * p, g.g * kp * g.og, i * chw],
      units: (i) => i * g.g * split * perPhase,
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
    scratch: roundUp(2 * kp * nt + ogp * nt, ALIGN),
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
  // regions (floats): parameters, in0, in1, out (the weight gradient's slice partials), gw, thread scratch;
  // with several chunks, the staged inputs and outputs twice (`dbl`): while the threads run one chunk, the
  // calling thread stages the next one into the other region and copies the last one's output out
  const base = PRM + 3 * ALIGN;
  const gwFloats = kind === 'backwardWeight' && !dw ? roundUp(g.o * k, ALIGN) : 0;
  const bw = kind === 'backwardWeight';
  const sizes = (i: number, dbl: boolean): [number, number, number] => {
    const [a, b, c] = pl.regions(i).map((r) => roundUp(r, ALIGN)) as [number, number, number];
    return dbl ? [2 * a, bw ? 2 * b : b, bw ? c : 2 * c] : [a, b, c];
  };
  // forward on the pool, one unit per (image, tile): a done flag per unit (see `progress` below)
  const flagged = kind === 'forward' && !dw && threads > 1 && g.g === 1 && pl.split === 1;
  // forward and weight gradient of a padded input: the gathers read a copy with its zero borders (convPad;
  // 16 floats of margin for the stride-2 loads past a row), staged with each chunk (twice where doubled)
  const padded = !dw && kind !== 'backwardInput' && (g.ph > 0 || g.pw > 0) && !!host.exports.convPad;
  const [hp, wp] = [g.h + 2 * g.ph, g.w + 2 * g.pw];
  const padFloats = (i: number): number => (padded ? roundUp(i * g.c * hp * wp + 16, ALIGN) : 0);
  const need = (i: number): number =>
    base +
    sizes(i, i < g.n).reduce((s, r) => s + r, 0) +
    gwFloats +
    threads * pl.scratch +
    (flagged ? roundUp(pl.units(i), ALIGN) : 0) +
    (i < g.n ? 2 : 1) * padFloats(i);
  // few enough images per chunk that the staged input and output stay in the last-level cache (see
  // STAGE_FLOATS); a function of the shapes only, as the weight gradient's sums follow the chunks
  let images = g.n;
  while (images > 1 && images * (chw + g.o * p) > STAGE_FLOATS) images = Math.ceil(images / 2);
  // and that fit the chunk budget (at least one image, if the memory can grow to it)
  while (images > 1 && need(images) > host.chunkFloats) images = Math.ceil(images / 2);
  const mem = host.ensure(need(images));
  if (!mem) return false;
  const dbl = images < g.n;
  const [r0, r1, r2] = pl.regions(images).map((r) => roundUp(r, ALIGN)) as [number, number, number];
  const [s0, s1, s2] = sizes(images, dbl);
  const in0 = base;
  const in1 = in0 + s0;
  const o = in1 + s1;
  const gw = o + s2;
  const scratch = gw + gwFloats;
  const flags = scratch + threads * pl.scratch;
  const xpad = flags + (flagged ? roundUp(pl.units(images), ALIGN) : 0);
  const atPad = (c: number): number => xpad + (dbl ? (c & 1) * padFloats(images) : 0);
  const prm = new Int32Array(mem.buffer, PRM * 4, 36);
  // convPad's own parameter block, after the kernels' (36 words)
  const padPrm = new Int32Array(mem.buffer, (PRM + 36) * 4, 8);
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
  // chunk c's regions (buffer c & 1 where doubled)
  const at0 = (c: number): number => in0 + (dbl ? (c & 1) * r0 : 0);
  const at1 = (c: number): number => in1 + (dbl && bw ? (c & 1) * r1 : 0);
  const atOut = (c: number): number => o + (dbl && !bw ? (c & 1) * r2 : 0);
  const per0 = kind === 'backwardInput' ? g.o * p : chw;
  const chunks = Math.ceil(g.n / images);
  const count = (c: number): number => Math.min(images, g.n - c * images);
  const stage = (c: number): void => {
    const [a, n0, ni] = [inputs[0]!, c * images, count(c)];
    mem.set(f32(a).subarray(a.offset + n0 * per0, a.offset + (n0 + ni) * per0), at0(c));
    if (bw) {
      const gy = inputs[1]!;
      mem.set(f32(gy).subarray(gy.offset + n0 * g.o * p, gy.offset + (n0 + ni) * g.o * p), at1(c));
    }
    if (padded) {
      padPrm.set([at0(c) * 4, atPad(c) * 4, g.h, g.w, g.ph, g.pw, hp, wp]);
      host.exports.convPad!((PRM + 36) * 4, 0, ni * g.c, 0);
    }
  };
  const Y = f32(out);
  // copies rows [0, rows) of chunk c's image i, columns [q0, q1) (row length `len`), out of its region
  const copyRows = (c: number, i: number, rows: number, len: number, q0: number, q1: number): void => {
    const src = atOut(c) + i * rows * len;
    const at = out.offset + (c * images + i) * rows * len;
    for (let r = 0, q = q1 - q0 === len ? rows : 1; r < rows; r += q) {
      const [a, e] = [at + r * len + q0, at + (r + q - 1) * len + q1];
      Y.set(mem.subarray(src + r * len + q0, src + (r + q - 1) * len + q1), a);
      // NaN < 0 is false: NaNs pass through, as torch's relu
      if (relu && kind === 'forward') for (let j = a; j < e; j++) if (Y[j]! < 0) Y[j] = 0;
    }
  };
  // flagged forward: units [0, done[c]) of chunk c are copied out; the calling thread copies finished tiles
  // (COPY_MIN at a time) between its own units, so that only the last few are left after the job
  const done = new Array<number>(chunks).fill(0);
  const fl = new Int32Array(mem.buffer, flags * 4, flagged ? pl.units(images) : 0);
  const progress = (c: number, min: number): void => {
    const units = pl.units(count(c));
    let e = done[c]!;
    while (e < units && Atomics.load(fl, e) === 1) e++;
    if (e - done[c]! < min) return;
    for (let u = done[c]!; u < e;) {
      const [i, t0] = [Math.floor(u / pl.tiles), u % pl.tiles];
      const t1 = Math.min(pl.tiles, t0 + e - u);
      copyRows(c, i, g.o, p, t0 * pl.nt, Math.min(p, t1 * pl.nt));
      u += t1 - t0;
    }
    done[c] = e;
  };
  const [rows, len] = kind === 'forward' ? [g.o, p] : [g.c, g.h * g.w];
  const copyOut = (c: number): void => {
    if (flagged) progress(c, 0);
    else if (!bw) for (let i = 0; i < count(c); i++) copyRows(c, i, rows, len, 0, len);
  };
  let overlapped = false;
  stage(0);
  for (let c = 0; c < chunks; c++) {
    const ni = count(c);
    // forward: the bias follows the packed weight; weight gradient: the gw region and "add" flag
    const extra = kind === 'forward' ? (inputs[2] ? in1 + (dw ? g.o : g.g * pl.ogp) * k : 0) : gw;
    prm.set([
      ni, g.c, g.h, g.w, g.o, g.g, g.cg, g.og, g.kh, g.kw, g.oh, g.ow, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
      at0(c) * 4, (bw ? at1(c) : in1) * 4, atOut(c) * 4, extra * 4, scratch * 4, pl.scratch * 4, pl.nt, pl.tiles,
      pl.split, pl.cb, pl.ogp, pl.kp, pl.blocks, bw && c > 0 ? 1 : 0, flagged ? flags * 4 : 0,
      padded ? atPad(c) * 4 : 0, hp, wp,
    ]); // prettier-ignore
    fl.fill(0);
    // the calling thread's side work for this chunk, done at its first unit (or after the job if it ran none)
    const side = { todo: chunks > 1 };
    const sideWork = (): void => {
      side.todo = false;
      if (c + 1 < chunks) stage(c + 1);
      if (c > 0 && !flagged) copyOut(c - 1);
    };
    const caller = (...a: number[]): void => {
      if (side.todo) {
        overlapped = true;
        sideWork();
      }
      if (flagged) {
        const d = done[c];
        progress(c, COPY_MIN);
        if (done[c] !== d) overlapped = true;
      }
      fn(...a);
    };
    run(name, side.todo || flagged ? caller : fn, pl.units(ni), 1);
    if (side.todo) sideWork();
    if (kind === 'backwardInput' && pl.blocks > 1) {
      // the odd bands, once the even ones are done
      prm[31] = 1;
      run(name, fn, (pl.units(ni) / Math.ceil(pl.blocks / 2)) * Math.floor(pl.blocks / 2), 1);
    }
    // the slice sums: on the pool only when large (a wake-up costs more than summing a few slices)
    if (bw && !dw) {
      if (g.o * k * pl.split >= SUM_POOL_FLOATS) run('convSumSlices', sum, g.o, 24);
      else sum(PRM * 4, 0, g.o, 0);
    }
    // flagged: the tiles left (the flags are reset for the next chunk)
    if (flagged) copyOut(c);
  }
  if (!flagged) copyOut(chunks - 1);
  if (bw) f32(out).set(mem.subarray(dw ? o : gw, (dw ? o : gw) + g.o * k), out.offset);
  counters.convWasm++;
  if (threaded) counters.convThreaded++;
  if (threaded && overlapped) counters.convCopyOverlapped++;
  if (kind === 'backwardInput' && pl.blocks > 1) counters.convBanded++;
  if (padded) counters.convPadded++;
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
