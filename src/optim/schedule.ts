// Learning-rate schedules as pure functions of the step (host numbers, no tensors), and a small
// LRScheduler that writes the scheduled rate into an optimizer's groups after every step.
import { TensorloomError } from '../core/errors.js';
import type { GroupOptions } from './optimizer.js';

/** A learning-rate schedule: the rate to use for step `step` (0-based: the number of optimizer steps already taken). */
export type LRSchedule = (step: number) => number;

function need(who: string, name: string, v: unknown, ok: (x: number) => boolean, what: string): void {
  if (typeof v !== 'number' || Number.isNaN(v) || !ok(v))
    throw new TensorloomError(`${who}: invalid ${name} ${String(v)}; it must be ${what}`);
}
const nonNeg = (x: number): boolean => Number.isFinite(x) && x >= 0;
const nonNegInt = (x: number): boolean => Number.isInteger(x) && x >= 0;

/** Throws unless `step` is a valid step (an integer >= 0). */
function checkStep(who: string, step: number): void {
  need(who, 'step', step, nonNegInt, 'an integer >= 0');
}

/**
 * torch's ConstantLR: `lr·factor` for step < totalIters, then `lr`. The defaults (factor 1,
 * totalIters 0) give a constant `lr`; torch's defaults are factor 1/3, totalIters 5.
 */
export function constantLR(opts: { lr: number; factor?: number; totalIters?: number }): LRSchedule {
  const { lr, factor = 1, totalIters = 0 } = opts;
  need('constantLR', 'lr', lr, nonNeg, 'a finite number >= 0');
  need('constantLR', 'factor', factor, nonNeg, 'a finite number >= 0');
  need('constantLR', 'totalIters', totalIters, nonNegInt, 'an integer >= 0');
  return (step) => {
    checkStep('constantLR', step);
    return step < totalIters ? lr * factor : lr;
  };
}

/**
 * torch's LinearLR: the factor moves linearly from `startFactor` to `endFactor` over `totalIters`
 * steps, then stays at `endFactor`:
 *
 *     lr(step) = lr · (startFactor + (endFactor - startFactor) · min(step, totalIters) / totalIters)
 *
 * Warmup: startFactor < endFactor (startFactor 0 is allowed here, unlike torch); decay: the
 * reverse. Defaults as torch: startFactor 1/3, endFactor 1, totalIters 5 (totalIters 0: endFactor).
 */
export function linearLR(opts: {
  lr: number;
  startFactor?: number;
  endFactor?: number;
  totalIters?: number;
}): LRSchedule {
  const { lr, startFactor = 1 / 3, endFactor = 1, totalIters = 5 } = opts;
  need('linearLR', 'lr', lr, nonNeg, 'a finite number >= 0');
  need('linearLR', 'startFactor', startFactor, nonNeg, 'a finite number >= 0');
  need('linearLR', 'endFactor', endFactor, nonNeg, 'a finite number >= 0');
  need('linearLR', 'totalIters', totalIters, nonNegInt, 'an integer >= 0');
  return (step) => {
    checkStep('linearLR', step);
    if (step >= totalIters) return lr * endFactor;
    return lr * (startFactor + ((endFactor - startFactor) * step) / totalIters);
  };
}

/**
 * torch's CosineAnnealingLR (its closed form), from `lr` down to `etaMin` (default 0) over `tMax` steps:
 *
 *     lr(step) = etaMin + (lr - etaMin) · (1 + cos(π · step / tMax)) / 2
 *
 * As in torch, the formula is not clamped: after tMax it rises again (period 2·tMax). For a
 * schedule that holds its minimum, use `warmupCosine`.
 */
export function cosineAnnealing(opts: { lr: number; tMax: number; etaMin?: number }): LRSchedule {
  const { lr, tMax, etaMin = 0 } = opts;
  need('cosineAnnealing', 'lr', lr, nonNeg, 'a finite number >= 0');
  need('cosineAnnealing', 'etaMin', etaMin, nonNeg, 'a finite number >= 0');
  need('cosineAnnealing', 'tMax', tMax, (x) => Number.isInteger(x) && x > 0, 'an integer > 0');
  return (step) => {
    checkStep('cosineAnnealing', step);
    return etaMin + ((lr - etaMin) * (1 + Math.cos((Math.PI * step) / tMax))) / 2;
  };
}

