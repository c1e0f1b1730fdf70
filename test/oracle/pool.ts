// Float64 reference 2-D pooling (max, average, adaptive average) over (N, C, H, W) arrays, written from
// PyTorch's documented definitions, with the exact adjoints (input gradients) of each.
import { nd, type ND } from './ndarray.js';

/** Window geometry as (h, w) pairs; ceilMode picks PyTorch's rounded-up output size. */
export interface PoolGeometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  ceilMode: boolean;
}

/** PyTorch's pooling output length along one dim (pooling_output_shape). */
export function poolLength(len: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const numer = len + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(numer / s) : Math.floor(numer / s)) + 1;
  // a last window that would start in the right padding is dropped
  if (ceil && (out - 1) * s >= len + p) out -= 1;
  return out;
}

function dims(x: ND): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`oracle pool: needs (N, C, H, W), got [${x.shape.join(', ')}]`);
  return x.shape as [number, number, number, number];
}

/**
 * Max pooling: y and the flat in-plane index h * W + w of each window's maximum (the first one in
 * row-major window order on ties; a NaN wins its window). Padding never wins.
 */
export function maxPool2d(x: ND, g: PoolGeometry): { y: ND; argmax: ND } {
  const [n, c, h, w] = dims(x);
  const oh = poolLength(h, g.kernel[0], g.stride[0], g.padding[0], g.dilation[0], g.ceilMode);
  const ow = poolLength(w, g.kernel[1], g.stride[1], g.padding[1], g.dilation[1], g.ceilMode);
  const y = nd([n, c, oh, ow]);
  const argmax = nd([n, c, oh, ow]);
  let o = 0;
  for (let plane = 0; plane < n * c; plane++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++, o++) {
        const taps: { v: number; at: number }[] = [];
        for (let a = 0; a < g.kernel[0]; a++) {
          for (let b = 0; b < g.kernel[1]; b++) {
            const r = i * g.stride[0] - g.padding[0] + a * g.dilation[0];
            const q = j * g.stride[1] - g.padding[1] + b * g.dilation[1];
            if (r >= 0 && r < h && q >= 0 && q < w) taps.push({ v: x.data[plane * h * w + r * w + q]!, at: r * w + q });
          }
        }
        let best = taps[0];
        for (const t of taps) {
          if (Number.isNaN(best!.v)) break;
          if (Number.isNaN(t.v) || t.v > best!.v) best = t;
        }
        y.data[o] = best ? best.v : -Infinity;
        argmax.data[o] = best ? best.at : -1;
      }
    }
  }
  return { y, argmax };
}

/** The input gradient of max pooling: each window's upstream value added at its argmax. */
export function maxPool2dGrad(x: ND, g: PoolGeometry, gy: ND): ND {
  const { argmax } = maxPool2d(x, g);
  const [n, c, h, w] = dims(x);
  const gx = nd([n, c, h, w]);
  const per = argmax.shape[2]! * argmax.shape[3]!;
  for (let o = 0; o < argmax.data.length; o++) {
    const at = argmax.data[o]!;
    const k = Math.floor(o / per) * h * w + at;
    if (at >= 0) gx.data[k] = gx.data[k]! + gy.data[o]!;
  }
  return gx;
}

/** One output's window along a dim: the input indices it averages and its divisor factor. */
type Window = { idx: number[]; count: number };

function avgWindows(len: number, k: number, s: number, p: number, ceil: boolean, includePad: boolean): Window[] {
  const out = poolLength(len, k, s, p, 1, ceil);
  const wins: Window[] = [];
  for (let o = 0; o < out; o++) {
    const idx: number[] = [];
    let padded = 0;
    for (let t = o * s - p; t < o * s - p + k; t++) {
      if (t < len + p) padded++; // positions inside the padded input (ceil mode may run past it)
      if (t >= 0 && t < len) idx.push(t);
    }
    wins.push({ idx, count: includePad ? padded : idx.length });
  }
  return wins;
}

function adaptiveWindows(len: number, out: number): Window[] {
  const wins: Window[] = [];
  for (let o = 0; o < out; o++) {
    const lo = Math.floor((o * len) / out);
    const hi = Math.ceil(((o + 1) * len) / out);
    const idx = Array.from({ length: hi - lo }, (_, i) => lo + i);
    wins.push({ idx, count: idx.length });
  }
  return wins;
}

/** y = A x over the windows (forward), or gx = A^T gy (backward), for separable windows. */
function windowed(x: ND, rows: Window[], cols: Window[], gy: ND | null): ND {
  const [n, c, h, w] = dims(x);
  const [oh, ow] = [rows.length, cols.length];
  const out = gy ? nd([n, c, h, w]) : nd([n, c, oh, ow]);
  for (let plane = 0; plane < n * c; plane++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const div = rows[i]!.count * cols[j]!.count;
        const o = plane * oh * ow + i * ow + j;
        for (const r of rows[i]!.idx) {
          for (const q of cols[j]!.idx) {
            const src = plane * h * w + r * w + q;
            if (gy) out.data[src] = out.data[src]! + gy.data[o]! / div;
            else out.data[o] = out.data[o]! + x.data[src]! / div;
          }
        }
      }
    }
  }
  return out;
}

/** Average pooling options (torch.nn.functional.avg_pool2d). */
export interface AvgGeometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  ceilMode: boolean;
  countIncludePad: boolean;
}

function avgWins(x: ND, g: AvgGeometry): [Window[], Window[]] {
  const [, , h, w] = dims(x);
  return [
    avgWindows(h, g.kernel[0], g.stride[0], g.padding[0], g.ceilMode, g.countIncludePad),
    avgWindows(w, g.kernel[1], g.stride[1], g.padding[1], g.ceilMode, g.countIncludePad),
  ];
}

/** Average pooling with zero padding, divided by the window size with or without the padding. */
export function avgPool2d(x: ND, g: AvgGeometry): ND {
  const [rows, cols] = avgWins(x, g);
  return windowed(x, rows, cols, null);
}

/** The input gradient of average pooling. */
export function avgPool2dGrad(x: ND, g: AvgGeometry, gy: ND): ND {
  const [rows, cols] = avgWins(x, g);
  return windowed(x, rows, cols, gy);
}

/** Adaptive average pooling to (oh, ow). */
export function adaptiveAvgPool2d(x: ND, oh: number, ow: number): ND {
  const [, , h, w] = dims(x);
  return windowed(x, adaptiveWindows(h, oh), adaptiveWindows(w, ow), null);
}

/** The input gradient of adaptive average pooling. */
export function adaptiveAvgPool2dGrad(x: ND, oh: number, ow: number, gy: ND): ND {
  const [, , h, w] = dims(x);
  return windowed(x, adaptiveWindows(h, oh), adaptiveWindows(w, ow), gy);
}
