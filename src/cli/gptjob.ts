// The GPT job of `loom train` and `loom profile`: the device, the model (new, or fine-tuned from a Hugging
// Face GPT-2 folder), its AdamW optimizer and LR schedule and the loss of a batch, built from the options
// both commands share. Option values are checked here, before anything is trained or written.
import type { DeviceName } from '../backend/backend.js';
import { TensorloomError } from '../core/errors.js';
import { uploadBatch } from '../data/batches.js';
import type { HostBatch } from '../data/index.js';
import { GPT, type GPTConfig } from '../models/gpt.js';
import { fromPretrained } from '../models/gpt2/index.js';
import { autocast } from '../nn/index.js';
import { AdamW, GradScaler, warmupCosine, type LRSchedule } from '../optim/index.js';
import { chooseDevice, getBackend, manualSeed, Generator, type DeviceLike, type Tensor } from '../tensor/index.js';
import type { OptionSpec, Parsed } from './args.js';
import { storiesData, type GptData, type StoriesData } from './gptdata.js';

/** Model, batch and optimizer options (in help order). */
export const MODEL_OPTIONS = {
  'batch-size': { kind: 'number', help: 'sequences per micro-batch (default 16)' },
  'block-size': { kind: 'number', help: 'context length in tokens (default 64)' },
  'n-layer': { kind: 'number', help: 'transformer blocks (default 3)' },
  'n-head': { kind: 'number', help: 'attention heads (default 4)' },
  'n-embd': { kind: 'number', help: 'model width (default 96)' },
  dropout: { kind: 'number', help: 'dropout probability (default 0)' },
  lr: { kind: 'number', help: 'peak learning rate (default 3e-3)' },
  'min-lr': { kind: 'number', help: 'final learning rate of the cosine schedule (default 3e-4, or --lr if lower)' },
  'warmup-steps': { kind: 'number', help: 'linear warmup steps (default 20)' },
  'weight-decay': { kind: 'number', help: 'AdamW decoupled weight decay on 2-D weights (default 0.1)' },
  'grad-clip': { kind: 'number', help: 'max global gradient norm, 0 to disable (default 1)' },
} satisfies Record<string, OptionSpec>;

/** The precision option of `loom train`'s gpt task. */
export const PRECISION_OPTIONS = {
  precision: {
    kind: 'string',
    choices: ['auto', 'f32', 'f16'],
    help: 'f16: float16 matmuls over float32 weights, dynamic loss scaling; auto: f16 on a hardware GPU with float16, else f32 (default auto)',
  },
} satisfies Record<string, OptionSpec>;

/** The arithmetic a job trains in: float32 throughout, or mixed (float16 matmuls, float32 masters). */
export type Precision = 'f32' | 'f16';

/** Corpus, seed and device options of `loom profile` (in help order). */
export const DATA_OPTIONS = {
  stories: { kind: 'number', help: 'stories in the generated corpus (default 4000)' },
  seed: { kind: 'number', help: 'seed for data, init and sampling (default 1337)' },
  device: {
    kind: 'string',
    choices: ['auto', 'cpu', 'webgpu'],
    help: 'device to train on (default auto: a hardware GPU if found, else cpu)',
  },
} satisfies Record<string, OptionSpec>;

/** The model options a fine-tuned model takes from its folder's config.json instead. */
export const ARCHITECTURE_OPTIONS = ['n-layer', 'n-head', 'n-embd'] as const;

/** A built job: data, model, optimizer and schedule on the chosen device. */
export interface GptJob<D extends GptData = GptData> {
  readonly device: DeviceName;
  /** Why that device (requested, adapter found, ...). */
  readonly deviceReason: string;
  readonly seed: number;
  readonly data: D;
  readonly config: GPTConfig;
  readonly model: GPT;
  /** The generator of the model's init and dropout: its state is checkpointed. */
  readonly generator: Generator;
  readonly optimizer: AdamW;
  readonly schedule: LRSchedule;
  /** Sequences per micro-batch (B) and context length (T). */
  readonly batchSize: number;
  readonly blockSize: number;
  readonly gradClip: number;
  /** The optimizer and schedule settings (a resumed run must match them). */
  readonly hyper: {
    readonly lr: number;
    readonly minLr: number;
    readonly warmupSteps: number;
    readonly weightDecay: number;
  };
  /** The model's loss on one batch (uploaded in one transfer: its B x (T+1) windows); autocast under f16. */
  readonly lossOf: (batch: HostBatch) => Tensor;
  readonly precision: Precision;
  /** The loss scaler of f16 training (null under f32); its state is checkpointed. */
  readonly scaler: GradScaler | null;
}

