// conv2d as implicit GEMMs on gemm.ts's 4x8 SIMD micro-kernel (AssemblyScript; re-exported by gemm.ts so
// that it shares the module, its memory and the worker pool). The im2col matrix is never built: each work
// unit gathers the columns of one spatial tile straight into packed micro-panels in its thread's scratch,
// multiplies, and stores (forward), scatter-adds (input gradient) or accumulates (weight gradient).
//
// Every export takes (prm, r0, r1, tid): `prm` the byte address of an i32 parameter block (Params below,
// written by src/backend/cpu/convwasm.ts), units [r0, r1) of the job, and the calling thread's index,
// which picks its scratch region. Units write disjoint outputs, so any thread may run any unit.
import { kernel4x8 } from './gemm';

const MR: i32 = 4;
const NR: i32 = 8;
const KC: i32 = 256;

/**
 * The parameter block, laid over the host's i32 words (an unmanaged class: no header, no allocation; the
 * host owns all memory). Field order is the layout; convwasm.ts writes the same order.
 */
@unmanaged
export class Params {
  n: i32; c: i32; h: i32; w: i32; o: i32; g: i32; cg: i32; og: i32; kh: i32; kw: i32; oh: i32; ow: i32;
  sh: i32; sw: i32; ph: i32; pw: i32; dh: i32; dw: i32;
  /**
   * Byte addresses: in0 x (gy for the input gradient), in1 the packed weight (with the bias after it) or gy,
   * out the output (the weight gradient's slice partials), bias the bias (0: none) or the gw rows.
   */
  in0: i32; in1: i32; out: i32; bias: i32;
  /** Scratch base byte address and bytes per thread. */
  scratch: i32; scratchBytes: i32;
  /** Positions per spatial tile (a multiple of NR) and tiles per image. */
  nt: i32; tiles: i32;
  /** Units per (image, group) of the input gradient (channel blocks), or slices of the weight gradient. */
  split: i32;
  /**
   * Forward: output-channel blocks per (image, group, tile) and MR-panels per block; weight gradient:
   * input-channel blocks per slice and channels per block (a multiple of NR unless one block); input
   * gradient: `split` channel blocks of `cb` channels (a multiple of MR unless one block).
   */
  cb: i32;
  /** Output channels per group rounded up to MR; K = Cg*KH*KW rounded up to MR (input gradient) or NR. */
  ogp: i32; kp: i32;
  /** Channel blocks of the weight gradient; convSumSlices: 1 to add to gw instead of storing. */
  blocks: i32; accum: i32;
  /** Forward: byte address of one i32 per unit, set to 1 (atomically) once its output is stored; 0: none. */
  flags: i32;
  /**
   * Byte address of the input staged with its padding (see convPad; 0: none, the gathers bound each tap)
   * and its planes' rows and columns.
   */
  xp: i32; hp: i32; wp: i32;
} // prettier-ignore

function geom(prm: usize): Params {
  return changetype<Params>(prm);
}

/** This thread's scratch region. */
function scratchOf(g: Params, tid: i32): usize {
  return <usize>g.scratch + <usize>tid * <usize>g.scratchBytes;
}

/** Zeroes `n` floats at byte address `d`. */
function zero(d: usize, n: i32): void {
  memory.fill(d, 0, (<usize>n) << 2);
}

/**
 * Gathers the im2col values of channels [0, nc) of image plane block `x` (nc x H x W floats) for tile
 * positions p0 .. p0+nt: the value of row k = (c, i, j) at tile position q goes to float index
 * k*ldr + (q / NR)*NR*ldk + q % NR from `dst` (forward B panels, NR positions wide: ldr = NR, ldk = K;
 * row-major rows: ldr = the row length, ldk = 1). Taps outside the input store 0.
 */
