// Depthwise conv2d (groups == C == O: one input and one output channel per group) as direct loops over
// planes, SIMD across output columns at stride 1. The implicit GEMM of conv.ts would waste 3 of the 4 rows
// of its register tile and run its K loop over only KH*KW taps. Same parameter block and calling
// convention as conv.ts (prm, r0, r1, tid); a unit is one plane, so units never write the same memory.
import { Params } from './conv';

/** Columns [lo, hi) of the output whose tap at input column ox*sw + ixb lies inside a row of w. */
function colLo(ixb: i32, sw: i32): i32 {
  return ixb >= 0 ? 0 : (sw - 1 - ixb) / sw;
}
function colHi(ixb: i32, sw: i32, w: i32, ow: i32): i32 {
  return min(ow, w - 1 - ixb < 0 ? 0 : (w - 1 - ixb) / sw + 1);
}

/** Forward: units are planes (n, c); y[n, c] = bias[c] + sum of the taps' shifted, scaled input rows. */
export function dwForward(prm: usize, r0: i32, r1: i32, tid: i32): void {
  const g = changetype<Params>(prm);
  const h = g.h,
    w = g.w,
    oh = g.oh,
    ow = g.ow,
    kh = g.kh,
    kw = g.kw,
    sw = g.sw;
  for (let u = r0; u < r1; u++) {
    const c = u % g.c;
    const x = <usize>g.in0 + ((<usize>u * h * w) << 2);
    const y = <usize>g.out + ((<usize>u * oh * ow) << 2);
    const wt = <usize>g.in1 + ((<usize>c * kh * kw) << 2);
    const b: f32 = g.bias ? load<f32>(<usize>g.bias + ((<usize>c) << 2)) : 0;
    for (let oy = 0; oy < oh; oy++) {
      const yr = y + ((<usize>oy * ow) << 2);
      for (let ox = 0; ox < ow; ox++) store<f32>(yr + ((<usize>ox) << 2), b);
      for (let i = 0; i < kh; i++) {
        const iy = oy * g.sh - g.ph + i * g.dh;
        if (iy < 0 || iy >= h) continue;
        for (let j = 0; j < kw; j++) {
          const wv = load<f32>(wt + ((<usize>(i * kw + j)) << 2));
          const ixb = j * g.dw - g.pw;
          const lo = colLo(ixb, sw);
          const hi = colHi(ixb, sw, w, ow);
          const xr = x + ((<usize>(iy * w + ixb)) << 2);
          let ox = lo;
          if (sw == 1) {
            const vw = f32x4.splat(wv);
            for (; ox + 4 <= hi; ox += 4) {
              const d = yr + ((<usize>ox) << 2);
              v128.store(d, f32x4.add(v128.load(d), f32x4.mul(vw, v128.load(xr + ((<usize>ox) << 2)))));
            }
          }
          for (; ox < hi; ox++) {
            const d = yr + ((<usize>ox) << 2);
            store<f32>(d, load<f32>(d) + wv * load<f32>(xr + ((<usize>(ox * sw)) << 2)));
          }
        }
      }
    }
  }
}

/** Input gradient: units are planes (n, c); each tap scatters its scaled gy rows into the gx plane. */
export function dwBackwardInput(prm: usize, r0: i32, r1: i32, tid: i32): void {
  const g = changetype<Params>(prm);
  const h = g.h,
    w = g.w,
    oh = g.oh,
    ow = g.ow,
    kh = g.kh,
    kw = g.kw,
    sw = g.sw;
  for (let u = r0; u < r1; u++) {
    const c = u % g.c;
    const gy = <usize>g.in0 + ((<usize>u * oh * ow) << 2);
    const gx = <usize>g.out + ((<usize>u * h * w) << 2);
    const wt = <usize>g.in1 + ((<usize>c * kh * kw) << 2);
    memory.fill(gx, 0, (<usize>h * w) << 2);
    for (let oy = 0; oy < oh; oy++) {
      const gr = gy + ((<usize>oy * ow) << 2);
      for (let i = 0; i < kh; i++) {
        const iy = oy * g.sh - g.ph + i * g.dh;
        if (iy < 0 || iy >= h) continue;
        for (let j = 0; j < kw; j++) {
          const wv = load<f32>(wt + ((<usize>(i * kw + j)) << 2));
          const ixb = j * g.dw - g.pw;
          const lo = colLo(ixb, sw);
          const hi = colHi(ixb, sw, w, ow);
          const xr = gx + ((<usize>(iy * w + ixb)) << 2);
          let ox = lo;
          if (sw == 1) {
            const vw = f32x4.splat(wv);
            for (; ox + 4 <= hi; ox += 4) {
              const d = xr + ((<usize>ox) << 2);
              v128.store(d, f32x4.add(v128.load(d), f32x4.mul(vw, v128.load(gr + ((<usize>ox) << 2)))));
            }
          }
          for (; ox < hi; ox++) {
            const d = xr + ((<usize>(ox * sw)) << 2);
            store<f32>(d, load<f32>(d) + wv * load<f32>(gr + ((<usize>ox) << 2)));
          }
        }
      }
    }
  }
}

/**
 * Weight gradient: units are channels c; gw[c, i, j] = sum over the images and output positions of gy * x
 * (added to what is there when `accum` is 1).
 */
export function dwBackwardWeight(prm: usize, r0: i32, r1: i32, tid: i32): void {
  const g = changetype<Params>(prm);
  const h = g.h,
    w = g.w,
    oh = g.oh,
    ow = g.ow,
    kh = g.kh,
    kw = g.kw,
    sw = g.sw;
  for (let c = r0; c < r1; c++) {
    const gw = <usize>g.out + ((<usize>c * kh * kw) << 2);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const ixb = j * g.dw - g.pw;
        const lo = colLo(ixb, sw);
        const hi = colHi(ixb, sw, w, ow);
        let acc = f32x4.splat(0);
        let s: f32 = 0;
        for (let n = 0; n < g.n; n++) {
          const plane = n * g.c + c;
          const x = <usize>g.in0 + ((<usize>plane * h * w) << 2);
          const gy = <usize>g.in1 + ((<usize>plane * oh * ow) << 2);
          for (let oy = 0; oy < oh; oy++) {
            const iy = oy * g.sh - g.ph + i * g.dh;
            if (iy < 0 || iy >= h) continue;
            const xr = x + ((<usize>(iy * w + ixb)) << 2);
            const gr = gy + ((<usize>oy * ow) << 2);
            let ox = lo;
            if (sw == 1) {
              for (; ox + 4 <= hi; ox += 4) {
                const off = (<usize>ox) << 2;
                acc = f32x4.add(acc, f32x4.mul(v128.load(gr + off), v128.load(xr + off)));
              }
            }
            for (; ox < hi; ox++) s += load<f32>(gr + ((<usize>ox) << 2)) * load<f32>(xr + ((<usize>(ox * sw)) << 2));
          }
        }
        s +=
          f32x4.extract_lane(acc, 0) +
          f32x4.extract_lane(acc, 1) +
          f32x4.extract_lane(acc, 2) +
          f32x4.extract_lane(acc, 3);
        const d = gw + ((<usize>(i * kw + j)) << 2);
        store<f32>(d, g.accum ? load<f32>(d) + s : s); // accum: a later chunk of images
      }
    }
  }
}
