// Batch normalization as torch.nn.functional.batch_norm over (N, C, *) inputs, viewed as (N, C, L):
// training normalizes with the batch's per-channel statistics (one fused stats kernel) and updates the
// running statistics in place on the device; eval uses the running statistics. The normalize+affine
// map is one kernel; its backward is two (the per-channel sums, then the input gradient).
import { isFloat } from '../core/dtype.js';
import { OpError, fmtShape } from '../core/errors.js';
import type { AttrMap } from '../ops/opcodes.js';
import { binary, binaryInplace, cast } from './elementwise.js';
import { runKernel } from './engine.js';
import { noGrad } from './gradmode.js';
import type { Tensor } from './tensor.js';
import { reshape, select } from './views.js';

/** Options of `batchNorm`. */
export interface BatchNormOptions {
  /** Normalize with the batch statistics (and update the running ones) instead of the running ones. */
  training: boolean;
  /** Weight of the batch statistics in the running-statistics update. Default 0.1. */
  momentum?: number;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /** Added to the normalized output in the same kernel (x's shape and dtype): ResNet's shortcut. */
  residual?: Tensor | null;
  /** Apply ReLU to the result in the same kernel (after the residual). Default false. */
  relu?: boolean;
}

function check(ok: boolean, what: () => string): void {
  if (!ok) throw new OpError('batchNorm', what());
}

/**
 * Batch normalization of x (N, C, *) per channel, as torch.nn.functional.batch_norm: y = (x - mean) /
 * sqrt(var + eps) * weight + bias with weight and bias (C) tensors of x's dtype or null (1 and 0), then
 * optionally + opts.residual and relu (opts.relu), all in the one normalize kernel. When
 * `training`, mean and var are the batch's (biased variance) and runningMean / runningVar, when given,
 * are updated in place to (1 - momentum) * running + momentum * batch statistic (the variance unbiased);
 * otherwise the running statistics (float (C) tensors, required) are used. Gradients flow to x, weight
 * and bias (in eval mode the statistics are constants; the running tensors never get gradients).
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  opts: BatchNormOptions,
): Tensor {
  x.assertLive('batchNorm');
  check(isFloat(x.dtype) && x.ndim >= 2, () => `needs a float (N, C, *) input, got ${x.dtype} ${fmtShape(x.shape)}`);
  const [n, c] = x.shape as [number, number];
  const l = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  check(eps >= 0 && Number.isFinite(eps), () => `eps must be a finite number >= 0, got ${eps}`);
  for (const [name, p] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (p)
      check(
        p.dtype === x.dtype && p.ndim === 1 && p.shape[0] === c,
        () => `${name} must be ${x.dtype} [${c}] for input ${fmtShape(x.shape)}, got ${p.dtype} ${fmtShape(p.shape)}`,
      );
  }
  for (const [name, p] of [
    ['runningMean', runningMean],
    ['runningVar', runningVar],
  ] as const) {
    if (p)
      check(
        isFloat(p.dtype) && p.ndim === 1 && p.shape[0] === c,
        () =>
          `${name} must be a float [${c}] tensor for input ${fmtShape(x.shape)} (${c} channels), got ${p.dtype} ${fmtShape(p.shape)}`,
      );
  }
  check(
    (runningMean === null) === (runningVar === null),
    () => 'runningMean and runningVar must be given together (or both null)',
  );
  const res = opts.residual ?? null;
  if (res) {
    res.assertLive('batchNorm');
    check(
      res.dtype === x.dtype && res.ndim === x.ndim && res.shape.every((d, i) => d === x.shape[i]),
      () => `residual must be ${x.dtype} ${fmtShape(x.shape)} like the input, got ${res.dtype} ${fmtShape(res.shape)}`,
    );
  }
  const fused = { relu: opts.relu === true, residual: res !== null };
  const x3 = reshape(x, [n, c, l]); // (N, C, L), a view when x's strides allow
  const r3 = res ? reshape(res, [n, c, l]) : null;
  const tail = r3 ? [r3] : [];
  let y3: Tensor;
  if (opts.training) {
    check(n * l > 1, () => `expected more than 1 value per channel when training, got input ${fmtShape(x.shape)}`);
    const stats = runKernel('batchNormStats', [x3], {}, [2, c], 'float32'); // [mean; biased var]
    const [mean, variance] = [select(stats, 0, 0), select(stats, 0, 1)];
    if (runningMean && runningVar) {
      updateRunning(runningMean, mean, momentum, 1);
      updateRunning(runningVar, variance, momentum, (n * l) / (n * l - 1));
    }
    y3 = runKernel(
      'batchNorm',
      [x3, mean, variance, weight ?? 1, bias ?? 0, ...tail],
      { eps, training: true, ...fused },
      x3.shape,
      x.dtype,
    );
    for (const t of [stats, mean, variance]) t.dispose();
  } else {
    check(
      runningMean !== null && runningVar !== null,
      () => 'runningMean and runningVar are required in evaluation mode (training: false)',
    );
    const attrs = { eps, training: false, ...fused };
    const ins = [x3, runningMean!, runningVar!, weight ?? 1, bias ?? 0, ...tail];
    y3 = runKernel('batchNorm', ins, attrs, x3.shape, x.dtype);
  }
  const y = reshape(y3, x.shape);
  x3.dispose();
  r3?.dispose();
  y3.dispose();
  return y;
}

/**
 * running = (1 - momentum) * running + momentum * scale * batch, in place on the device (three small
 * kernels, no host read); `scale` is n / (n - 1) for the unbiased variance, else 1.
 */
function updateRunning(running: Tensor, batch: Tensor, momentum: number, scale: number): void {
  noGrad(() => {
    const b = batch.dtype === running.dtype ? batch : cast(batch, running.dtype);
    const scaled = binary('mul', b, momentum * scale);
    binaryInplace('mul', running, 1 - momentum);
    binaryInplace('add', running, scaled);
    scaled.dispose();
    if (b !== batch) b.dispose();
  });
}

/**
 * The gradients of `batchNorm`'s kernel for its x (N, C, L), weight and bias, given the saved x, mean,
 * var and weight (tensor or the scalar 1) and the output gradient. In training the statistics are
 * functions of x, so gx = w * rstd * (gy - mean(gy) - xhat * mean(gy * xhat)); in eval they are
 * constants and gx = w * rstd * gy. `needs` says which of (x, weight, bias) want a gradient.
 */
export function batchNormGrads(
  x: Tensor,
  mean: Tensor,
  variance: Tensor,
  weight: Tensor | number,
  grad: Tensor,
  attrs: AttrMap['batchNorm'],
  needs: readonly [boolean, boolean, boolean],
): [Tensor | null, Tensor | null, Tensor | null] {
  const c = x.shape[1]!;
  const { eps, training } = attrs;
  const sums =
    training || needs[1] || needs[2]
      ? runKernel('batchNormParamsBackward', [x, mean, variance, grad], { eps }, [2, c], 'float32')
      : null;
  const gx = needs[0]
    ? runKernel('batchNormBackward', [x, mean, variance, weight, grad, training ? sums! : 0], { eps }, x.shape, x.dtype)
    : null;
  return [gx, needs[1] && sums ? select(sums, 0, 0) : null, needs[2] && sums ? select(sums, 0, 1) : null];
}