function gather(x: usize, g: Params, nc: i32, p0: i32, nt: i32, dst: usize, ldk: i32, ldr: i32): void {
  const h = g.h,
    w = g.w,
    ow = g.ow,
    sh = g.sh,
    sw = g.sw,
    ph = g.ph,
    dh = g.dh;
  const hw = h * w;
  const sws = (<usize>sw) << 2;
  // q -> float offset: NR-wide panels ldk*NR apart
  const pan = (<usize>(NR * ldk)) << 2;
  let k = 0;
  for (let c = 0; c < nc; c++) {
    for (let i = 0; i < g.kh; i++) {
      for (let j = 0; j < g.kw; j++, k++) {
        const kd = dst + ((<usize>k * ldr) << 2);
        const ixb = j * g.dw - g.pw; // ix = ox * sw + ixb
        // ox in [lo, hi) reads inside the row
        const lo = ixb >= 0 ? 0 : (sw - 1 - ixb) / sw;
        const hi = w - 1 - ixb < 0 ? 0 : (w - 1 - ixb) / sw + 1;
        let q = 0;
        let oy = p0 / ow;
        let ox0 = p0 - oy * ow;
        while (q < nt) {
          const len = min(ow - ox0, nt - q);
          const end = ox0 + len;
          const iy = oy * sh - ph + i * dh;
          const inside = iy >= 0 && iy < h;
          const a = inside ? min(max(lo, ox0), end) : end;
          const b = inside ? max(min(hi, end), a) : end;
          // q of ox is q + ox - ox0
          const qb = q - ox0;
          for (let ox = ox0; ox < a; ox++) {
            const qq = qb + ox;
            store<f32>(kd + <usize>(qq >> 3) * pan + ((<usize>(qq & 7)) << 2), 0);
          }
          let src = x + ((<usize>(c * hw + iy * w + ixb + a * sw)) << 2);
          let ox = a;
          if (sw <= 2) {
            // four taps at a time once q is 4-aligned (four lanes of one panel row); stride 2 loads eight
            // floats and keeps the even ones (the odd eighth may lie past the row: it is never stored)
            for (; ox < b && (qb + ox) & 3; ox++, src += sws) {
              const qq = qb + ox;
              store<f32>(kd + <usize>(qq >> 3) * pan + ((<usize>(qq & 7)) << 2), load<f32>(src));
            }
            if (ox + 4 <= b && (qb + ox) & 4) {
              const qq = qb + ox;
              const v = sw == 1 ? v128.load(src) : v128.shuffle<f32>(v128.load(src), v128.load(src, 16), 0, 2, 4, 6);
              v128.store(kd + <usize>(qq >> 3) * pan + ((<usize>(qq & 7)) << 2), v);
              ox += 4;
              src += sws << 2;
            }
            // then eight at a time: one whole panel row per step
            let d = kd + <usize>((qb + ox) >> 3) * pan;
            if (sw == 1) {
              for (; ox + 8 <= b; ox += 8, src += 32, d += pan) {
                v128.store(d, v128.load(src));
                v128.store(d, v128.load(src, 16), 16);
              }
            } else {
              for (; ox + 8 <= b; ox += 8, src += 64, d += pan) {
                v128.store(d, v128.shuffle<f32>(v128.load(src), v128.load(src, 16), 0, 2, 4, 6));
                v128.store(d, v128.shuffle<f32>(v128.load(src, 32), v128.load(src, 48), 0, 2, 4, 6), 16);
              }
            }
            for (; ox + 4 <= b; ox += 4, src += sws << 2) {
              const qq = qb + ox;
              const v = sw == 1 ? v128.load(src) : v128.shuffle<f32>(v128.load(src), v128.load(src, 16), 0, 2, 4, 6);
              v128.store(kd + <usize>(qq >> 3) * pan + ((<usize>(qq & 7)) << 2), v);
            }
          }
          for (; ox < b; ox++, src += sws) {
            const qq = qb + ox;
            store<f32>(kd + <usize>(qq >> 3) * pan + ((<usize>(qq & 7)) << 2), load<f32>(src));
          }
          for (let ox = b; ox < end; ox++) {
            const qq = qb + ox;
            store<f32>(kd + <usize>(qq >> 3) * pan + ((<usize>(qq & 7)) << 2), 0);
          }
          q += len;
          oy++;
          ox0 = 0;
        }
      }
    }
  }
}

