// The step profiler: runs a training step a few times unprofiled (warmup, counters), then N times with
// per-kernel profiling on and a device sync after each phase, and reports kernel times (GPU timestamps
// where the device has them), host time per phase and the backend counters.
import type { DeviceName, KernelTiming, ProfileTiming } from '../backend/backend.js';
import { getBackend, noGrad, stack, tidy, type Tensor } from '../tensor/index.js';
import '../autograd/index.js';
import { clipGradNorm_, type Optimizer } from '../optim/index.js';

/** What a profiled step may ask for: named phases. */
export interface PhaseContext {
  /**
   * Runs `fn` as phase `name` inside `tidy` (what it returns survives). While profiling, the phase's
   * host time is measured up to a device sync after it, so device work is charged to its phase.
   */
  phase<T>(name: string, fn: () => T): Promise<T>;
}

/** One training step, split into phases; `step` counts from 0 over warmup and profiled steps. */
export type ProfiledStep = (ctx: PhaseContext, step: number) => Promise<void>;

/** The counters of BackendStats that a step moves (live values left out). */
export interface StepCounters {
  buffersCreated: number;
  submits: number;
  dispatches: number;
  compiles: number;
  bytesUploaded: number;
  bytesDownloaded: number;
}

/** One kernel's row: `ms` is GPU time when the report has timestamps, else host time (see `timing`). */
export interface KernelRow {
  readonly name: string;
  readonly count: number;
  readonly ms: number;
  /** Mean microseconds per run (`ms` / `count`). */
  readonly meanUs: number;
  readonly hostMs: number;
  readonly deviceMs: number | null;
}

/** One phase's host time (wall time up to the device sync that ends it). */
export interface PhaseRow {
  readonly name: string;
  readonly totalMs: number;
  readonly meanMs: number;
}

/** One profiled step (what TL_DEBUG=2 prints). */
export interface StepProfile {
  readonly step: number;
  readonly ms: number;
  readonly phases: readonly PhaseRow[];
  readonly kernels: readonly KernelRow[];
  readonly timing: ProfileTiming;
}

/** What `profileSteps` measured. */
export interface ProfileReport {
  readonly device: DeviceName;
  /** The backend's description (adapter, software or not, threads). */
  readonly description: string;
  readonly software: boolean;
  readonly timing: ProfileTiming;
  /** True when kernel times are GPU time from timestamp-query. */
  readonly timestamps: boolean;
  /** What the kernel times mean, in words (says when GPU timestamps are unavailable). */
  readonly timingNote: string;
  readonly warmup: number;
  readonly steps: number;
  /** Mean wall time of a profiled step (phase syncs and timing included). */
  readonly stepMs: number;
  /** Wall time of the last unprofiled (warmup) step; null without warmup. */
  readonly plainStepMs: number | null;
  /** Phases in the order the step ran them, plus 'other' (time outside phases: reads, data). */
  readonly phases: readonly PhaseRow[];
  /** Kernels by total time, largest first. */
  readonly kernels: readonly KernelRow[];
  /** Host time in queue submits over the profiled steps (WebGPU; not in the kernel rows). */
  readonly submitMs: number;
  /** Counter deltas of the last unprofiled step: the steady state as training sees it; null without warmup. */
  readonly counters: StepCounters | null;
  /** Counter deltas summed over the profiled steps (phase syncs add submits on WebGPU; dispatches are unchanged). */
  readonly profiledCounters: StepCounters;
}

/** Options of `profileSteps`. */
export interface ProfileOptions {
  readonly device: DeviceName;
  /** Profiled steps (at least 1). */
  readonly steps: number;
  /** Unprofiled steps first: compiles, pool and optimizer state settle (default 2). */
  readonly warmup?: number;
  /** Called after each profiled step (e.g. to print it when config.debug >= 2). */
  readonly onStep?: (s: StepProfile) => void;
}

const COUNTERS = ['buffersCreated', 'submits', 'dispatches', 'compiles', 'bytesUploaded', 'bytesDownloaded'] as const;

function zeroCounters(): StepCounters {
  return { buffersCreated: 0, submits: 0, dispatches: 0, compiles: 0, bytesUploaded: 0, bytesDownloaded: 0 };
}

function delta(before: StepCounters, after: StepCounters): StepCounters {
  const d = zeroCounters();
  for (const k of COUNTERS) d[k] = after[k] - before[k];
  return d;
}

function toRow(name: string, count: number, hostMs: number, deviceMs: number | null): KernelRow {
  const ms = deviceMs ?? hostMs;
  return { name, count, ms, meanUs: count > 0 ? (ms * 1000) / count : 0, hostMs, deviceMs };
}

function byTime(rows: KernelRow[]): KernelRow[] {
  return rows.sort((a, b) => b.ms - a.ms || b.count - a.count || (a.name < b.name ? -1 : 1));
}

function phaseRows(totals: ReadonlyMap<string, number>, steps: number): PhaseRow[] {
  return [...totals].map(([name, totalMs]) => ({ name, totalMs, meanMs: totalMs / steps }));
}

