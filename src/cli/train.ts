// `loom train`: trains a small GPT on a corpus the project generates itself (procedural stories,
// character tokens), logs one line per step, evaluates on held-out text and prints a sample.
import { getBackend } from '../tensor/index.js';
import { trainLoop } from '../train/index.js';
import { helpText, parseArgs, type OptionSpec } from './args.js';
import { TensorloomError } from '../core/errors.js';
import { resumeJob, saveJobCheckpoint, type RunConfig } from './checkpointing.js';
import { DATA_OPTIONS, MODEL_OPTIONS, buildGptJob } from './gptjob.js';

const OPTIONS = {
  steps: { kind: 'number', help: 'optimizer steps (default 400)' },
  ...MODEL_OPTIONS,
  'eval-every': { kind: 'number', help: 'evaluate on held-out text every N steps (default 100)' },
  ...DATA_OPTIONS,
  'sample-chars': { kind: 'number', help: 'characters to sample after training (default 300)' },
  out: { kind: 'string', help: 'folder for checkpoints (default: none are written)' },
  'checkpoint-every': { kind: 'number', help: 'checkpoint every N steps, and at the end and on SIGINT (default 100)' },
  resume: { kind: 'boolean', help: 'continue the run from the latest complete checkpoint in --out' },
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
  const steps = num('steps', 400);
  const outDir = a.out as string | undefined;
  const every = num('checkpoint-every', 100);
  if (a.resume && !outDir) throw new TensorloomError('train: --resume needs --out DIR (the folder to resume from)');
  if (!Number.isInteger(every) || every < 1)
    throw new TensorloomError('train: --checkpoint-every must be a positive integer');
  const job = await buildGptJob(a, steps);
  const { device, seed, text, tok, trainData, valData, config, model, optimizer, schedule, lossOf } = job;
  const B = job.batchSize;
  const T = job.blockSize;

  const backend = getBackend(device);
  out(
    `loom train: ${text.length.toLocaleString('en')} characters of generated stories, vocab ${tok.vocabSize}, device ${backend.name} (${job.deviceReason})`,
  );
  out(
    `model: ${config.nLayer} layers, ${config.nHead} heads, width ${config.nEmbd}, context ${T}, ${model.numParameters().toLocaleString('en')} parameters; batch ${B}, ${steps} steps`,
  );

  // everything a resumed run must share with the run it continues
  const runConfig: RunConfig = {
    model: { ...config },
    batchSize: B,
    steps,
    seed,
    stories: num('stories', 4000),
    lr: num('lr', 3e-3),
    minLr: num('min-lr', 3e-4),
    warmupSteps: num('warmup-steps', 20),
    weightDecay: num('weight-decay', 0.1),
    gradClip: job.gradClip,
  };
  const startStep = a.resume && outDir ? await resumeJob(outDir, job, runConfig, out) : 0;
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    out('SIGINT: finishing the current step' + (outDir ? ', then saving a checkpoint' : ''));
  };
  process.on('SIGINT', onSigint);

  const started = performance.now();
  const w = String(steps).length;
  const res = await trainLoop({
    startStep,
    shouldStop: () => interrupted,
    params: model.parameters(),
    setTraining: (on) => model.train(on),
    trainLoss: () => lossOf(trainData.next()),
    evalLoss: () => lossOf(valData.next()),
    tokensPerStep: B * T,
    optimizer,
    schedule,
    steps,
    gradClip: job.gradClip,
    evalEvery: num('eval-every', 100),
    evalBatches: 8,
    onStep: async (r) => {
      const elapsed = (performance.now() - started) / 1000;
      const eta = (elapsed / (r.step + 1 - startStep)) * (steps - r.step - 1);
      out(
        `step ${String(r.step + 1).padStart(w)}/${steps} | loss ${r.loss.toFixed(4)} | norm ${r.gradNorm.toFixed(3)} | ` +
          `lr ${r.lr.toExponential(2)} | ${r.ms.toFixed(0)} ms | ${Math.round(r.tokensPerSec)} tok/s | eta ${eta.toFixed(0)} s`,
      );
      const done = r.step + 1;
      if (outDir && (done % every === 0 || done === steps || interrupted)) {
        out(`checkpoint ${await saveJobCheckpoint(outDir, job, done, runConfig)}`);
      }
    },
    onEval: (r) => out(`eval at step ${r.step}: val loss ${r.valLoss.toFixed(4)}`),
  }).finally(() => process.off('SIGINT', onSigint));
  if (interrupted) return 130;

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
