// The training loop, read top to bottom: schedule, (eval), micro-steps (batch, forward, backward),
// clip, step, log. One host read per step (the logged loss and grad norm, read together), nothing else
// waits; a batch that comes asynchronously is awaited before the step's compute is enqueued, so the
// loader's prefetch overlaps the device work of the previous step. With a GradScaler (mixed precision) the
// loss is scaled, the gradients unscaled and checked for inf/NaN on the device, and the found-inf flag is
// read with the loss and grad norm, before the optimizer step, so an overflowed step is skipped.
import { noGrad, stack, tidy, type Tensor } from '../tensor/index.js';
import '../autograd/index.js';
import { clipGradNorm_, type GradScaler, type LRSchedule, type Optimizer } from '../optim/index.js';
import { TensorloomError } from '../core/errors.js';

/** One logged training step. */
export interface StepRecord {
  step: number;
  /** Mean loss over the step's micro-batches. */
  loss: number;
  gradNorm: number;
  lr: number;
  ms: number;
  tokensPerSec: number;
  /** With a scaler: the loss scale this step used (before `update` adjusted it). */
  lossScale?: number;
  /** With a scaler: true when inf/NaN gradients made the step skip the optimizer update. */
  skipped?: boolean;
}

/** One evaluation. */
export interface EvalRecord {
  step: number;
  valLoss: number;
}

/**
 * What the loop needs from the caller. `Batch` is whatever `nextBatch` yields and the loss functions
 * take; a caller whose loss functions draw their own data leaves the batch functions out.
 */
export interface LoopSpec<Batch = void> {
  /** Parameters being trained (their grads are clipped). */
  params: readonly Tensor[];
  /** Sets training mode (dropout on) or evaluation mode. */
  setTraining(on: boolean): void;
  /** The next training batch, possibly asynchronous (a prefetching loader). */
  nextBatch?(): Batch | Promise<Batch>;
  /** The next held-out batch. */
  nextEvalBatch?(): Batch | Promise<Batch>;
  /** Builds the scalar training loss of one micro-batch (the loop owns the resulting tensors). */
  trainLoss(batch: Batch): Tensor;
  /** Builds the loss of one held-out batch. */
  evalLoss(batch: Batch): Tensor;
  /** Tokens consumed by one optimizer step, all micro-batches together (for tokens/s). */
  tokensPerStep: number;
  /** Micro-batches per optimizer step (default 1): each loss is scaled by 1/gradAccum. */
  gradAccum?: number;
  optimizer: Optimizer;
  schedule: LRSchedule;
  steps: number;
  /** Max global grad norm (0 disables clipping; the norm is still reported). */
  gradClip: number;
  /** Evaluate every N steps and after the last step (0: never). */
  evalEvery: number;
  evalBatches: number;
  /** Called after each step; a returned promise (e.g. a checkpoint being saved) is awaited. */
  onStep(r: StepRecord): void | Promise<void>;
  onEval(r: EvalRecord): void | Promise<void>;
  /** First step (for resumed runs). */
  startStep?: number;
  /** Checked after each step: true ends the run there (no final eval), e.g. after SIGINT. */
  shouldStop?: () => boolean;
  /** Dynamic loss scaling for float16 compute: see `optimizerStep`. */
  scaler?: GradScaler;
}

/** Mean loss over `evalBatches` held-out batches, in eval mode, without a graph; one host read. */
async function evaluate<B>(spec: LoopSpec<B>): Promise<number> {
  spec.setTraining(false);
  const losses: Tensor[] = [];
  try {
    for (let i = 0; i < spec.evalBatches; i++) {
      const batch = spec.nextEvalBatch ? await spec.nextEvalBatch() : (undefined as B);
      losses.push(noGrad(() => tidy(() => spec.evalLoss(batch))));
    }
    const mean = noGrad(() => tidy(() => stack(losses).mean()));
    const v = await mean.item();
    mean.dispose();
    return v;
  } finally {
    for (const l of losses) l.dispose();
    spec.setTraining(true);
  }
}

/**
 * One optimizer step: `n` micro-batches each add the gradient of loss/n (so the update is the one of
 * their concatenation), then clip and step. Returns the mean loss and grad norm from the step's one host
 * read; without a scaler it is issued after the update is enqueued.
 *
 * With a scaler, the step's one host read must also tell whether the gradients overflowed, and the
 * update must not happen if they did. Masking the update on the device would need every optimizer to
 * blend old and new state and would still advance its host step counts (Adam's bias correction), so
 * instead the read moves before the update: backward, unscale (the device flag), clip, then the
 * (loss, norm, flag) triple is read once and the update runs or is skipped by the host. The device only
 * waits for the optimizer's few kernels to be enqueued after the read.
 */