/**
 * gather's fast twin over the padded input (`xp`: channel planes of hp x wp floats, the taps of every
 * output position inside): each (row k, output row) segment is a straight run of stride-sw loads, eight
 * positions at a time once the panel is aligned. Same layout and arguments as gather.
 */
function gatherPadded(xp: usize, g: Params, nc: i32, p0: i32, nt: i32, dst: usize, ldk: i32, ldr: i32): void {
  const ow = g.ow;
  const sw = g.sw;
  const wp = g.wp;
  const plane = g.hp * wp;
  const sws = (<usize>sw) << 2;
  const pan = (<usize>(NR * ldk)) << 2;
  let k = 0;
  for (let c = 0; c < nc; c++) {
    for (let i = 0; i < g.kh; i++) {
      for (let j = 0; j < g.kw; j++, k++) {
        const kd = dst + ((<usize>k * ldr) << 2);
        let q = 0;
        let oy = p0 / ow;
        let ox0 = p0 - oy * ow;
        while (q < nt) {
          const end = ox0 + min(ow - ox0, nt - q);
          const qb = q - ox0;
          let src = xp + ((<usize>(c * plane + (oy * g.sh + i * g.dh) * wp + j * g.dw + ox0 * sw)) << 2);
          let ox = ox0;
          for (; ox < end && (qb + ox) & 7; ox++, src += sws) {
            const qq = qb + ox;
            store<f32>(kd + <usize>(qq >> 3) * pan + ((<usize>(qq & 7)) << 2), load<f32>(src));
          }
          let d = kd + <usize>((qb + ox) >> 3) * pan;
          if (sw == 1) {
            for (; ox + 8 <= end; ox += 8, src += 32, d += pan) {
              v128.store(d, v128.load(src));
              v128.store(d, v128.load(src, 16), 16);
            }
          } else if (sw == 2) {
            // the odd sixteenth float may lie past the row (the planes have a margin after them): never stored
            for (; ox + 8 <= end; ox += 8, src += 64, d += pan) {
              v128.store(d, v128.shuffle<f32>(v128.load(src), v128.load(src, 16), 0, 2, 4, 6));
              v128.store(d, v128.shuffle<f32>(v128.load(src, 32), v128.load(src, 48), 0, 2, 4, 6), 16);
            }
          }
          for (; ox < end; ox++, src += sws) {
            const qq = qb + ox;
            store<f32>(kd + <usize>(qq >> 3) * pan + ((<usize>(qq & 7)) << 2), load<f32>(src));
          }
          q += end - ox0;
          oy++;
          ox0 = 0;
        }
      }
    }
  }
}

/**
 * Stages the padded input: units are planes [r0, r1) of the raw input (H x W floats each, at the byte
 * address in word 0 of `prm`), written with zero borders of ph rows and pw columns into hp x wp planes (at
 * word 1). The parameter block is its own (words: src, dst, H, W, ph, pw, hp, wp), so that the calling
 * thread can pad the next chunk of images while a job runs.
 */
export function convPad(prm: usize, r0: i32, r1: i32, tid: i32): void {
  const src = <usize>load<i32>(prm);
  const dst = <usize>load<i32>(prm, 4);
  const h = load<i32>(prm, 8);
  const w = load<i32>(prm, 12);
  const ph = load<i32>(prm, 16);
  const pw = load<i32>(prm, 20);
  const hp = load<i32>(prm, 24);
  const wp = load<i32>(prm, 28);
  for (let u = r0; u < r1; u++) {
    const s = src + ((<usize>u * h * w) << 2);
    const d = dst + ((<usize>u * hp * wp) << 2);
    zero(d, ph * wp + pw); // the top rows and the first row's left border
    for (let y = 0; y < h; y++) {
      const row = d + ((<usize>((y + ph) * wp + pw)) << 2);
      memory.copy(row, s + ((<usize>y * w) << 2), (<usize>w) << 2);
      // the right border and the next row's left border (the last row: up to the plane's bottom rows)
      zero(row + ((<usize>w) << 2), y + 1 < h ? wp - w : wp - w - pw);
    }
    zero(d + ((<usize>((h + ph) * wp)) << 2), (hp - h - ph) * wp);
  }
}

