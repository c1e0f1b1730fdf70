// Dynamic loss scaling for float16 training (torch.cuda.amp.GradScaler's semantics): the loss is
// multiplied by a large power of two so small float16 gradients do not flush to zero, the gradients are
// divided back before the update, and a step whose gradients overflowed is skipped and the scale halved.
import { TensorloomError } from '../core/errors.js';
import { contiguousRuns, keep, noGrad, tidy, zeros, type Tensor } from '../tensor/index.js';
import type { Optimizer } from './optimizer.js';

/** Options of `GradScaler` (PyTorch's names and defaults). */
export interface GradScalerOptions {
  /** Initial loss scale (default 2^16). */
  initScale?: number;
  /** Factor the scale grows by after `growthInterval` consecutive finite steps (default 2). */
  growthFactor?: number;
  /** Factor the scale is multiplied by after a step with inf/NaN gradients (default 0.5). */
  backoffFactor?: number;
  /** Consecutive finite steps before the scale grows (default 2000). */
  growthInterval?: number;
}

/** A checkpointable snapshot of a GradScaler: plain JSON numbers. */
export interface GradScalerState {
  scale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  /** Finite steps since the scale last changed. */
  growthTracker: number;
}

/** The largest finite float32: a finite gradient sum is at most this in magnitude. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** Where a scaler is in its scale -> unscale_ -> step -> update cycle. */
type Phase = 'ready' | 'unscaled' | 'stepped';

/**
 * Dynamic loss scaler. One iteration: `scale(loss).backward()`, optionally `unscale_(optimizer)` (to clip
 * or log true gradients), `await step(optimizer)` (skipped when any gradient is inf/NaN), `update()`.
 *
 * The scale is a host number: it changes only in `update()`, which needs the found-inf flag on the host
 * anyway, so keeping it on the device would save nothing. The flag itself is computed on the device
 * (one float32 scalar, 1 when some gradient is inf/NaN, else 0) with no per-tensor read; `step` reads
 * it unless the caller passes the value it already read together with its own logged values (the
 * training loop does, keeping its one host read per step).
 */
export class GradScaler {
  private scaleValue: number;
  private readonly growthFactor: number;
  private readonly backoffFactor: number;
  private readonly growthInterval: number;
  private growthTracker = 0;
  private phase: Phase = 'ready';
  /** The device flag of this iteration's unscale_ (kept until update). */
  private flag: Tensor | null = null;
  /** The flag's host value once step() knows it. */
  private found: boolean | null = null;

  constructor(opts: GradScalerOptions = {}) {
    this.scaleValue = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    if (!(Number.isFinite(this.scaleValue) && this.scaleValue > 0))
      throw new TensorloomError(`GradScaler: initScale must be a finite number > 0, got ${String(opts.initScale)}`);
    GradScaler.check('GradScaler', { ...this.stateDict(), growthTracker: 0 });
  }

  /** Throws unless the values form a valid state (positive finite scale, factors on the right side of 1). */
  private static check(who: string, s: GradScalerState): void {
    if (!(Number.isFinite(s.scale) && s.scale > 0))
      throw new TensorloomError(`${who}: the scale must be a finite number > 0, got ${String(s.scale)}`);
    if (!(Number.isFinite(s.growthFactor) && s.growthFactor > 1))
      throw new TensorloomError(`${who}: growthFactor must be a finite number > 1, got ${String(s.growthFactor)}`);
    if (!(s.backoffFactor > 0 && s.backoffFactor < 1))
      throw new TensorloomError(`${who}: backoffFactor must be in (0, 1), got ${String(s.backoffFactor)}`);
    if (!Number.isInteger(s.growthInterval) || s.growthInterval < 1)
      throw new TensorloomError(`${who}: growthInterval must be an integer >= 1, got ${String(s.growthInterval)}`);
    if (!Number.isInteger(s.growthTracker) || s.growthTracker < 0)
      throw new TensorloomError(`${who}: growthTracker must be an integer >= 0, got ${String(s.growthTracker)}`);
  }

  /** The current loss scale. */
  get scaleFactor(): number {
    return this.scaleValue;
  }

  /**
   * `loss` times the current scale, in float32 (a float16 loss above 1 times 2^16 would overflow);
   * differentiable: backward then yields scaled gradients.
   */
  scale(loss: Tensor): Tensor {
    return loss.cast('float32').mul(this.scaleValue);
  }