async function optimizerStep<B>(
  spec: LoopSpec<B>,
  n: number,
  warmEval = false,
): Promise<{ loss: number; gradNorm: number; skipped?: boolean }> {
  const micro: Tensor[] = [];
  const scaler = spec.scaler;
  try {
    for (let m = 0; m < n; m++) {
      const batch = spec.nextBatch ? await spec.nextBatch() : (undefined as B);
      if (warmEval && m === 0 && spec.evalEvery > 0 && spec.nextBatch) warmEvalKernels(spec, batch);
      micro.push(
        tidy(() => {
          const loss = spec.trainLoss(batch);
          const l = n > 1 ? loss.mul(1 / n) : loss;
          (scaler ? scaler.scale(l) : l).backward();
          return loss.detach();
        }),
      );
    }
    const logged = tidy(() => {
      const found = scaler?.unscale_(spec.params);
      const norm = clipGradNorm_(spec.params, spec.gradClip > 0 ? spec.gradClip : Infinity);
      if (!scaler) {
        spec.optimizer.step();
        spec.optimizer.zeroGrad();
      }
      return noGrad(() => {
        const loss = micro.length === 1 ? micro[0]! : stack(micro).mean();
        return stack([loss, norm.cast(loss.dtype), ...(found ? [found.cast(loss.dtype)] : [])]);
      });
    });
    const [loss, gradNorm, found] = await logged.toArray(); // the step's one sync point
    logged.dispose();
    if (!scaler) return { loss: loss!, gradNorm: gradNorm! };
    const stepped = await scaler.step(spec.optimizer, found); // no read: the value is passed
    spec.optimizer.zeroGrad();
    scaler.update();
    return { loss: loss!, gradNorm: gradNorm!, skipped: !stepped };
  } finally {
    for (const l of micro) l.dispose();
  }
}

/**
 * The run's first step also enqueues one evaluation forward of its first batch and evaluate's mean over
 * evalBatches losses (eval mode, no graph, no read, results dropped: no state changes), so that every
 * kernel the periodic evaluations use is compiled with the first step's, not in the middle of training.
 */
function warmEvalKernels<B>(spec: LoopSpec<B>, batch: B): void {
  spec.setTraining(false);
  try {
    noGrad(() =>
      tidy(() => {
        const loss = spec.evalLoss(batch);
        void stack(Array<Tensor>(spec.evalBatches).fill(loss)).mean(); // evaluate's reduction, same shapes
      }),
    );
  } finally {
    spec.setTraining(true);
  }
}

/** Runs the loop; resolves with the last step's record and the last eval. */
export async function trainLoop<B = void>(spec: LoopSpec<B>): Promise<{ last?: StepRecord; lastEval?: EvalRecord }> {
  const n = spec.gradAccum ?? 1;
  if (!Number.isInteger(n) || n < 1)
    throw new TensorloomError(`trainLoop: gradAccum must be a positive integer, got ${n}`);
  let last: StepRecord | undefined;
  let lastEval: EvalRecord | undefined;
  spec.setTraining(true);
  for (let step = spec.startStep ?? 0; step < spec.steps; step++) {
    if (spec.evalEvery > 0 && step > 0 && step % spec.evalEvery === 0) {
      lastEval = { step, valLoss: await evaluate(spec) };
      await spec.onEval(lastEval);
    }
    const lr = spec.schedule(step);
    spec.optimizer.lr = lr;
    const t0 = performance.now();
    const lossScale = spec.scaler?.scaleFactor;
    const { loss, gradNorm, skipped } = await optimizerStep(spec, n, step === (spec.startStep ?? 0));
    const ms = performance.now() - t0;
    last = { step, loss, gradNorm, lr, ms, tokensPerSec: (spec.tokensPerStep / ms) * 1000 };
    if (lossScale !== undefined) Object.assign(last, { lossScale, skipped: skipped === true });
    await spec.onStep(last);
    if (spec.shouldStop?.()) return { last, ...(lastEval ? { lastEval } : {}) };
  }
  if (spec.evalEvery > 0 && spec.steps > (spec.startStep ?? 0)) {
    lastEval = { step: spec.steps, valLoss: await evaluate(spec) };
    await spec.onEval(lastEval);
  }
  return { ...(last ? { last } : {}), ...(lastEval ? { lastEval } : {}) };
}