/**
 * Forward: units are (image, group, tile, output-channel block); y = W[g] @ im2col tile + bias for the
 * block's rows, stored into Y.
 */
export function convForward(prm: usize, r0: i32, r1: i32, tid: i32): void {
  const g = geom(prm);
  const P = g.oh * g.ow;
  const K = g.cg * g.kh * g.kw;
  const NT = g.nt;
  const ogp = g.ogp;
  const X = <usize>g.in0;
  const Wp = <usize>g.in1;
  const Y = <usize>g.out;
  const bias = <usize>g.bias;
  const Bp = scratchOf(g, tid);
  const Ct = Bp + ((<usize>K * NT) << 2);
  const ldcb = (<usize>NT) << 2;
  const blocks = g.split;
  for (let u = r0; u < r1; u++) {
    const rLo = (u % blocks) * g.cb;
    const rHi = min(ogp / MR, rLo + g.cb);
    const v = u / blocks;
    const t = v % g.tiles;
    const ng = v / g.tiles;
    const gi = ng % g.g;
    const n = ng / g.g;
    const p0 = t * NT;
    const nt = min(NT, P - p0);
    const ns = (nt + NR - 1) / NR;
    if (nt & 7) {
      // the last panel's columns past nt read as zeros
      for (let k = 0; k < K; k++) zero(Bp + ((<usize>((ns - 1) * NR * K + k * NR + (nt & 7))) << 2), NR - (nt & 7));
    }
    const cx = n * g.c + gi * g.cg;
    if (g.xp) gatherPadded(<usize>g.xp + ((<usize>cx * g.hp * g.wp) << 2), g, g.cg, p0, nt, Bp, K, NR);
    else gather(X + ((<usize>cx * g.h * g.w) << 2), g, g.cg, p0, nt, Bp, K, NR);
    const wg = Wp + ((<usize>gi * ogp * K) << 2);
    // full 4x8 tiles (all four rows are channels, all eight columns inside the tile) are stored straight
    // into Y (row stride P); the edge tiles go to Ct and are copied below
    const Yt = Y + ((<usize>((n * g.o + gi * g.og) * P + p0)) << 2);
    const ldyb = (<usize>P) << 2;
    const full = nt & ~7;
    const rFull = g.og / MR;
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      for (let s = 0; s < ns; s++) {
        const b = Bp + ((<usize>(s * NR * K + pc * NR)) << 2);
        const direct = s * NR < full;
        for (let r = rLo; r < rHi; r++) {
          const a = wg + ((<usize>(r * MR * K + pc * MR)) << 2);
          if (direct && r < rFull)
            kernel4x8(kc, a, b, Yt + <usize>(r * MR) * ldyb + ((<usize>(s * NR)) << 2), ldyb, pc == 0);
          else kernel4x8(kc, a, b, Ct + ((<usize>(r * MR * NT + s * NR)) << 2), ldcb, pc == 0);
        }
      }
    }
    for (let o = rLo * MR; o < min(g.og, rHi * MR); o++) {
      const oc = gi * g.og + o;
      const bv = bias ? f32x4.splat(load<f32>(bias + ((<usize>oc) << 2))) : f32x4.splat(0);
      const src = Ct + ((<usize>o * NT) << 2);
      const dst = Yt + <usize>o * ldyb;
      // columns [0, q0) are in Y already (only the bias to add)
      const q0 = o < rFull * MR ? full : 0;
      let q = 0;
      if (bias) {
        for (; q < q0; q += 4) {
          const off = (<usize>q) << 2;
          v128.store(dst + off, f32x4.add(v128.load(dst + off), bv));
        }
      }
      q = q0;
      for (; q + 4 <= nt; q += 4) {
        const off = (<usize>q) << 2;
        v128.store(dst + off, f32x4.add(v128.load(src + off), bv));
      }
      for (; q < nt; q++) {
        const off = (<usize>q) << 2;
        store<f32>(dst + off, load<f32>(src + off) + f32x4.extract_lane(bv, 0));
      }
    }
    // the host's calling thread copies finished units out while the workers compute
    if (g.flags) {
      const f = <usize>g.flags + ((<usize>u) << 2);
      if (ASC_FEATURE_THREADS) atomic.store<i32>(f, 1);
      else store<i32>(f, 1);
    }
  }
}

