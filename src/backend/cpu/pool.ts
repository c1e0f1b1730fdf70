// 2-D pooling on the CPU, one (n, c) plane at a time: the plane is read (through any strides) into a
// contiguous row of doubles, pooled, and written out contiguously. Max pooling records each window's
// argmax (h * W + w) for its backward; the backward kernels accumulate a plane in doubles, so windows
// that overlap simply add up (one plane is one sequential loop: nothing to race).
import type { TypedArray } from '../../core/dtype.js';
import type { AvgPool2dAttrs, MaxPool2dAttrs } from '../../ops/opcodes.js';
import type { Operand, TensorSpec } from '../backend.js';
import { view } from './buffer.js';
import { readF64, scratchF64, writeF64 } from './strided.js';

/** Reads plane (n, c) of a 4-D spec into dst[0 .. H * W) row-major. */
function readPlane(t: TensorSpec, arr: TypedArray, n: number, c: number, dst: Float64Array): void {
  const [, , h, w] = t.shape as [number, number, number, number];
  const [sn, sc, sh, sw] = t.strides as [number, number, number, number];
  const base = t.offset + n * sn + c * sc;
  for (let i = 0; i < h; i++) readF64(arr, t.dtype, base + i * sh, sw, w, dst, i * w);
}

/**
 * For each of `outLen` windows along a dim, the window's first input index and the range [lo, hi) of
 * its taps that land inside the input (so the pooling loops need no bounds tests).
 */
function taps(len: number, outLen: number, k: number, s: number, p: number, d: number): Int32Array {
  const t = new Int32Array(3 * outLen);
  for (let o = 0; o < outLen; o++) {
    const first = o * s - p;
    t[3 * o] = first;
    t[3 * o + 1] = first >= 0 ? 0 : Math.min(k, Math.ceil(-first / d));
    t[3 * o + 2] = Math.max(0, Math.min(k, Math.floor((len - 1 - first) / d) + 1));
  }
  return t;
}

/** Inputs: x (N, C, H, W), then the aux output argmax (N, C, OH, OW) int32. Writes y (N, C, OH, OW). */
export function maxPool2d(inputs: readonly Operand[], out: TensorSpec, a: MaxPool2dAttrs): void {
  const x = inputs[0] as TensorSpec;
  const ix = inputs[1] as TensorSpec;
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [oh, ow] = [out.shape[2]!, out.shape[3]!];
  const [dh, dw] = a.dilation;
  const rt = taps(h, oh, a.kernel[0], a.stride[0], a.padding[0], dh);
  const ct = taps(w, ow, a.kernel[1], a.stride[1], a.padding[1], dw);
  const src = view(x.buffer, x.dtype);
  const dst = view(out.buffer, out.dtype);
  const idx = view(ix.buffer, 'int32');
  const plane = scratchF64(0, h * w);
  const res = scratchF64(1, oh * ow);
  for (let ni = 0; ni < n; ni++) {
    for (let ci = 0; ci < c; ci++) {
      readPlane(x, src, ni, ci, plane);
      const p = ni * c + ci;
      const ibase = ix.offset + p * oh * ow;
      for (let y = 0; y < oh; y++) {
        const h0 = rt[3 * y]!;
        const i0 = rt[3 * y + 1]!;
        const i1 = rt[3 * y + 2]!;
        for (let z = 0; z < ow; z++) {
          const w0 = ct[3 * z]!;
          const j0 = ct[3 * z + 1]!;
          const j1 = ct[3 * z + 2]!;
          let best = -Infinity;
          let at = -1;
          for (let i = i0; i < i1; i++) {
            const row = (h0 + i * dh) * w + w0;
            for (let j = j0; j < j1; j++) {
              const v = plane[row + j * dw]!;
              // NaN propagates (as in PyTorch): a NaN always takes the window
              if (v > best || v !== v) {
                best = v;
                at = row + j * dw;
              }
            }
          }
          res[y * ow + z] = best;
          idx[ibase + y * ow + z] = at;
        }
      }
      writeF64(res, 0, oh * ow, dst, out.dtype, out.offset + p * oh * ow, 1);
    }
  }
}

/** Inputs: gy (N, C, OH, OW) any strides, argmax (N, C, OH, OW) int32 contiguous. Writes gx (N, C, H, W). */
export function maxPool2dBackward(inputs: readonly Operand[], out: TensorSpec): void {
  const g = inputs[0] as TensorSpec;
  const ix = inputs[1] as TensorSpec;
  const [n, c, oh, ow] = g.shape as [number, number, number, number];
  const hw = out.shape[2]! * out.shape[3]!;
  const gs = view(g.buffer, g.dtype);
  const idx = view(ix.buffer, 'int32');
  const dst = view(out.buffer, out.dtype);
  const gp = scratchF64(0, oh * ow);
  const acc = scratchF64(1, hw);
  for (let ni = 0; ni < n; ni++) {
    for (let ci = 0; ci < c; ci++) {
      readPlane(g, gs, ni, ci, gp);
      const p = ni * c + ci;
      const ibase = ix.offset + p * oh * ow;
      acc.fill(0, 0, hw);
      for (let k = 0; k < oh * ow; k++) {
        const at = idx[ibase + k]!;
        if (at >= 0) acc[at] = acc[at]! + gp[k]!;
      }
      writeF64(acc, 0, hw, dst, out.dtype, out.offset + p * hw, 1);
    }
  }
}