/** Reads a number option with its default. */
export function numberOption(a: Parsed, key: string, dflt: number): number {
  return (a[key] as number | undefined) ?? dflt;
}

/** Reads an integer option >= `min` with its default; anything else is an error naming the option. */
export function intOption(a: Parsed, key: string, dflt: number, min: number, command = 'train'): number {
  const v = numberOption(a, key, dflt);
  if (!Number.isInteger(v) || v < min)
    throw new TensorloomError(`loom ${command}: --${key} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** Reads a number option in [lo, hi) (hi = Infinity: no upper bound). */
function rangeOption(a: Parsed, key: string, dflt: number, lo: number, hi = Infinity): number {
  const v = numberOption(a, key, dflt);
  if (!(v >= lo && v < hi))
    throw new TensorloomError(
      `loom train: --${key} must be ${hi === Infinity ? `>= ${lo}` : `in [${lo}, ${hi})`}, got ${v}`,
    );
  return v;
}

/** The device the options ask for, and why. */
export async function jobDevice(a: Parsed): Promise<{ device: DeviceName; reason: string }> {
  const choice = await chooseDevice((a.device as DeviceLike | undefined) ?? 'auto');
  return { device: choice.device, reason: choice.reason };
}

/**
 * The precision the options ask for on `device`, and why. auto: f16 only on a hardware GPU that has
 * float16 (the CPU and software adapters compute float16 no faster, often slower, so there it would only
 * cost accuracy); f16 where the device lacks float16 is an error naming the device.
 */
export function jobPrecision(a: Parsed, device: DeviceName): { precision: Precision; reason: string } {
  const choice = (a.precision as string | undefined) ?? 'auto';
  const caps = getBackend(device).caps;
  const hasF16 = caps.dtypes.includes('float16');
  if (choice === 'f16') {
    if (!hasF16)
      throw new TensorloomError(
        `loom train: --precision f16 needs float16 on the device, and ${device} (${caps.description}) has none ` +
          `(a WebGPU adapter needs shader-f16); use --precision f32 or auto`,
      );
    return { precision: 'f16', reason: 'requested' };
  }
  if (choice === 'f32') return { precision: 'f32', reason: 'requested' };
  if (choice !== 'auto')
    throw new TensorloomError(`loom train: --precision must be auto, f32 or f16, got ${JSON.stringify(choice)}`);
  const why =
    device === 'cpu' ? 'the cpu' : !hasF16 ? 'no float16 on the device' : caps.software ? 'a software adapter' : '';
  if (!why) return { precision: 'f16', reason: 'auto: a hardware GPU with float16' };
  return { precision: 'f32', reason: `auto: ${why}` };
}

/**
 * The model to train: loaded from the Hugging Face folder `initFrom` (architecture from its config.json;
 * --n-layer/--n-head/--n-embd are refused there, --block-size must fit its context), else a new GPT
 * sized by the options. `vocabSize` is the data's tokenizer's: a pretrained model must match it.
 */
export async function buildModel(
  a: Parsed,
  vocabSize: number,
  blockSize: number,
  device: DeviceName,
  generator: Generator,
  initFrom?: string,
): Promise<GPT> {
  const dropout = rangeOption(a, 'dropout', 0, 0, 1);
  if (initFrom === undefined) {
    const config: GPTConfig = {
      vocabSize,
      blockSize,
      nLayer: intOption(a, 'n-layer', 3, 1),
      nHead: intOption(a, 'n-head', 4, 1),
      nEmbd: intOption(a, 'n-embd', 96, 1),
      dropout,
      bias: true,
    };
    if (config.nEmbd % config.nHead !== 0)
      throw new TensorloomError(`loom train: --n-embd ${config.nEmbd} must be a multiple of --n-head ${config.nHead}`);
    return new GPT(config, { device, generator });
  }
  const given = ARCHITECTURE_OPTIONS.filter((k) => a[k] !== undefined);
  if (given.length)
    throw new TensorloomError(
      `loom train: --${given[0]} cannot be combined with --init-from ${initFrom}: the architecture comes from ${initFrom}/config.json`,
    );
  const model = await fromPretrained(initFrom, { device, ...(a.dropout !== undefined ? { dropout } : {}) });
  const c = model.config;
  const problem =
    c.vocabSize !== vocabSize
      ? `its vocabulary has ${c.vocabSize} ids (${initFrom}/config.json) but the data's tokenizer has ${vocabSize}; ` +
        `tokenize the data with the model's tokenizer: loom prepare --tokenizer ${initFrom} --input FILE --out DIR`
      : blockSize > c.blockSize
        ? `--block-size ${blockSize} exceeds the model's context of ${c.blockSize} tokens`
        : undefined;
  if (problem) {
    model.dispose();
    throw new TensorloomError(`loom train: --init-from ${initFrom}: ${problem}`);
  }
  return model;
}

/** Assembles the job around `model` and `data`: AdamW (decay on 2-D weights only), the schedule, the loss. */
export function assembleJob<D extends GptData>(
  a: Parsed,
  steps: number,
  parts: {
    data: D;
    model: GPT;
    generator: Generator;
    device: DeviceName;
    deviceReason: string;
    seed: number;
    precision?: Precision;
  },
): GptJob<D> {
  const { model, device } = parts;
  const precision = parts.precision ?? 'f32';
  const lr = rangeOption(a, 'lr', 3e-3, 0);
  const weightDecay = rangeOption(a, 'weight-decay', 0.1, 0);
  const params = model.parameters();
  const optimizer = new AdamW(
    [
      { params: params.filter((p) => p.ndim >= 2), weightDecay },
      { params: params.filter((p) => p.ndim < 2), weightDecay: 0 },
    ],
    { lr, betas: [0.9, 0.95] },
  );
  const minLr = rangeOption(a, 'min-lr', Math.min(3e-4, lr), 0);
  if (minLr > lr) throw new TensorloomError(`loom train: --min-lr ${minLr} must not exceed --lr ${lr}`);
  const warmupSteps = intOption(a, 'warmup-steps', 20, 0);
  const schedule = warmupCosine({ warmupSteps, totalSteps: steps, maxLr: lr, minLr });
  return {
    ...parts,
    config: model.config,
    optimizer,
    schedule,
    batchSize: intOption(a, 'batch-size', 16, 1),
    blockSize: intOption(a, 'block-size', 64, 1),
    gradClip: rangeOption(a, 'grad-clip', 1, 0),
    hyper: { lr, minLr, warmupSteps, weightDecay },
    lossOf: (batch) => {
      const { x, y } = uploadBatch(batch, device); // (B, T) views of one (B, T+1) upload
      return precision === 'f16' ? autocast('float16', () => model.loss(x, y)) : model.loss(x, y);
    },
    precision,
    scaler: precision === 'f16' ? new GradScaler() : null,
  };
}

/** The job `loom profile` runs: a new GPT on the generated stories (character tokens). */
export async function buildStoriesJob(a: Parsed, steps: number): Promise<GptJob<StoriesData>> {
  const seed = numberOption(a, 'seed', 1337);
  const B = intOption(a, 'batch-size', 16, 1, 'profile');
  const T = intOption(a, 'block-size', 64, 1, 'profile');
  const { device, reason } = await jobDevice(a);
  manualSeed(seed);
  const data = storiesData(intOption(a, 'stories', 4000, 1, 'profile'), seed, B, T);
  const generator = new Generator(seed);
  const model = await buildModel(a, data.tokenizer.vocabSize, T, device, generator);
  return assembleJob(a, steps, { data, model, generator, device, deviceReason: reason, seed });
}