/**
 * Packs rows [0, rows) x columns [0, nt) of a row-major matrix (row stride ld floats) at `src` into
 * NR-column panels at `dst`: panel s holds (r, j) at s*NR*rows + r*NR + j; columns past nt are 0.
 */
function packRowPanels(src: usize, ld: i32, rows: i32, nt: i32, dst: usize): void {
  for (let s = 0; s * NR < nt; s++) {
    const w = min(NR, nt - s * NR);
    let d = dst + ((<usize>s * NR * rows) << 2);
    let p = src + ((<usize>s * NR) << 2);
    const ldb = (<usize>ld) << 2;
    for (let r = 0; r < rows; r++, p += ldb, d += NR << 2) {
      if (w == NR) {
        v128.store(d, v128.load(p));
        v128.store(d, v128.load(p, 16), 16);
      } else
        for (let j = 0; j < NR; j++) store<f32>(d + ((<usize>j) << 2), j < w ? load<f32>(p + ((<usize>j) << 2)) : 0);
    }
  }
}

/**
 * Input gradient: units are (image, group, channel block, band of output rows); for each tile of the band,
 * the column-gradient rows of the block's channels (W^T @ gy tile) are computed and scatter-added into the
 * block's own gx planes. Bands (`blocks` of them per image, each at least (KH-1)*DH/SH output rows long)
 * run in two phases (`accum`: 0 the even bands, 1 the odd ones): the gx rows two bands of one phase touch
 * are disjoint, so no two units of a phase write the same float. Phase 0 also zeroes gx: even band b the
 * rows from its first tap row to band b+2's (the first band from row 0, the last ones to row H).
 */
export function convBackwardInput(prm: usize, r0: i32, r1: i32, tid: i32): void {
  const g = geom(prm);
  const NT = g.nt;
  const kk = g.kh * g.kw;
  const split = g.split;
  const cb = g.cb;
  const Kp = g.kp;
  const bands = g.blocks;
  const phase = g.accum;
  const bip = (bands + 1 - phase) >> 1; // bands of this phase per (image, group, channel block)
  const GY = <usize>g.in0;
  const WTp = <usize>g.in1;
  const GX = <usize>g.out;
  const Bp = scratchOf(g, tid);
  const Ct = Bp + ((<usize>g.og * NT) << 2);
  const ldcb = (<usize>NT) << 2;
  const hw = g.h * g.w;
  const P = g.oh * g.ow;
  for (let u = r0; u < r1; u++) {
    const band = (u % bip) * 2 + phase;
    const v = u / bip;
    const cbi = v % split;
    const ng = v / split;
    const gi = ng % g.g;
    const n = ng / g.g;
    const c0 = cbi * cb;
    const nc = min(cb, g.cg - c0);
    const rows = nc * kk;
    const rp = (rows + MR - 1) / MR;
    const gx = GX + ((<usize>((n * g.c + gi * g.cg + c0) * hw)) << 2);
    const y0 = <i32>((<i64>band * g.oh) / bands);
    const y1 = <i32>((<i64>(band + 1) * g.oh) / bands);
    if (phase == 0) {
      const z0 = bandStart(g, band, bands);
      const z1 = bandStart(g, band + 2, bands);
      if (z1 > z0) for (let c = 0; c < nc; c++) zero(gx + ((<usize>(c * hw + z0 * g.w)) << 2), (z1 - z0) * g.w);
    }
    const wg = WTp + ((<usize>(gi * Kp * g.og + c0 * kk * g.og)) << 2); // c0 * kk is a multiple of MR
    // the band's positions in tiles of equal length (a multiple of NR, at most NT)
    const len = (y1 - y0) * g.ow;
    const ntiles = (len + NT - 1) / NT;
    const step = ntiles > 0 ? ((len + ntiles - 1) / ntiles + NR - 1) & ~(NR - 1) : NT;
    for (let p0 = y0 * g.ow; p0 < y1 * g.ow; p0 += step) {
      const nt = min(step, y1 * g.ow - p0);
      const ns = (nt + NR - 1) / NR;
      packRowPanels(GY + ((<usize>((n * g.o + gi * g.og) * P + p0)) << 2), P, g.og, nt, Bp);
      for (let pc = 0; pc < g.og; pc += KC) {
        const kc = min(KC, g.og - pc);
        for (let s = 0; s < ns; s++) {
          const b = Bp + ((<usize>(s * NR * g.og + pc * NR)) << 2);
          for (let r = 0; r < rp; r++) {
            const a = wg + ((<usize>(r * MR * g.og + pc * MR)) << 2);
            kernel4x8(kc, a, b, Ct + ((<usize>(r * MR * NT + s * NR)) << 2), ldcb, pc == 0);
          }
        }
      }
      scatter(Ct, NT, g, nc, p0, nt, gx);
    }
  }
}

