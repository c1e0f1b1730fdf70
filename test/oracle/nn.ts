// Float64 references of the neural-network composites: layer norm, cross-entropy (ignore index, label
// smoothing, as torch.nn.functional.cross_entropy defines them) and MSE loss.
import { nd, numel, type ND } from './ndarray.js';
import { forEachLine, logSoftmax } from './reduce.js';

/** Options of `layerNorm`. */
export interface LayerNormOptions {
  /** Scale, shaped like the normalized dims (default 1). */
  weight?: ND;
  /** Shift, shaped like the normalized dims (default 0). */
  bias?: ND;
  /** Added to the variance (default 1e-5, torch's). */
  eps?: number;
}

/**
 * nn.functional.layer_norm: normalizes over the trailing dims `normalizedShape` (a shape, or a
 * count of trailing dims) with the biased variance: (x - mean) / sqrt(var + eps) * weight + bias.
 */
export function layerNorm(x: ND, normalizedShape: readonly number[] | number, opts: LayerNormOptions = {}): ND {
  const nShape =
    typeof normalizedShape === 'number' ? x.shape.slice(x.shape.length - normalizedShape) : [...normalizedShape];
  const tail = x.shape.slice(x.shape.length - nShape.length);
  if (nShape.length > x.shape.length || tail.some((d, i) => d !== nShape[i])) {
    throw new Error(`layerNorm: normalized shape [${nShape.join(', ')}] does not end input [${x.shape.join(', ')}]`);
  }
  const eps = opts.eps ?? 1e-5;
  const n = numel(nShape);
  for (const p of [opts.weight, opts.bias]) {
    if (p && numel(p.shape) !== n) throw new Error(`layerNorm: weight/bias must have ${n} elements`);
  }
  const out = nd(x.shape);
  const rows = n === 0 ? 0 : x.data.length / n;
  for (let r = 0; r < rows; r++) {
    const row = x.data.subarray(r * n, (r + 1) * n);
    const mean = row.reduce((s, v) => s + v, 0) / n;
    const v = row.reduce((s, y) => s + (y - mean) * (y - mean), 0) / n;
    const inv = 1 / Math.sqrt(v + eps);
    for (let j = 0; j < n; j++) {
      const w = opts.weight ? opts.weight.data[j]! : 1;
      const b = opts.bias ? opts.bias.data[j]! : 0;
      out.data[r * n + j] = (row[j]! - mean) * inv * w + b;
    }
  }
  return out;
}

/** Options of `crossEntropy`. */
export interface CrossEntropyOptions {
  /** Targets equal to this contribute nothing and are not counted by the mean (default -100). */
  ignoreIndex?: number;
  /** Label smoothing epsilon in [0, 1] (default 0). */
  labelSmoothing?: number;
  /** 'mean' over non-ignored targets (default), 'sum', or 'none' (per position, 0 where ignored). */
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * nn.functional.cross_entropy with the CLASS AXIS LAST: logits (..., C), e.g. (N, C) or (B, T, C),
 * integer targets shaped like logits without the last dim. Per position with target y and
 * lp = logSoftmax(logits): loss = (1 - eps) * (-lp[y]) + (eps / C) * sum_c(-lp[c]); ignored positions
 * give 0; 'mean' divides the sum by the number of non-ignored positions (NaN if there are none), as torch.
 */
export function crossEntropy(logits: ND, targets: ND, opts: CrossEntropyOptions = {}): ND {
  const ignore = opts.ignoreIndex ?? -100;
  const eps = opts.labelSmoothing ?? 0;
  const reduction = opts.reduction ?? 'mean';
  const r = logits.shape.length;
  if (r < 1) throw new Error('crossEntropy: logits need a class dim');
  const c = logits.shape[r - 1]!;
  const lead = logits.shape.slice(0, -1);
  if (targets.shape.length !== lead.length || targets.shape.some((d, i) => d !== lead[i])) {
    throw new Error(`crossEntropy: targets [${targets.shape.join(', ')}] must be shaped [${lead.join(', ')}]`);
  }
  const lp = logSoftmax(logits, -1);
  const losses = nd(lead);
  let count = 0;
  let row = 0;
  forEachLine(logits.shape, -1, (idx) => {
    const y = targets.data[row]!;
    if (y !== ignore) {
      if (!Number.isInteger(y) || y < 0 || y >= c)
        throw new Error(`crossEntropy: target ${y} out of range for ${c} classes`);
      const nll = -lp.data[idx[y]!]!;
      const smooth = -idx.reduce((s, i) => s + lp.data[i]!, 0);
      losses.data[row] = (1 - eps) * nll + (eps / c) * smooth;
      count++;
    }
    row++;
  });
  if (reduction === 'none') return losses;
  const total = losses.data.reduce((s, v) => s + v, 0);
  return nd([], [reduction === 'sum' ? total : total / count]);
}

/** nn.functional.mse_loss: mean (default), sum, or elementwise squared difference (same shapes required). */
export function mseLoss(a: ND, b: ND, reduction: 'mean' | 'sum' | 'none' = 'mean'): ND {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    throw new Error('mseLoss: shapes differ');
  const sq = nd(
    a.shape,
    a.data.map((x, i) => (x - b.data[i]!) ** 2),
  );
  if (reduction === 'none') return sq;
  const total = sq.data.reduce((s, v) => s + v, 0);
  return nd([], [reduction === 'sum' ? total : total / sq.data.length]);
}
