// Float64 reference batch normalization (torch.nn.functional.batch_norm) over (N, C, *) arrays: the
// training forward with its batch statistics and running-statistics update, the eval forward, and
// the analytic gradients of both (checked against finite differences in the tests).
import { nd, type ND } from './ndarray.js';

/** x's (N, C, L) view sizes. */
function ncl(x: ND): [number, number, number] {
  if (x.shape.length < 2) throw new Error(`oracle batchNorm: needs (N, C, *), got [${x.shape.join(', ')}]`);
  const l = x.shape.slice(2).reduce((a, b) => a * b, 1);
  return [x.shape[0]!, x.shape[1]!, l];
}

const at = (c: number, l: number, ci: number, ni: number, j: number) => (ni * c + ci) * l + j;

/** Per-channel mean, biased and unbiased variance of x over N and the trailing dims. */
export function channelStats(x: ND): { mean: number[]; biased: number[]; unbiased: number[] } {
  const [n, c, l] = ncl(x);
  const mean: number[] = [];
  const biased: number[] = [];
  const unbiased: number[] = [];
  for (let ci = 0; ci < c; ci++) {
    const vals: number[] = [];
    for (let ni = 0; ni < n; ni++) for (let j = 0; j < l; j++) vals.push(x.data[at(c, l, ci, ni, j)]!);
    const m = vals.reduce((s, v) => s + v, 0) / vals.length;
    const ss = vals.reduce((s, v) => s + (v - m) * (v - m), 0);
    mean.push(m);
    biased.push(ss / vals.length);
    unbiased.push(ss / (vals.length - 1));
  }
  return { mean, biased, unbiased };
}

/** y = (x - mean[c]) / sqrt(var[c] + eps) * w[c] + b[c] (w, b null: 1 and 0). */
export function normalize(x: ND, mean: number[], variance: number[], w: ND | null, b: ND | null, eps: number): ND {
  const [n, c, l] = ncl(x);
  const y = nd(x.shape);
  for (let ni = 0; ni < n; ni++)
    for (let ci = 0; ci < c; ci++)
      for (let j = 0; j < l; j++) {
        const i = at(c, l, ci, ni, j);
        const xh = (x.data[i]! - mean[ci]!) / Math.sqrt(variance[ci]! + eps);
        y.data[i] = xh * (w ? w.data[ci]! : 1) + (b ? b.data[ci]! : 0);
      }
  return y;
}

/** The training forward: normalized with the batch's biased variance. */
export function batchNormTrain(x: ND, w: ND | null, b: ND | null, eps: number): ND {
  const s = channelStats(x);
  return normalize(x, s.mean, s.biased, w, b, eps);
}

/** Running statistics after one training step with `momentum` (the variance unbiased). */
export function updateRunning(x: ND, mean: number[], variance: number[], momentum: number): [number[], number[]] {
  const s = channelStats(x);
  return [
    mean.map((m, i) => (1 - momentum) * m + momentum * s.mean[i]!),
    variance.map((v, i) => (1 - momentum) * v + momentum * s.unbiased[i]!),
  ];
}

/**
 * Gradients (x, weight, bias) of sum(gy * y). Training: the statistics depend on x (the full
 * derivative through the batch mean and variance); eval: `stats` are the constant running ones.
 */
export function batchNormGrads(
  x: ND,
  w: ND | null,
  gy: ND,
  eps: number,
  stats: { mean: number[]; variance: number[] } | null,
): [ND, ND, ND] {
  const [n, c, l] = ncl(x);
  const s = stats ?? (() => ({ mean: channelStats(x).mean, variance: channelStats(x).biased }))();
  const gx = nd(x.shape);
  const gw = nd([c]);
  const gb = nd([c]);
  const m = n * l;
  for (let ci = 0; ci < c; ci++) {
    const rstd = 1 / Math.sqrt(s.variance[ci]! + eps);
    const wc = w ? w.data[ci]! : 1;
    let sg = 0;
    let sgx = 0;
    for (let ni = 0; ni < n; ni++)
      for (let j = 0; j < l; j++) {
        const i = at(c, l, ci, ni, j);
        const xh = (x.data[i]! - s.mean[ci]!) * rstd;
        sg += gy.data[i]!;
        sgx += gy.data[i]! * xh;
      }
    gw.data[ci] = sgx;
    gb.data[ci] = sg;
    for (let ni = 0; ni < n; ni++)
      for (let j = 0; j < l; j++) {
        const i = at(c, l, ci, ni, j);
        const xh = (x.data[i]! - s.mean[ci]!) * rstd;
        // d xhat_i / d x_k = rstd (delta_ik - 1/m - xhat_i xhat_k / m) when the statistics follow x
        gx.data[i] = stats ? wc * rstd * gy.data[i]! : wc * rstd * (gy.data[i]! - sg / m - (xh * sgx) / m);
      }
  }
  return [gx, gw, gb];
}