/** The first gx row band `b` of `bands` zeroes in phase 0: its first tap row (0 for band 0, H past the last). */
function bandStart(g: Params, b: i32, bands: i32): i32 {
  if (b == 0) return 0;
  if (b >= bands) return g.h;
  const a = <i32>((<i64>b * g.oh) / bands);
  return min(g.h, max(0, a * g.sh - g.ph));
}

/** col2im of one tile: gx[c, iy, ix] += col[(c, i, j), q] over the tile positions whose tap is inside. */
function scatter(col: usize, ld: i32, g: Params, nc: i32, p0: i32, nt: i32, gx: usize): void {
  const hw = g.h * g.w;
  let k = 0;
  for (let c = 0; c < nc; c++) {
    for (let i = 0; i < g.kh; i++) {
      for (let j = 0; j < g.kw; j++, k++) {
        const src = col + ((<usize>k * ld) << 2);
        const ixb = j * g.dw - g.pw;
        const lo = ixb >= 0 ? 0 : (g.sw - 1 - ixb) / g.sw;
        const hi = g.w - 1 - ixb < 0 ? 0 : (g.w - 1 - ixb) / g.sw + 1;
        let q = 0;
        let oy = p0 / g.ow;
        let ox0 = p0 - oy * g.ow;
        while (q < nt) {
          const len = min(g.ow - ox0, nt - q);
          const iy = oy * g.sh - g.ph + i * g.dh;
          if (iy >= 0 && iy < g.h) {
            const a = min(max(lo, ox0), ox0 + len);
            const b = max(min(hi, ox0 + len), a);
            const row = gx + ((<usize>(c * hw + iy * g.w + ixb)) << 2);
            const s = src + ((<usize>(q - ox0)) << 2);
            if (g.sw == 1) {
              let ox = a;
              for (; ox + 4 <= b; ox += 4) {
                const d = row + ((<usize>ox) << 2);
                v128.store(d, f32x4.add(v128.load(d), v128.load(s + ((<usize>ox) << 2))));
              }
              for (; ox < b; ox++) {
                const d = row + ((<usize>ox) << 2);
                store<f32>(d, load<f32>(d) + load<f32>(s + ((<usize>ox) << 2)));
              }
            } else if (g.sw == 2) {
              // four columns at a time into eight floats of the row, the odd ones plus 0 (unchanged, but
              // for -0), while the eighth float lies inside the row
              let ox = a;
              const vEnd = min(b, (g.w - ixb - 8) / 2 + 1);
              for (; ox + 4 <= vEnd; ox += 4) {
                const d = row + ((<usize>(ox * 2)) << 2);
                const v = v128.load(s + ((<usize>ox) << 2));
                const z = f32x4.splat(0);
                v128.store(d, f32x4.add(v128.load(d), v128.shuffle<f32>(v, z, 0, 4, 1, 4)));
                v128.store(d, f32x4.add(v128.load(d, 16), v128.shuffle<f32>(v, z, 2, 4, 3, 4)), 16);
              }
              for (; ox < b; ox++) {
                const d = row + ((<usize>(ox * 2)) << 2);
                store<f32>(d, load<f32>(d) + load<f32>(s + ((<usize>ox) << 2)));
              }
            } else {
              for (let ox = a; ox < b; ox++) {
                const d = row + ((<usize>(ox * g.sw)) << 2);
                store<f32>(d, load<f32>(d) + load<f32>(s + ((<usize>ox) << 2)));
              }
            }
          }
          q += len;
          oy++;
          ox0 = 0;
        }
      }
    }
  }
}

