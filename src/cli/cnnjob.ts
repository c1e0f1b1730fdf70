// The `cnn` training job: its options, and building the run from them (the generated shapes dataset,
// a small ResNet on the chosen device, the optimizer and LR schedule), plus what a checkpoint records
// about it (model, optimizer, step, sampler and RNG states, the config) and how --resume restores it.
import { TensorloomError } from '../core/errors.js';
import type { DeviceName } from '../backend/backend.js';
import { ImageBatchSampler, SHAPE_CLASSES, makeShapes, type ShapesData } from '../data/index.js';
import { loadLatestCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { ResNet, type ResNetConfig } from '../models/resnet.js';
import { AdamW, SGD, warmupCosine, type LRSchedule, type Optimizer, type OptimizerStateDict } from '../optim/index.js';
import { Generator, chooseDevice, defaultGenerator, manualSeed, type DeviceLike } from '../tensor/index.js';
import type { OptionSpec, Parsed } from './args.js';

/**
 * The cnn task's own options (the common ones come from tasks.ts), in help order. The defaults are the
 * settings of configs/cnn-shapes.json (a test keeps the two in step).
 */
export const CNN_OPTIONS = {
  steps: { kind: 'number', help: 'optimizer steps (default 400)' },
  'batch-size': { kind: 'number', help: 'images per step (default 32)' },
  'eval-every': { kind: 'number', help: 'evaluate on the held-out split every N steps, and at the end (default 100)' },
  widths: { kind: 'string', help: 'channels of each ResNet stage, comma-separated (default 8,16,32)' },
  blocks: { kind: 'string', help: 'basic blocks per stage, comma-separated (default 1,1,1)' },
  optimizer: { kind: 'string', choices: ['sgd', 'adamw'], help: 'SGD with momentum or AdamW (default sgd)' },
  lr: { kind: 'number', help: 'peak learning rate (default 0.05 for sgd, 3e-3 for adamw)' },
  'min-lr': { kind: 'number', help: 'final learning rate of the cosine schedule (default lr/20)' },
  'warmup-steps': { kind: 'number', help: 'linear warmup steps (default 10)' },
  momentum: { kind: 'number', help: 'SGD momentum (default 0.9)' },
  'weight-decay': { kind: 'number', help: 'weight decay on conv/linear weights (default 5e-4 sgd, 0.05 adamw)' },
  'image-size': { kind: 'number', help: 'side of the generated images in pixels (default 24)' },
  channels: { kind: 'number', help: '3 (RGB) or 1 (grayscale) (default 3)' },
  classes: { kind: 'number', help: `shape classes, the first N of ${SHAPE_CLASSES.join(', ')} (default 8)` },
  noise: { kind: 'number', help: 'pixel noise standard deviation (default 0.05)' },
  'train-images': { kind: 'number', help: 'images in the training split (default 4000)' },
  'test-images': { kind: 'number', help: 'images in the held-out split (default 800)' },
} satisfies Record<string, OptionSpec>;

/** The settings a resumed run must share with the run that wrote the checkpoint. */
export interface CnnRunConfig {
  steps: number;
  batchSize: number;
  model: ResNetConfig;
  optimizer: 'sgd' | 'adamw';
  lr: number;
  minLr: number;
  warmupSteps: number;
  momentum: number;
  weightDecay: number;
  data: { size: number; channels: 1 | 3; classes: number; noise: number; train: number; test: number };
  seed: number;
}

/** A built job: data, model, optimizer and schedule on the chosen device. */
export interface CnnJob {
  readonly device: DeviceName;
  /** Why that device (requested, adapter found, ...). */
  readonly deviceReason: string;
  readonly config: CnnRunConfig;
  readonly train: ShapesData;
  readonly test: ShapesData;
  readonly sampler: ImageBatchSampler;
  readonly model: ResNet;
  /** The model's generator (its init): checkpointed with the default generator. */
  readonly generator: Generator;
  readonly optimizer: Optimizer;
  readonly schedule: LRSchedule;
}

function fail(msg: string): never {
  throw new TensorloomError(`loom train (cnn): ${msg}`);
}

/** A number option: its default when absent; checked to be an integer >= min (when `int`) or in range. */
function num(a: Parsed, key: string, dflt: number, check: { int?: boolean; min?: number; max?: number } = {}): number {
  const v = (a[key] as number | undefined) ?? dflt;
  const { int = false, min = -Infinity, max = Infinity } = check;
  if ((int && !Number.isInteger(v)) || v < min || v > max || !Number.isFinite(v)) {
    const what = `${int ? 'an integer' : 'a number'}${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? ` and <= ${max}` : ''}`;
    fail(`--${key} must be ${what}, got ${v}`);
  }
  return v;
}

/** A comma-separated list of positive integers ("16,32,64"). */
function intList(a: Parsed, key: string, dflt: string): number[] {
  const raw = (a[key] as string | undefined) ?? dflt;
  const xs = raw.split(',').map((s) => Number(s.trim()));
  if (raw.trim() === '' || xs.some((x) => !Number.isInteger(x) || x < 1))
    fail(`--${key} must be comma-separated positive integers like ${dflt}, got '${raw}'`);
  return xs;
}

/** Reads and validates the run's settings from the merged options. */
export function cnnRunConfig(a: Parsed): CnnRunConfig {
  const name = (a.optimizer as string | undefined) ?? 'sgd';
  if (name !== 'sgd' && name !== 'adamw') fail(`--optimizer must be sgd or adamw, got '${name}'`);
  const optimizer = name;
  const sgd = optimizer === 'sgd';
  const lr = num(a, 'lr', sgd ? 0.05 : 3e-3, { min: 0 });
  const steps = num(a, 'steps', 400, { int: true, min: 1 });
  const warmupSteps = num(a, 'warmup-steps', Math.min(10, steps - 1), { int: true, min: 0 });
  if (warmupSteps >= steps) fail(`--warmup-steps (${warmupSteps}) must be smaller than --steps (${steps})`);
  const widths = intList(a, 'widths', '8,16,32');
  const blocks = intList(a, 'blocks', '1,1,1');
  if (widths.length !== blocks.length)
    fail(`--widths (${widths.join(',')}) and --blocks (${blocks.join(',')}) need one entry per stage each`);
  const channels = num(a, 'channels', 3, { int: true, min: 1, max: 3 });
  if (channels !== 1 && channels !== 3) fail(`--channels must be 1 or 3, got ${channels}`);
  const classes = num(a, 'classes', SHAPE_CLASSES.length, { int: true, min: 2, max: SHAPE_CLASSES.length });
  const batchSize = num(a, 'batch-size', 32, { int: true, min: 1 });
  return {
    steps,
    batchSize,
    model: { widths, blocks, numClasses: classes, inChannels: channels, stem: 'small' },
    optimizer,
    lr,
    minLr: num(a, 'min-lr', lr / 20, { min: 0 }),
    warmupSteps,
    momentum: num(a, 'momentum', 0.9, { min: 0 }),
    weightDecay: num(a, 'weight-decay', sgd ? 5e-4 : 0.05, { min: 0 }),
    data: {
      size: num(a, 'image-size', 24, { int: true, min: 12, max: 256 }),
      channels,
      classes,
      noise: num(a, 'noise', 0.05, { min: 0, max: 1 }),
      train: num(a, 'train-images', 4000, { int: true, min: batchSize }),
      test: num(a, 'test-images', 800, { int: true, min: 1 }),
    },
    seed: num(a, 'seed', 1337, { int: true }),
  };
}

/** Builds the job from the merged options. */
export async function buildCnnJob(a: Parsed): Promise<CnnJob> {
  const config = cnnRunConfig(a);
  const choice = await chooseDevice((a.device as DeviceLike | undefined) ?? 'auto');
  const device = choice.device;
  const { seed, data: d } = config;
  manualSeed(seed);
  const common = { size: d.size, channels: d.channels, classes: d.classes, noise: d.noise, seed };
  const train = makeShapes({ ...common, count: d.train, split: 'train' });
  const test = makeShapes({ ...common, count: d.test, split: 'test' });
  const sampler = new ImageBatchSampler(train, config.batchSize, seed);
  const generator = new Generator(seed);
  const model = new ResNet(config.model, { device, generator });
  // decay conv and linear weights only, not BatchNorm's scale/shift or biases (the usual recipe)
  const decay = model.parameters().filter((p) => p.ndim >= 2);
  const noDecay = model.parameters().filter((p) => p.ndim < 2);
  const groups = [
    { params: decay, weightDecay: config.weightDecay },
    { params: noDecay, weightDecay: 0 },
  ];
  const optimizer: Optimizer =
    config.optimizer === 'sgd'
      ? new SGD(groups, { lr: config.lr, momentum: config.momentum })
      : new AdamW(groups, { lr: config.lr });
  const schedule = warmupCosine({
    warmupSteps: config.warmupSteps,
    totalSteps: config.steps,
    maxLr: config.lr,
    minLr: config.minLr,
  });
  return { device, deviceReason: choice.reason, config, train, test, sampler, model, generator, optimizer, schedule };
}

/** Saves the job's state after `step` completed steps into `dir`; returns the checkpoint folder. */
export async function saveCnnCheckpoint(dir: string, job: CnnJob, step: number): Promise<string> {
  const opt = job.optimizer.stateDict();
  return saveCheckpoint(dir, {
    step,
    model: job.model.stateDict(),
    optimizer: { state: opt.state, paramGroups: opt.paramGroups },
    extra: {
      task: 'cnn',
      config: job.config,
      sampler: job.sampler.getState(),
      rng: { default: defaultGenerator.getState(), model: job.generator.getState() },
    },
  });
}

/** The differing leaves of two JSON values, as `path: saved vs now`. */
function differences(saved: unknown, now: unknown, path = ''): string[] {
  if (typeof saved === 'object' && saved !== null && typeof now === 'object' && now !== null) {
    const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
    return [...keys].flatMap((k) =>
      differences(
        (saved as Record<string, unknown>)[k],
        (now as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
      ),
    );
  }
  return saved === now ? [] : [`${path}: ${JSON.stringify(saved)} in the checkpoint, ${JSON.stringify(now)} now`];
}

/**
 * Restores the newest usable checkpoint in `dir` into `job` (model, optimizer, sampler, RNGs) and returns
 * the step to continue from. Refuses a checkpoint of another task or of a run with a different config.
 */
export async function resumeCnnJob(dir: string, job: CnnJob, log: (s: string) => void): Promise<number> {
  const ck = await loadLatestCheckpoint(dir, { device: job.device, log });
  if (!ck) fail(`--resume: no checkpoint found in ${dir}`);
  try {
    if (ck.extra.task !== 'cnn')
      fail(`--resume: ${ck.path} was not written by the cnn task (task ${JSON.stringify(ck.extra.task ?? 'gpt')})`);
    const diffs = differences(ck.extra.config, job.config);
    if (diffs.length)
      fail(`--resume: ${ck.path} was written by a run with a different config; refusing it:\n  ${diffs.join('\n  ')}`);
    const extra = ck.extra as {
      sampler: number;
      rng: { default: ReturnType<Generator['getState']>; model: ReturnType<Generator['getState']> };
    };
    job.model.loadStateDict(ck.model);
    job.optimizer.loadStateDict(ck.optimizer as unknown as OptimizerStateDict);
    job.sampler.setState(extra.sampler);
    defaultGenerator.setState(extra.rng.default);
    job.generator.setState(extra.rng.model);
    log(`resumed from ${ck.path} at step ${ck.step}`);
    return ck.step;
  } finally {
    for (const t of ck.model.values()) t.dispose();
    for (const st of Object.values(ck.optimizer.state)) for (const t of Object.values(st.tensors)) t.dispose();
  }
}
