// A GPT training step as the benchmarks (and anyone comparing frameworks) run it: the model of
// models/gpt.ts in a named configuration, fixed random token batches, forward + backward + AdamW; and the
// same step with a device sync after each phase, to split its time into forward / backward / optimizer.
import '../autograd/index.js';
import { GPT, type GPTConfig } from '../models/gpt.js';
import { AdamW } from '../optim/index.js';
import { Generator, getBackend, tensor, tidy, type DeviceLike, type Tensor } from '../tensor/index.js';

/** A named train-step configuration: the model plus batch and sequence length. */
export interface TrainStepConfig {
  readonly name: string;
  readonly model: GPTConfig;
  readonly batch: number;
  readonly seq: number;
}

/** The two configurations; bench/torch_bench.py builds the same models in PyTorch. */
export const TRAIN_STEP_CONFIGS: Readonly<Record<string, TrainStepConfig>> = {
  small: {
    name: 'small',
    model: { vocabSize: 50257, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 256, dropout: 0, bias: true },
    batch: 8,
    seq: 128,
  },
  'gpt2-124m': {
    name: 'gpt2-124m',
    model: { vocabSize: 50257, blockSize: 1024, nLayer: 12, nHead: 12, nEmbd: 768, dropout: 0, bias: true },
    batch: 4,
    seq: 64,
  },
  /** A tiny model for smoke tests of the benchmark itself. */
  tiny: {
    name: 'tiny',
    model: { vocabSize: 256, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 32, dropout: 0, bias: true },
    batch: 2,
    seq: 16,
  },
};

/** A ready-to-run training step. */
export interface TrainStep {
  readonly config: TrainStepConfig;
  readonly parameters: number;
  /** Tokens per step (batch x seq). */
  readonly tokens: number;
  /** One forward + backward + AdamW step; resolves with the loss (the step's one host read). */
  step(): Promise<number>;
  /**
   * The same step with the device synced after each phase: the host wall time of forward, backward and
   * optimizer (each up to its sync, so queued device work counts in its phase). The syncs cost time,
   * so the phases add up to more than an unsynced step(): time that separately.
   */
  phases(): Promise<PhaseTimes>;
  /** Frees the model, optimizer state and batch. */
  dispose(): void;
}

/** Milliseconds of each phase of one synced step. */
export interface PhaseTimes {
  readonly forward: number;
  readonly backward: number;
  readonly optimizer: number;
}

/** Deterministic token ids in [0, vocab) (a multiplicative hash of the position). */
function tokenIds(n: number, vocab: number, salt: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => Number((BigInt(i + 1) * BigInt(2654435761 + salt)) % BigInt(vocab)));
}

/** Builds the model of `config` on `device` with AdamW (lr 1e-4, weight decay 0.1) and a fixed batch. */
export function makeTrainStep(config: TrainStepConfig, device: DeviceLike = 'cpu', seed = 1337): TrainStep {
  const { batch: B, seq: T, model: mc } = config;
  const model = new GPT(mc, { device, generator: new Generator(seed) });
  const optimizer = new AdamW(model.parameters(), { lr: 1e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
  const x = tensor(tokenIds(B * T, mc.vocabSize, 0), { shape: [B, T], device });
  const y = tensor(tokenIds(B * T, mc.vocabSize, 1), { shape: [B, T], device });
  return {
    config,
    parameters: model.numParameters(),
    tokens: B * T,
    async step(): Promise<number> {
      const loss: Tensor = tidy(() => {
        const l = model.loss(x, y);
        l.backward();
        return l;
      });
      optimizer.step();
      optimizer.zeroGrad();
      const v = await loss.item();
      loss.dispose();
      return v;
    },
    async phases(): Promise<PhaseTimes> {
      const backend = getBackend(device);
      await backend.sync();
      const t0 = performance.now();
      const loss = tidy(() => model.loss(x, y));
      await backend.sync();
      const t1 = performance.now();
      tidy(() => loss.backward());
      await backend.sync();
      const t2 = performance.now();
      optimizer.step();
      optimizer.zeroGrad();
      await backend.sync();
      const t3 = performance.now();
      loss.dispose();
      return { forward: t1 - t0, backward: t2 - t1, optimizer: t3 - t2 };
    },
    dispose(): void {
      optimizer.zeroGrad();
      for (const p of model.parameters()) p.dispose();
      x.dispose();
      y.dispose();
    },
  };
}