/**
 * Weight gradient: units are (group, slice, input-channel block); a slice accumulates gy tile @ im2col
 * tile^T over its share of the (image, tile) pairs into its own partial (OGP x KP floats), each channel
 * block into its own columns; convSumSlices then sums the slices in order.
 */
export function convBackwardWeight(prm: usize, r0: i32, r1: i32, tid: i32): void {
  const g = geom(prm);
  const P = g.oh * g.ow;
  const NT = g.nt;
  const slices = g.split;
  const ogp = g.ogp;
  const Kp = g.kp; // a multiple of NR
  const n = g.n;
  const X = <usize>g.in0;
  const GY = <usize>g.in1;
  const PART = <usize>g.out;
  const Bp = scratchOf(g, tid);
  const Ap = Bp + ((<usize>Kp * NT) << 2);
  const T = Ap + ((<usize>ogp * NT) << 2); // the tile's im2col rows, row-major (Kp x NT)
  const ldcb = (<usize>Kp) << 2;
  const pairs = n * g.tiles;
  const kk = g.kh * g.kw;
  for (let u = r0; u < r1; u++) {
    const c0 = (u % g.blocks) * g.cb;
    const v = u / g.blocks;
    const sl = v % slices;
    const gi = v / slices;
    const nc = min(g.cb, g.cg - c0);
    const colp = (nc * kk + NR - 1) & ~(NR - 1); // this block's columns, from k0 = c0 * kk (a multiple of NR)
    const C = PART + ((<usize>(v * ogp * Kp + c0 * kk)) << 2);
    for (let r = 0; r < ogp; r++) zero(C + ((<usize>r * Kp) << 2), colp);
    zero(T + ((<usize>nc * kk * NT) << 2), (colp - nc * kk) * NT); // rows past the block's stay 0
    zero(Ap, ogp * NT); // rows o >= og stay 0
    const e = <i32>((<i64>(sl + 1) * pairs) / slices);
    for (let pr = <i32>((<i64>sl * pairs) / slices); pr < e; pr++) {
      const img = pr / g.tiles;
      const p0 = (pr % g.tiles) * NT;
      const nt = min(NT, P - p0);
      // B panels: the im2col rows k (NR at a time) interleaved per position: (k, q) at (k/NR)*NR*NT + q*NR +
      // k%NR, gathered row-major into T, then transposed
      const cx = img * g.c + gi * g.cg + c0;
      if (g.xp) gatherPadded(<usize>g.xp + ((<usize>cx * g.hp * g.wp) << 2), g, nc, p0, nt, T, 1, NT);
      else gather(X + ((<usize>cx * g.h * g.w) << 2), g, nc, p0, nt, T, 1, NT);
      for (let k = 0; k < colp; k += 4)
        interleave4(T + ((<usize>k * NT) << 2), NT, nt, Bp + ((<usize>((k >> 3) * NR * NT + (k & 7))) << 2), NR);
      // A panels: gy rows o (MR at a time) interleaved per position: (o, q) at (o/MR)*MR*NT + q*MR + o%MR
      const gy = GY + ((<usize>((img * g.o + gi * g.og) * P + p0)) << 2);
      let o = 0;
      for (; o + MR <= g.og; o += MR) interleave4(gy + ((<usize>o * P) << 2), P, nt, Ap + ((<usize>o * NT) << 2), MR);
      for (; o < g.og; o++) {
        const src = gy + ((<usize>o * P) << 2);
        const d = Ap + ((<usize>((o >> 2) * MR * NT + (o & 3))) << 2);
        for (let q = 0; q < nt; q++) store<f32>(d + ((<usize>q * MR) << 2), load<f32>(src + ((<usize>q) << 2)));
      }
      for (let pc = 0; pc < nt; pc += KC) {
        const kc = min(KC, nt - pc);
        for (let s = 0; s < colp / NR; s++) {
          const b = Bp + ((<usize>(s * NR * NT + pc * NR)) << 2);
          for (let r = 0; r < ogp / MR; r++) {
            const a = Ap + ((<usize>(r * MR * NT + pc * MR)) << 2);
            kernel4x8(kc, a, b, C + ((<usize>(r * MR * Kp + s * NR)) << 2), ldcb, false);
          }
        }
      }
    }
  }
}