/** Per-output window bounds along one dim: clipped [start, end) and the divisor factor. */
interface Windows {
  readonly start: Int32Array;
  readonly end: Int32Array;
  readonly count: Float64Array;
}

/**
 * The windows of average pooling along a dim of length `len` with `outLen` outputs. Fixed windows span
 * [o * s - p, + k) capped at len + p (ceil mode's last window), counted with the padding when
 * `includePad`; adaptive ones span [floor(o * len / outLen), ceil((o + 1) * len / outLen)).
 */
function windows(len: number, outLen: number, k: number, s: number, p: number, a: AvgPool2dAttrs): Windows {
  const start = new Int32Array(outLen);
  const end = new Int32Array(outLen);
  const count = new Float64Array(outLen);
  for (let o = 0; o < outLen; o++) {
    let lo: number;
    let hi: number;
    let cnt: number;
    if (a.adaptive) {
      lo = Math.floor((o * len) / outLen);
      hi = Math.ceil(((o + 1) * len) / outLen);
      cnt = hi - lo;
    } else {
      lo = o * s - p;
      hi = Math.min(lo + k, len + p);
      const padded = hi - lo;
      lo = Math.max(lo, 0);
      hi = Math.min(hi, len);
      cnt = a.countIncludePad ? padded : hi - lo;
    }
    start[o] = lo;
    end[o] = hi;
    count[o] = cnt;
  }
  return { start, end, count };
}

/** The row and column windows of an avgPool2d call mapping (H, W) to (OH, OW). */
function planeWindows(h: number, w: number, oh: number, ow: number, a: AvgPool2dAttrs): [Windows, Windows] {
  return [
    windows(h, oh, a.kernel[0], a.stride[0], a.padding[0], a),
    windows(w, ow, a.kernel[1], a.stride[1], a.padding[1], a),
  ];
}

/** Inputs: x (N, C, H, W) any strides. Writes y (N, C, OH, OW): each window's sum over its divisor. */
export function avgPool2d(inputs: readonly Operand[], out: TensorSpec, a: AvgPool2dAttrs): void {
  const x = inputs[0] as TensorSpec;
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [oh, ow] = [out.shape[2]!, out.shape[3]!];
  const [rows, cols] = planeWindows(h, w, oh, ow, a);
  const src = view(x.buffer, x.dtype);
  const dst = view(out.buffer, out.dtype);
  const plane = scratchF64(0, h * w);
  const res = scratchF64(1, oh * ow);
  for (let ni = 0; ni < n; ni++) {
    for (let ci = 0; ci < c; ci++) {
      readPlane(x, src, ni, ci, plane);
      for (let y = 0; y < oh; y++) {
        const h0 = rows.start[y]!;
        const h1 = rows.end[y]!;
        for (let z = 0; z < ow; z++) {
          const w0 = cols.start[z]!;
          const w1 = cols.end[z]!;
          let s = 0;
          for (let i = h0; i < h1; i++) for (let j = w0; j < w1; j++) s += plane[i * w + j]!;
          res[y * ow + z] = s / (rows.count[y]! * cols.count[z]!);
        }
      }
      writeF64(res, 0, oh * ow, dst, out.dtype, out.offset + (ni * c + ci) * oh * ow, 1);
    }
  }
}

/** Inputs: gy (N, C, OH, OW) any strides. Writes gx (N, C, H, W): each window's gy / divisor spread over it. */
export function avgPool2dBackward(inputs: readonly Operand[], out: TensorSpec, a: AvgPool2dAttrs): void {
  const g = inputs[0] as TensorSpec;
  const [n, c, oh, ow] = g.shape as [number, number, number, number];
  const [h, w] = [out.shape[2]!, out.shape[3]!];
  const [rows, cols] = planeWindows(h, w, oh, ow, a);
  const gs = view(g.buffer, g.dtype);
  const dst = view(out.buffer, out.dtype);
  const gp = scratchF64(0, oh * ow);
  const acc = scratchF64(1, h * w);
  for (let ni = 0; ni < n; ni++) {
    for (let ci = 0; ci < c; ci++) {
      readPlane(g, gs, ni, ci, gp);
      acc.fill(0, 0, h * w);
      for (let y = 0; y < oh; y++) {
        const h0 = rows.start[y]!;
        const h1 = rows.end[y]!;
        for (let z = 0; z < ow; z++) {
          const w0 = cols.start[z]!;
          const w1 = cols.end[z]!;
          const v = gp[y * ow + z]! / (rows.count[y]! * cols.count[z]!);
          for (let i = h0; i < h1; i++) for (let j = w0; j < w1; j++) acc[i * w + j] = acc[i * w + j]! + v;
        }
      }
      writeF64(acc, 0, h * w, dst, out.dtype, out.offset + (ni * c + ci) * h * w, 1);
    }
  }
}
