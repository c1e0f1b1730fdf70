// `loom train`: trains a small GPT on a corpus the project generates itself (procedural stories,
// character tokens), logs one line per step, evaluates on held-out text and prints a sample.
import { CharTokenizer, WindowSampler, generateStories } from '../data/index.js';
import { GPT, type GPTConfig } from '../models/gpt.js';
import { AdamW, warmupCosine } from '../optim/index.js';
import {
  chooseDevice,
  getBackend,
  manualSeed,
  tensor,
  Generator,
  type DeviceLike,
  type Tensor,
} from '../tensor/index.js';
import { trainLoop } from '../train/index.js';
import { helpText, parseArgs, type OptionSpec } from './args.js';

const OPTIONS = {
  steps: { kind: 'number', help: 'optimizer steps (default 300)' },
  'batch-size': { kind: 'number', help: 'sequences per step (default 16)' },
  'block-size': { kind: 'number', help: 'context length in characters (default 64)' },
  'n-layer': { kind: 'number', help: 'transformer blocks (default 2)' },
  'n-head': { kind: 'number', help: 'attention heads (default 4)' },
  'n-embd': { kind: 'number', help: 'model width (default 64)' },
  dropout: { kind: 'number', help: 'dropout probability (default 0)' },
  lr: { kind: 'number', help: 'peak learning rate (default 3e-3)' },
  'min-lr': { kind: 'number', help: 'final learning rate of the cosine schedule (default 3e-4)' },
  'warmup-steps': { kind: 'number', help: 'linear warmup steps (default 20)' },
  'weight-decay': { kind: 'number', help: 'AdamW decoupled weight decay on 2-D weights (default 0.1)' },
  'grad-clip': { kind: 'number', help: 'max global gradient norm, 0 to disable (default 1)' },
  'eval-every': { kind: 'number', help: 'evaluate on held-out text every N steps (default 100)' },
  stories: { kind: 'number', help: 'stories in the generated corpus (default 4000)' },
  seed: { kind: 'number', help: 'seed for data, init and sampling (default 1337)' },
  device: {
    kind: 'string',
    choices: ['auto', 'cpu', 'webgpu'],
    help: 'device to train on (default auto: a hardware GPU if found, else cpu)',
  },
  'sample-chars': { kind: 'number', help: 'characters to sample after training (default 300)' },
  help: { kind: 'boolean', help: 'show this help' },
} satisfies Record<string, OptionSpec>;

const DESCRIPTION =
  'Trains a small GPT on procedurally generated stories (no downloads), printing one line per step\n' +
  '(step, loss, grad norm, lr, ms, tokens/s), a held-out loss every --eval-every steps, and a sample.';

/** Runs `loom train`; returns the process exit code. */
export async function trainCommand(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const a = parseArgs('train', argv, OPTIONS);
  if (a.help) {
    out(helpText('train', DESCRIPTION, OPTIONS));
    return 0;
  }
  const num = (k: keyof typeof OPTIONS, d: number) => (a[k] as number | undefined) ?? d;
  const seed = num('seed', 1337);
  const steps = num('steps', 300);
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
    nLayer: num('n-layer', 2),
    nHead: num('n-head', 4),
    nEmbd: num('n-embd', 64),
    dropout: num('dropout', 0),
    bias: true,
  };
  const model = new GPT(config, { device, generator: new Generator(seed) });
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

  const backend = getBackend(device);
  out(
    `loom train: ${text.length.toLocaleString('en')} characters of generated stories, vocab ${tok.vocabSize}, device ${backend.name} (${choice.reason})`,
  );
  out(
    `model: ${config.nLayer} layers, ${config.nHead} heads, width ${config.nEmbd}, context ${T}, ${model.numParameters().toLocaleString('en')} parameters; batch ${B}, ${steps} steps`,
  );

  const lossOf = (batch: { x: Int32Array; y: Int32Array }): Tensor =>
    model.loss(tensor(batch.x, { shape: [B, T], device }), tensor(batch.y, { shape: [B, T], device }));
  const started = performance.now();
  const w = String(steps).length;
  const res = await trainLoop({
    params: model.parameters(),
    setTraining: (on) => model.train(on),
    trainLoss: () => lossOf(trainData.next()),
    evalLoss: () => lossOf(valData.next()),
    tokensPerStep: B * T,
    optimizer,
    schedule,
    steps,
    gradClip: num('grad-clip', 1),
    evalEvery: num('eval-every', 100),
    evalBatches: 8,
    onStep: (r) => {
      const elapsed = (performance.now() - started) / 1000;
      const eta = (elapsed / (r.step + 1)) * (steps - r.step - 1);
      out(
        `step ${String(r.step + 1).padStart(w)}/${steps} | loss ${r.loss.toFixed(4)} | norm ${r.gradNorm.toFixed(3)} | ` +
          `lr ${r.lr.toExponential(2)} | ${r.ms.toFixed(0)} ms | ${Math.round(r.tokensPerSec)} tok/s | eta ${eta.toFixed(0)} s`,
      );
    },
    onEval: (r) => out(`eval at step ${r.step}: val loss ${r.valLoss.toFixed(4)}`),
  });

  const prompt = tok.encode('It was a ');
  const sample = await model.generate(Array.from(prompt), num('sample-chars', 300), {
    temperature: 0.8,
    topK: 10,
    seed,
  });
  out(`\nsample:\n${tok.decode(sample)}\n`);
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  out(
    `done in ${secs} s: final train loss ${res.last?.loss.toFixed(4) ?? '-'}, val loss ${res.lastEval?.valLoss.toFixed(4) ?? '-'} (uniform guess: ${Math.log(tok.vocabSize).toFixed(4)})`,
  );
  return 0;
}