/**
 * Interleaves four rows (`src`, row stride `ld` floats) over positions [0, nt): the four values of position
 * q go to dst + q*step floats (4x4 transposes; a last partial group of positions reads and writes whole
 * vectors up to the next multiple of 4, within the rows' and panel's padding).
 */
function interleave4(src: usize, ld: i32, nt: i32, dst: usize, step: i32): void {
  const ldb = (<usize>ld) << 2;
  const sb = (<usize>step) << 2;
  for (let q = 0; q < nt; q += 4) {
    const s = src + ((<usize>q) << 2);
    const a0 = v128.load(s);
    const a1 = v128.load(s + ldb);
    const a2 = v128.load(s + 2 * ldb);
    const a3 = v128.load(s + 3 * ldb);
    const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5);
    const t1 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5);
    const t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
    const d = dst + <usize>q * sb;
    v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
    v128.store(d + sb, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
    v128.store(d + 2 * sb, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
    v128.store(d + 3 * sb, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
  }
}

/**
 * Weight gradient, second pass: units are rows (group, o) of gw (O x K floats at `bias`); each sums its
 * row of every slice's partial, in slice order, adding to what is there when `accum` is 1 (a later chunk
 * of images) and storing otherwise.
 */
export function convSumSlices(prm: usize, r0: i32, r1: i32, tid: i32): void {
  const g = geom(prm);
  const K = g.cg * g.kh * g.kw;
  const slices = g.split;
  const ogp = g.ogp;
  const Kp = g.kp;
  const add = g.accum != 0;
  const rowb = (<usize>ogp * Kp) << 2; // one slice's partial, in bytes
  for (let u = r0; u < r1; u++) {
    const gi = u / g.og;
    const o = u % g.og;
    const dst = <usize>g.bias + ((<usize>u * K) << 2);
    const src = <usize>g.out + ((<usize>(gi * slices * ogp + o) * Kp) << 2);
    let q = 0;
    for (; q + 4 <= K; q += 4) {
      const off = (<usize>q) << 2;
      let acc = add ? v128.load(dst + off) : f32x4.splat(0);
      for (let s = 0; s < slices; s++) acc = f32x4.add(acc, v128.load(src + <usize>s * rowb + off));
      v128.store(dst + off, acc);
    }
    for (; q < K; q++) {
      const off = (<usize>q) << 2;
      let acc: f32 = add ? load<f32>(dst + off) : 0;
      for (let s = 0; s < slices; s++) acc += load<f32>(src + <usize>s * rowb + off);
      store<f32>(dst + off, acc);
    }
  }
}