  /**
   * Divides the gradients of `target` (an optimizer's parameters, or a list of parameters) by the scale
   * in place, and computes the found-inf flag on the device: a float32 scalar, 1 when any gradient
   * element is inf or NaN, else 0. The flag is owned by the scaler (valid until `update()`); stack it
   * into the values you read anyway and pass its value to `step`. Never waits for the device.
   *
   * Detection: each gradient run is summed (no temporaries); a sum is non-finite exactly when an element
   * is inf/NaN (finite float32 gradients cannot sum past the float32 range in practice), and the test
   * is `!(|s| <= FLOAT32_MAX)`, an ordered comparison, so NaN reads as found too.
   */
  unscale_(target: Optimizer | readonly Tensor[]): Tensor {
    if (this.phase !== 'ready')
      throw new TensorloomError('GradScaler.unscale_: already called since the last update() (call update() first)');
    const params = Array.isArray(target) ? (target as readonly Tensor[]) : (target as Optimizer).params();
    const grads = params.flatMap((p) => (p.grad ? [p.grad] : []));
    const inv = 1 / this.scaleValue;
    this.flag = keep(
      noGrad(() =>
        tidy(() => {
          let acc: Tensor | null = null;
          for (const run of contiguousRuns(grads)) {
            run.mul_(inv);
            const s = run.cast('float32').sum();
            acc = acc ? acc.add(s) : s;
          }
          if (!acc) return zeros([]);
          return acc.abs().le(FLOAT32_MAX).logicalNot().cast('float32');
        }),
      ),
    );
    this.phase = 'unscaled';
    return this.flag;
  }

  /**
   * Steps `optimizer` unless this iteration's gradients held inf/NaN, unscaling them first if
   * `unscale_` was not called. `found` is the flag's host value when the caller already read it (as
   * part of its own single read); without it the flag is read here (one host read). Resolves true when
   * the optimizer stepped. A skipped step leaves the parameters and optimizer state untouched.
   */
  async step(optimizer: Optimizer, found?: number): Promise<boolean> {
    if (this.phase === 'stepped')
      throw new TensorloomError('GradScaler.step: already called since the last update() (call update() first)');
    const flag = this.phase === 'ready' ? this.unscale_(optimizer) : this.flag!;
    const value = found ?? (await flag.item());
    if (value !== 0 && value !== 1) throw new TensorloomError(`GradScaler.step: found must be 0 or 1, got ${value}`);
    this.found = value === 1;
    this.phase = 'stepped';
    if (!this.found) optimizer.step();
    return !this.found;
  }

  /**
   * Adjusts the scale after `step`: times backoffFactor when the gradients overflowed (and the growth
   * count restarts), times growthFactor after growthInterval consecutive finite steps. Frees the flag.
   */
  update(): void {
    if (this.phase !== 'stepped' || this.found === null)
      throw new TensorloomError('GradScaler.update: no step() since the last update(); nothing to adjust the scale by');
    if (this.found) {
      this.scaleValue *= this.backoffFactor;
      this.growthTracker = 0;
    } else if (++this.growthTracker >= this.growthInterval) {
      this.scaleValue *= this.growthFactor;
      this.growthTracker = 0;
    }
    this.flag?.dispose();
    this.flag = null;
    this.found = null;
    this.phase = 'ready';
  }

  /** A snapshot for checkpoints (plain numbers; see `loadStateDict`). */
  stateDict(): GradScalerState {
    return {
      scale: this.scaleValue,
      growthFactor: this.growthFactor,
      backoffFactor: this.backoffFactor,
      growthInterval: this.growthInterval,
      growthTracker: this.growthTracker,
    };
  }

  /**
   * Restores the scale and growth count from `stateDict()`. The factors and interval are this scaler's
   * construction options; a dict with different ones is refused (the resumed run would differ).
   */
  loadStateDict(sd: GradScalerState): void {
    GradScaler.check('GradScaler.loadStateDict', sd);
    for (const k of ['growthFactor', 'backoffFactor', 'growthInterval'] as const) {
      if (sd[k] !== this[k])
        throw new TensorloomError(`GradScaler.loadStateDict: the dict has ${k} ${sd[k]}, this scaler ${this[k]}`);
    }
    this.scaleValue = sd.scale;
    this.growthTracker = sd.growthTracker;
  }
}