/**
 * Linear warmup then cosine decay, as nanoGPT's GPT-2 training (build-nanogpt's get_lr):
 *
 *     step < warmupSteps:                 lr = maxLr · (step + 1) / warmupSteps
 *     warmupSteps <= step <= totalSteps:  r = (step - warmupSteps) / (totalSteps - warmupSteps)
 *                                         lr = minLr + (maxLr - minLr) · (1 + cos(π·r)) / 2
 *     step > totalSteps:                  lr = minLr
 *
 * So step 0 already trains at maxLr/warmupSteps (never at 0), the last warmup step reaches maxLr,
 * and the rate is minLr from totalSteps on. minLr defaults to maxLr/10. Needs totalSteps > warmupSteps.
 */
export function warmupCosine(opts: {
  warmupSteps: number;
  totalSteps: number;
  maxLr: number;
  minLr?: number;
}): LRSchedule {
  const { warmupSteps, totalSteps, maxLr, minLr = maxLr / 10 } = opts;
  need('warmupCosine', 'maxLr', maxLr, nonNeg, 'a finite number >= 0');
  need('warmupCosine', 'minLr', minLr, nonNeg, 'a finite number >= 0');
  need('warmupCosine', 'warmupSteps', warmupSteps, nonNegInt, 'an integer >= 0');
  need(
    'warmupCosine',
    'totalSteps',
    totalSteps,
    (x) => Number.isInteger(x) && x > warmupSteps,
    `an integer > warmupSteps (${warmupSteps})`,
  );
  return (step) => {
    checkStep('warmupCosine', step);
    if (step < warmupSteps) return (maxLr * (step + 1)) / warmupSteps;
    if (step > totalSteps) return minLr;
    const r = (step - warmupSteps) / (totalSteps - warmupSteps);
    return minLr + ((maxLr - minLr) * (1 + Math.cos(Math.PI * r))) / 2;
  };
}

/** What LRScheduler drives: anything with parameter groups that have an lr (every Optimizer). */
export interface LRTarget {
  readonly paramGroups: readonly GroupOptions[];
}

/**
 * Applies a schedule to an optimizer. On construction it sets the rate for step 0; call `step()`
 * after each `optimizer.step()` to move to the next step's rate (torch's scheduler protocol).
 * Every group gets `schedule(step)` times its ratio to the first group's initial lr, so groups
 * that started with equal rates stay equal and a group created at 2x keeps 2x.
 */
export class LRScheduler {
  private current: number;
  private readonly scales: readonly number[];

  /** Starts the schedule at `startStep` (default 0: a fresh run; pass the resumed step otherwise). */
  constructor(
    readonly optimizer: LRTarget,
    readonly schedule: LRSchedule,
    startStep = 0,
  ) {
    const groups = optimizer.paramGroups;
    const base = groups[0]?.lr ?? 0;
    this.scales = groups.map((g) => (base === 0 ? 1 : g.lr / base));
    checkStep('LRScheduler', startStep);
    this.current = startStep;
    this.apply();
  }

  /** The step whose rate is in force. */
  get currentStep(): number {
    return this.current;
  }

  /** The rate in force for the first group. */
  get lastLr(): number {
    return this.optimizer.paramGroups[0]?.lr ?? 0;
  }

  /** Advances to the next step and sets its rate; returns the first group's new rate. */
  step(): number {
    this.current++;
    return this.apply();
  }

  /** Jumps to `step` and sets its rate (e.g. when resuming); returns the first group's rate. */
  setStep(step: number): number {
    checkStep('LRScheduler.setStep', step);
    this.current = step;
    return this.apply();
  }

  /** The scheduler's state for checkpoints. */
  stateDict(): { step: number } {
    return { step: this.current };
  }

  /** Restores a state from `stateDict()` and sets that step's rate. */
  loadStateDict(sd: { step: number }): void {
    this.setStep(sd.step);
  }

  private apply(): number {
    const lr = this.schedule(this.current);
    need('LRScheduler', `scheduled lr at step ${this.current}`, lr, nonNeg, 'a finite number >= 0');
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = lr * (this.scales[i] ?? 1)));
    return this.lastLr;
  }
}
