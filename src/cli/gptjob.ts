// The default job of `loom train` and `loom profile`: a small GPT on procedurally generated stories
// (character tokens) with its AdamW optimizer and LR schedule, built from the options both commands share.
import { CharTokenizer, WindowSampler, generateStories } from '../data/index.js';
import type { DeviceName } from '../backend/backend.js';
import { GPT, type GPTConfig } from '../models/gpt.js';
import { AdamW, warmupCosine, type LRSchedule } from '../optim/index.js';
import { chooseDevice, manualSeed, tensor, Generator, type DeviceLike, type Tensor } from '../tensor/index.js';
import type { OptionSpec, Parsed } from './args.js';

/** Model, batch and optimizer options (in help order). */
export const MODEL_OPTIONS = {
  'batch-size': { kind: 'number', help: 'sequences per step (default 16)' },
  'block-size': { kind: 'number', help: 'context length in characters (default 64)' },
  'n-layer': { kind: 'number', help: 'transformer blocks (default 3)' },
  'n-head': { kind: 'number', help: 'attention heads (default 4)' },
  'n-embd': { kind: 'number', help: 'model width (default 96)' },
  dropout: { kind: 'number', help: 'dropout probability (default 0)' },
  lr: { kind: 'number', help: 'peak learning rate (default 3e-3)' },
  'min-lr': { kind: 'number', help: 'final learning rate of the cosine schedule (default 3e-4)' },
  'warmup-steps': { kind: 'number', help: 'linear warmup steps (default 20)' },
  'weight-decay': { kind: 'number', help: 'AdamW decoupled weight decay on 2-D weights (default 0.1)' },
  'grad-clip': { kind: 'number', help: 'max global gradient norm, 0 to disable (default 1)' },
} satisfies Record<string, OptionSpec>;

/** Corpus, seed and device options (in help order). */
export const DATA_OPTIONS = {
  stories: { kind: 'number', help: 'stories in the generated corpus (default 4000)' },
  seed: { kind: 'number', help: 'seed for data, init and sampling (default 1337)' },
  device: {
    kind: 'string',
    choices: ['auto', 'cpu', 'webgpu'],
    help: 'device to train on (default auto: a hardware GPU if found, else cpu)',
  },
} satisfies Record<string, OptionSpec>;

/** A built job: data, model, optimizer and schedule on the chosen device. */
export interface GptJob {
  readonly device: DeviceName;
  /** Why that device (requested, adapter found, ...). */
  readonly deviceReason: string;
  readonly seed: number;
  readonly text: string;
  readonly tok: CharTokenizer;
  readonly trainData: WindowSampler;
  readonly valData: WindowSampler;
  readonly config: GPTConfig;
  readonly model: GPT;
  /** The model's generator (init, then dropout): its state is checkpointed. */
  readonly generator: Generator;
  readonly optimizer: AdamW;
  readonly schedule: LRSchedule;
  /** Sequences per step (B) and context length (T). */
  readonly batchSize: number;
  readonly blockSize: number;
  readonly gradClip: number;
  /** The model's loss on one batch of (B, T) token ids. */
  readonly lossOf: (batch: { x: Int32Array; y: Int32Array }) => Tensor;
}

/** Reads a number option with its default. */
export function numberOption(a: Parsed, key: string, dflt: number): number {
  return (a[key] as number | undefined) ?? dflt;
}

/** Builds the job from parsed MODEL_OPTIONS + DATA_OPTIONS; `steps` sizes the LR schedule. */
export async function buildGptJob(a: Parsed, steps: number): Promise<GptJob> {
  const num = (k: string, d: number): number => numberOption(a, k, d);
  const seed = num('seed', 1337);
  const B = num('batch-size', 16);
  const T = num('block-size', 64);
  const choice = await chooseDevice((a.device as DeviceLike | undefined) ?? 'auto');
  const device = choice.device;
  manualSeed(seed);

  const text = generateStories(num('stories', 4000), seed);
  const tok = CharTokenizer.fromText(text);
  const ids = tok.encode(text);
  const split = Math.floor(ids.length * 0.9);
  const trainData = new WindowSampler(ids.subarray(0, split), B, T, seed);
  const valData = new WindowSampler(ids.subarray(split), B, T, seed + 1);

  const config: GPTConfig = {
    vocabSize: tok.vocabSize,
    blockSize: T,
    nLayer: num('n-layer', 3),
    nHead: num('n-head', 4),
    nEmbd: num('n-embd', 96),
    dropout: num('dropout', 0),
    bias: true,
  };
  const generator = new Generator(seed);
  const model = new GPT(config, { device, generator });
  const decay = model.parameters().filter((p) => p.ndim >= 2);
  const noDecay = model.parameters().filter((p) => p.ndim < 2);
  const optimizer = new AdamW(
    [
      { params: decay, weightDecay: num('weight-decay', 0.1) },
      { params: noDecay, weightDecay: 0 },
    ],
    { lr: num('lr', 3e-3), betas: [0.9, 0.95] },
  );
  const schedule = warmupCosine({
    warmupSteps: num('warmup-steps', 20),
    totalSteps: steps,
    maxLr: num('lr', 3e-3),
    minLr: num('min-lr', 3e-4),
  });
  return {
    device,
    deviceReason: choice.reason,
    seed,
    text,
    tok,
    trainData,
    valData,
    config,
    model,
    generator,
    optimizer,
    schedule,
    batchSize: B,
    blockSize: T,
    gradClip: num('grad-clip', 1),
    lossOf: (batch) =>
      model.loss(tensor(batch.x, { shape: [B, T], device }), tensor(batch.y, { shape: [B, T], device })),
  };
}