/**
 * Runs `step` `warmup` times unprofiled (the last one's counters and time are the steady state), then
 * `steps` times with the backend's per-kernel profiling on and a device sync after each phase, reading
 * the kernel records back once per step. Profiling is off again when it returns or throws.
 */
export async function profileSteps(opts: ProfileOptions, step: ProfiledStep): Promise<ProfileReport> {
  const backend = getBackend(opts.device);
  const warmup = opts.warmup ?? 2;
  if (!Number.isInteger(opts.steps) || opts.steps < 1) throw new RangeError('profileSteps: steps must be >= 1');
  if (!Number.isInteger(warmup) || warmup < 0) throw new RangeError('profileSteps: warmup must be >= 0');
  let profiling = false;
  let stepPhases = new Map<string, number>();
  const ctx: PhaseContext = {
    async phase<T>(name: string, fn: () => T): Promise<T> {
      const t0 = performance.now();
      const out = tidy(fn);
      if (profiling) {
        await backend.sync();
        stepPhases.set(name, (stepPhases.get(name) ?? 0) + performance.now() - t0);
      }
      return out;
    },
  };

  let counters: StepCounters | null = null;
  let plainStepMs: number | null = null;
  for (let i = 0; i < warmup; i++) {
    const before = backend.stats();
    const t0 = performance.now();
    await step(ctx, i);
    await backend.sync();
    plainStepMs = performance.now() - t0;
    counters = delta(before, backend.stats());
  }

  const phases = new Map<string, number>();
  const kernels = new Map<string, { count: number; hostMs: number; deviceMs: number }>();
  const profiled = zeroCounters();
  let timing: ProfileTiming = 'host-wall';
  let note = '';
  let totalMs = 0;
  let submitMs = 0;
  backend.setProfiling(true);
  profiling = true;
  try {
    for (let i = 0; i < opts.steps; i++) {
      stepPhases = new Map();
      const before = backend.stats();
      const t0 = performance.now();
      await step(ctx, warmup + i);
      await backend.sync();
      const ms = performance.now() - t0;
      const d = delta(before, backend.stats());
      const kp = await backend.takeProfile();
      for (const k of COUNTERS) profiled[k] += d[k];
      ({ timing, note } = kp);
      totalMs += ms;
      submitMs += kp.submitMs;
      const inPhases = [...stepPhases.values()].reduce((a, b) => a + b, 0);
      stepPhases.set('other', Math.max(0, ms - inPhases));
      for (const [name, v] of stepPhases) phases.set(name, (phases.get(name) ?? 0) + v);
      for (const k of kp.kernels) addKernel(kernels, k);
      opts.onStep?.({
        step: warmup + i,
        ms,
        phases: phaseRows(stepPhases, 1),
        kernels: byTime(kp.kernels.map((k) => toRow(k.name, k.count, k.hostMs, k.deviceMs))),
        timing: kp.timing,
      });
    }
  } finally {
    profiling = false;
    backend.setProfiling(false);
  }
  const timestamps = timing === 'gpu-timestamps';
  return {
    device: opts.device,
    description: backend.caps.description,
    software: backend.caps.software,
    timing,
    timestamps,
    timingNote: note,
    warmup,
    steps: opts.steps,
    stepMs: totalMs / opts.steps,
    plainStepMs,
    phases: phaseRows(phases, opts.steps),
    kernels: byTime([...kernels].map(([n, k]) => toRow(n, k.count, k.hostMs, timestamps ? k.deviceMs : null))),
    submitMs,
    counters,
    profiledCounters: profiled,
  };
}

function addKernel(m: Map<string, { count: number; hostMs: number; deviceMs: number }>, k: KernelTiming): void {
  const e = m.get(k.name) ?? { count: 0, hostMs: 0, deviceMs: 0 };
  e.count += k.count;
  e.hostMs += k.hostMs;
  e.deviceMs += k.deviceMs ?? 0;
  m.set(k.name, e);
}

/** What `trainStep` needs: the parameters, a loss builder, the optimizer and the clip norm. */
export interface TrainStepSpec {
  readonly params: readonly Tensor[];
  /** Builds the scalar training loss of the next batch. */
  loss(): Tensor;
  readonly optimizer: Optimizer;
  /** Max global grad norm (0 disables clipping; the norm is still computed, as in trainLoop). */
  readonly gradClip: number;
}

/**
 * The training loop's step as a ProfiledStep: phase 'forward' (the loss), 'backward' (loss.backward()),
 * 'optimizer' (clip, step, zeroGrad), then the loop's one read of the loss and grad norm.
 */
export function trainStep(spec: TrainStepSpec): ProfiledStep {
  return async (p) => {
    const loss = await p.phase('forward', () => spec.loss());
    await p.phase('backward', () => loss.backward());
    const logged = await p.phase('optimizer', () => {
      const norm = clipGradNorm_(spec.params, spec.gradClip > 0 ? spec.gradClip : Infinity);
      spec.optimizer.step();
      spec.optimizer.zeroGrad();
      return noGrad(() => stack([loss, norm.cast(loss.dtype)]));
    });
    loss.dispose();
    await logged.toArray();
    logged.dispose();
  };
}
