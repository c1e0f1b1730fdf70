// Float64 reference 2-D convolution (torch.nn.functional.conv2d semantics) and its two gradients, as
// plain direct loops over the definition: y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] *
// x[n, g*Cg + c, i*sh - ph + p*dh, j*sw - pw + q*dw], taps outside the input reading 0.
import { nd, type ND } from './ndarray.js';

/** Convolution parameters, as (H, W) pairs. */
export interface ConvParams {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** Output spatial size along one dim. */
export function convOut(len: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((len + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

interface Geom {
  n: number; c: number; h: number; w: number; o: number; cg: number; og: number; kh: number; kw: number;
  oh: number; ow: number;
} // prettier-ignore

function geom(xs: readonly number[], ws: readonly number[], p: ConvParams): Geom {
  const [n, c, h, w] = xs as [number, number, number, number];
  const [o, cg, kh, kw] = ws as [number, number, number, number];
  if (cg * p.groups !== c || o % p.groups !== 0) throw new Error('oracle conv2d: bad channels/groups');
  const oh = convOut(h, kh, p.stride[0], p.padding[0], p.dilation[0]);
  const ow = convOut(w, kw, p.stride[1], p.padding[1], p.dilation[1]);
  return { n, c, h, w, o, cg, og: o / p.groups, kh, kw, oh, ow };
}

/**
 * Calls `f(xIndex, wIndex, yIndex)` for every (output, tap) pair whose input position is inside the
 * input: the one loop nest all three references share.
 */
function forEachTap(g: Geom, p: ConvParams, f: (xi: number, wi: number, yi: number) => void): void {
  for (let n = 0; n < g.n; n++)
    for (let o = 0; o < g.o; o++) {
      const grp = Math.floor(o / g.og);
      for (let i = 0; i < g.oh; i++)
        for (let j = 0; j < g.ow; j++) {
          const yi = ((n * g.o + o) * g.oh + i) * g.ow + j;
          for (let c = 0; c < g.cg; c++)
            for (let a = 0; a < g.kh; a++) {
              const y = i * p.stride[0] - p.padding[0] + a * p.dilation[0];
              if (y < 0 || y >= g.h) continue;
              for (let b = 0; b < g.kw; b++) {
                const x = j * p.stride[1] - p.padding[1] + b * p.dilation[1];
                if (x < 0 || x >= g.w) continue;
                const xi = ((n * g.c + grp * g.cg + c) * g.h + y) * g.w + x;
                f(xi, ((o * g.cg + c) * g.kh + a) * g.kw + b, yi);
              }
            }
        }
    }
}

/** y = conv2d(x, w) + bias. */
export function conv2d(x: ND, w: ND, bias: ND | null, p: ConvParams): ND {
  const g = geom(x.shape, w.shape, p);
  const y = nd([g.n, g.o, g.oh, g.ow]);
  if (bias) for (let i = 0; i < y.data.length; i++) y.data[i] = bias.data[Math.floor(i / (g.oh * g.ow)) % g.o]!;
  forEachTap(g, p, (xi, wi, yi) => (y.data[yi]! += w.data[wi]! * x.data[xi]!));
  return y;
}

/** The input gradient: d/dx sum(gy * conv2d(x, w)) for an input of shape `xShape`. */
export function conv2dGradInput(gy: ND, w: ND, xShape: readonly number[], p: ConvParams): ND {
  const g = geom(xShape, w.shape, p);
  const gx = nd(xShape);
  forEachTap(g, p, (xi, wi, yi) => (gx.data[xi]! += w.data[wi]! * gy.data[yi]!));
  return gx;
}

/** The weight gradient: d/dw sum(gy * conv2d(x, w)) for a weight of shape `wShape`. */
export function conv2dGradWeight(x: ND, gy: ND, wShape: readonly number[], p: ConvParams): ND {
  const g = geom(x.shape, wShape, p);
  const gw = nd(wShape);
  forEachTap(g, p, (xi, wi, yi) => (gw.data[wi]! += x.data[xi]! * gy.data[yi]!));
  return gw;
}

/** The bias gradient: gy summed over batch and space, (O). */
export function conv2dGradBias(gy: ND): ND {
  const [n, o, oh, ow] = gy.shape as [number, number, number, number];
  const gb = nd([o]);
  for (let i = 0; i < n * o * oh * ow; i++) gb.data[Math.floor(i / (oh * ow)) % o]! += gy.data[i]!;
  return gb;
}

/** One output element y[n, o, i, j] of conv2d (for sampling large outputs). */
export function conv2dAt(x: ND, w: ND, bias: ND | null, p: ConvParams, at: readonly number[]): number {
  const g = geom(x.shape, w.shape, p);
  const [n, o, i, j] = at as [number, number, number, number];
  const grp = Math.floor(o / g.og);
  let s = bias ? bias.data[o]! : 0;
  for (let c = 0; c < g.cg; c++)
    for (let a = 0; a < g.kh; a++) {
      const y = i * p.stride[0] - p.padding[0] + a * p.dilation[0];
      if (y < 0 || y >= g.h) continue;
      for (let b = 0; b < g.kw; b++) {
        const xx = j * p.stride[1] - p.padding[1] + b * p.dilation[1];
        if (xx < 0 || xx >= g.w) continue;
        s +=
          w.data[((o * g.cg + c) * g.kh + a) * g.kw + b]! * x.data[((n * g.c + grp * g.cg + c) * g.h + y) * g.w + xx]!;
      }
    }
  return s;
}
