// The training loop, read top to bottom: schedule, (eval), forward + backward, clip, step, log.
// One host read per step (the logged loss and grad norm, read together), nothing else waits.
import { noGrad, stack, tidy, type Tensor } from '../tensor/index.js';
import '../autograd/index.js';
import { clipGradNorm_, type LRSchedule, type Optimizer } from '../optim/index.js';

/** One logged training step. */
export interface StepRecord {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  ms: number;
  tokensPerSec: number;
}

/** One evaluation. */
export interface EvalRecord {
  step: number;
  valLoss: number;
}

/** What the loop needs from the caller. */
export interface LoopSpec {
  /** Parameters being trained (their grads are clipped). */
  params: readonly Tensor[];
  /** Sets training mode (dropout on) or evaluation mode. */
  setTraining(on: boolean): void;
  /** Builds the scalar training loss for the next batch (the loop owns the resulting tensors). */
  trainLoss(): Tensor;
  /** Builds the loss of one held-out batch. */
  evalLoss(): Tensor;
  /** Tokens consumed by one step (for tokens/s). */
  tokensPerStep: number;
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
  onEval(r: EvalRecord): void;
  /** First step (for resumed runs). */
  startStep?: number;
  /** Checked after each step: true ends the run there (no final eval), e.g. after SIGINT. */
  shouldStop?: () => boolean;
}

/** Mean loss over `n` held-out batches, in eval mode, without a graph. */
async function evaluate(spec: LoopSpec): Promise<number> {
  spec.setTraining(false);
  const losses = noGrad(() =>
    tidy(() => stack(Array.from({ length: spec.evalBatches }, () => spec.evalLoss())).mean()),
  );
  const v = await losses.item();
  losses.dispose();
  spec.setTraining(true);
  return v;
}

/** Runs the loop; resolves with the last step's record and the last eval. */
export async function trainLoop(spec: LoopSpec): Promise<{ last?: StepRecord; lastEval?: EvalRecord }> {
  const { optimizer, params } = spec;
  let last: StepRecord | undefined;
  let lastEval: EvalRecord | undefined;
  spec.setTraining(true);
  for (let step = spec.startStep ?? 0; step < spec.steps; step++) {
    if (spec.evalEvery > 0 && step > 0 && step % spec.evalEvery === 0) {
      lastEval = { step, valLoss: await evaluate(spec) };
      spec.onEval(lastEval);
    }
    const lr = spec.schedule(step);
    optimizer.lr = lr;
    const t0 = performance.now();
    const logged = tidy(() => {
      const loss = spec.trainLoss();
      loss.backward();
      const norm = clipGradNorm_(params, spec.gradClip > 0 ? spec.gradClip : Infinity);
      optimizer.step();
      optimizer.zeroGrad();
      return noGrad(() => stack([loss, norm.cast(loss.dtype)]));
    });
    const [loss, gradNorm] = await logged.toArray(); // the step's one sync point
    logged.dispose();
    const ms = performance.now() - t0;
    last = { step, loss: loss!, gradNorm: gradNorm!, lr, ms, tokensPerSec: (spec.tokensPerStep / ms) * 1000 };
    await spec.onStep(last);
    if (spec.shouldStop?.()) return { last, ...(lastEval ? { lastEval } : {}) };
  }
  if (spec.evalEvery > 0 && spec.steps > (spec.startStep ?? 0)) {
    lastEval = { step: spec.steps, valLoss: await evaluate(spec) };
    spec.onEval(lastEval);
  }
  return { ...(last ? { last } : {}), ...(lastEval ? { lastEval } : {}) };
}
