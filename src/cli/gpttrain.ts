// The `gpt` training task (the default of `loom train`): a GPT language model trained from scratch or
// fine-tuned from a Hugging Face GPT-2 folder, on the generated stories or a `loom prepare` folder, with
// grad accumulation, periodic eval, metrics, crash-safe checkpoints and a self-contained model folder.
import { join } from 'node:path';
import process from 'node:process';
import { TensorloomError } from '../core/errors.js';
import { loadTokenizer, type Tokenizer } from '../data/tokenizer-files.js';
import { getBackend, manualSeed, Generator } from '../tensor/index.js';
import { trainLoop } from '../train/index.js';
import type { OptionSpec, Parsed } from './args.js';
import { resumeJob, saveJobCheckpoint, saveModelFolder, type RunConfig } from './checkpointing.js';
import { preparedData, storiesData, type GptData } from './gptdata.js';
import {
  MODEL_OPTIONS,
  PRECISION_OPTIONS,
  assembleJob,
  buildModel,
  intOption,
  jobDevice,
  jobPrecision,
  numberOption,
  type GptJob,
} from './gptjob.js';
import { metricsFormat, openMetrics, type MetricsWriter } from './metrics.js';
import { COMMON_TRAIN_OPTIONS, clearOldCheckpoints, type TrainTask } from './tasks.js';

const OPTIONS = {
  ...COMMON_TRAIN_OPTIONS,
  out: { kind: 'string', help: 'run folder: checkpoints, OUT/model and OUT/metrics.jsonl (default runs/gpt-stories)' },
  metrics: {
    kind: 'string',
    help: 'metrics file, .jsonl or .csv: one record per step and eval (default OUT/metrics.jsonl)',
  },
  steps: { kind: 'number', help: 'optimizer steps (default 400)' },
  data: {
    kind: 'string',
    help: 'a loom prepare folder (train.bin, val.bin, its tokenizer); default: generated stories, char tokens',
  },
  stories: { kind: 'number', help: 'stories in the generated corpus when there is no --data (default 4000)' },
  'init-from': {
    kind: 'string',
    help: 'fine-tune a Hugging Face GPT-2 folder (config.json + model.safetensors): architecture from there',
  },
  ...MODEL_OPTIONS,
  ...PRECISION_OPTIONS,
  'grad-accum': { kind: 'number', help: 'micro-batches per optimizer step (default 1): batch-size x this per step' },
  'eval-every': { kind: 'number', help: 'held-out loss every N steps and at the end, 0 for never (default 100)' },
  'eval-batches': { kind: 'number', help: 'batches per held-out loss (default 8)' },
  'sample-chars': { kind: 'number', help: 'tokens to sample after training, 0 for none (default 300)' },
} satisfies Record<string, OptionSpec>;

const DESCRIPTION =
  'gpt: trains a GPT language model, by default a small one on procedurally generated stories (no\n' +
  'downloads, character tokens); --data trains on a loom prepare folder, --init-from fine-tunes GPT-2.\n' +
  'Logs one line per step (step, loss, grad norm, lr, ms, tokens/s, ETA), a held-out loss every\n' +
  '--eval-every steps, then a sample; saves checkpoints and OUT/model for loom generate.';

/** Metrics columns: step records fill loss..tokens_per_sec, eval records val_loss. */
const METRIC_COLUMNS = ['kind', 'step', 'loss', 'val_loss', 'grad_norm', 'lr', 'ms', 'tokens_per_sec', 'elapsed_s'];

/** The data the options ask for (checked now: an empty corpus or a block size that does not fit). */
async function openData(a: Parsed, seed: number, B: number, T: number, initFrom?: string): Promise<GptData> {
  const dir = a.data as string | undefined;
  if (dir !== undefined) return preparedData(dir, seed, B, T);
  // fine-tuning on the stories: tokenized as the pretrained model was (its folder's tokenizer)
  let tok: Tokenizer | undefined;
  if (initFrom !== undefined) {
    try {
      tok = loadTokenizer(initFrom);
    } catch (e) {
      throw new TensorloomError(
        `loom train: --init-from ${initFrom} without --data tokenizes the generated stories with the model's tokenizer: ${(e as Error).message}`,
      );
    }
  }
  return storiesData(intOption(a, 'stories', 4000, 1), seed, B, T, tok);
}

async function run(a: Parsed, out: (s: string) => void): Promise<number> {
  // every option is read and checked, the data opened and the model built before anything is written
  const steps = intOption(a, 'steps', 400, 1);
  const seed = numberOption(a, 'seed', 1337);
  const B = intOption(a, 'batch-size', 16, 1);
  const T = intOption(a, 'block-size', 64, 1);
  const accum = intOption(a, 'grad-accum', 1, 1);
  const warmup = intOption(a, 'warmup-steps', 20, 0);
  if (warmup >= steps)
    throw new TensorloomError(`loom train: --warmup-steps ${warmup} must be less than --steps ${steps}`);
  const every = intOption(a, 'checkpoint-every', 100, 1);
  const evalEvery = intOption(a, 'eval-every', 100, 0);
  const evalBatches = intOption(a, 'eval-batches', 8, 1);
  const sampleTokens = intOption(a, 'sample-chars', 300, 0);
  const outDir = (a.out as string | undefined) ?? join('runs', 'gpt-stories');
  const metricsPath = (a.metrics as string | undefined) ?? join(outDir, 'metrics.jsonl');
  metricsFormat(metricsPath);
  const initFrom = a['init-from'] as string | undefined;
  const resume = a.resume === true;
  const { device, reason } = await jobDevice(a);
  const { precision, reason: precisionReason } = jobPrecision(a, device);
  manualSeed(seed);

  const data = await openData(a, seed, B, T, initFrom);
  let job: GptJob;
  try {
    const generator = new Generator(seed);
    const model = await buildModel(a, data.tokenizer.vocabSize, T, device, generator, initFrom);
    job = assembleJob(a, steps, { data, model, generator, device, deviceReason: reason, seed, precision });
  } catch (e) {
    await data.close();
    throw e;
  }
  try {
    return await train(
      job,
      {
        steps,
        accum,
        every,
        evalEvery,
        evalBatches,
        sampleTokens,
        outDir,
        metricsPath,
        initFrom,
        resume,
        precisionReason,
      },
      out,
    );
  } finally {
    await data.close();
  }
}

interface RunSettings {
  steps: number;
  accum: number;
  every: number;
  evalEvery: number;
  evalBatches: number;
  sampleTokens: number;
  outDir: string;
  metricsPath: string;
  initFrom: string | undefined;
  resume: boolean;
  /** Why the job's precision (requested, or what auto found). */
  precisionReason: string;
}

async function train(job: GptJob, s: RunSettings, out: (s: string) => void): Promise<number> {
  const { model, config, data, seed, batchSize: B, blockSize: T } = job;
  const { steps, outDir } = s;
  out(
    `loom train: ${data.summary}, device ${getBackend(job.device).name} (${job.deviceReason}), ` +
      `precision ${job.precision} (${s.precisionReason})`,
  );
  out(
    `model: ${config.nLayer} layers, ${config.nHead} heads, width ${config.nEmbd}, context ${T}, ` +
      `${model.numParameters().toLocaleString('en')} parameters${s.initFrom ? ` from ${s.initFrom}` : ''}; ` +
      `batch ${B}${s.accum > 1 ? ` x ${s.accum} micro-batches` : ''}, ${steps} steps`,
  );
  const evalEvery = data.val ? s.evalEvery : 0;
  if (!data.val && s.evalEvery > 0) out(`note: no held-out loss: ${data.noValReason ?? 'no val split'}`);

  // everything a resumed run must share with the run it continues
  const runConfig: RunConfig = {
    model: { ...config },
    data: data.identity,
    initFrom: s.initFrom ?? null,
    batchSize: B,
    gradAccum: s.accum,
    steps,
    seed,
    ...job.hyper,
    gradClip: job.gradClip,
    // only mixed runs record it, so float32 checkpoints written before the option existed still resume
    ...(job.precision === 'f16' ? { precision: job.precision } : {}),
  };
  const startStep = s.resume ? await resumeJob(outDir, job, runConfig, out) : 0;
  if (!s.resume) clearOldCheckpoints(outDir, out);
  const metrics: MetricsWriter = openMetrics(s.metricsPath, {
    columns: METRIC_COLUMNS,
    // a crashed run may have logged past its last checkpoint; the eval at the resume step runs again
    ...(s.resume
      ? { keep: (r) => (r.kind === 'eval' ? Number(r.step) < startStep : Number(r.step) <= startStep) }
      : {}),
  });
  const modelDir = join(outDir, 'model');
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    out('SIGINT: finishing the current step, then saving a checkpoint');
  };
  process.on('SIGINT', onSigint);

  const started = performance.now();
  const elapsed = (): number => (performance.now() - started) / 1000;
  const w = String(steps).length;
  let res: Awaited<ReturnType<typeof trainLoop>>;
  try {
    res = await trainLoop({
      startStep,
      shouldStop: () => interrupted,
      params: model.parameters(),
      ...(job.scaler ? { scaler: job.scaler } : {}),
      setTraining: (on) => model.train(on),
      nextBatch: () => data.train.next(),
      nextEvalBatch: () => data.val!.next(),
      trainLoss: (batch) => job.lossOf(batch),
      evalLoss: (batch) => job.lossOf(batch),
      tokensPerStep: B * T * s.accum,
      gradAccum: s.accum,
      optimizer: job.optimizer,
      schedule: job.schedule,
      steps,
      gradClip: job.gradClip,
      evalEvery,
      evalBatches: s.evalBatches,
      onStep: async (r) => {
        // yield to the event loop so a SIGINT is seen after this step: on the CPU the step's read resolves
        // as a microtask, and without this the handler would wait for the next checkpoint's file I/O
        await new Promise<void>((resolve) => setImmediate(resolve));
        const done = r.step + 1;
        const eta = (elapsed() / (done - startStep)) * (steps - done);
        out(
          `step ${String(done).padStart(w)}/${steps} | loss ${r.loss.toFixed(4)} | norm ${r.gradNorm.toFixed(3)} | ` +
            `lr ${r.lr.toExponential(2)} | ${r.ms.toFixed(0)} ms | ${Math.round(r.tokensPerSec)} tok/s | eta ${eta.toFixed(0)} s` +
            (r.lossScale !== undefined
              ? ` | scale ${r.lossScale}${r.skipped ? ' (inf/NaN grads: step skipped)' : ''}`
              : ''),
        );
        metrics.write({
          kind: 'step',
          step: done,
          loss: r.loss,
          grad_norm: r.gradNorm,
          lr: r.lr,
          ms: Number(r.ms.toFixed(3)),
          tokens_per_sec: Math.round(r.tokensPerSec),
          elapsed_s: Number(elapsed().toFixed(3)),
        });
        if (done % s.every === 0 || done === steps || interrupted) {
          const ck = await saveJobCheckpoint(outDir, job, done, runConfig);
          await saveModelFolder(modelDir, job);
          out(`checkpoint ${ck}`);
        }
      },
      onEval: (r) => {
        out(`eval at step ${r.step}: val loss ${r.valLoss.toFixed(4)}`);
        metrics.write({ kind: 'eval', step: r.step, val_loss: r.valLoss, elapsed_s: Number(elapsed().toFixed(3)) });
      },
    });
  } finally {
    process.off('SIGINT', onSigint);
    metrics.close();
  }
  if (interrupted) return 130;

  if (s.sampleTokens > 0) {
    const prompt = data.tokenizer.encode('It was a ');
    const sample = await model.generate(Array.from(prompt), s.sampleTokens, { temperature: 0.8, topK: 10, seed });
    out(`\nsample:\n${data.tokenizer.decode(sample)}\n`);
  }
  if (startStep >= steps) await saveModelFolder(modelDir, job); // resumed a finished run: nothing saved it yet
  out(
    `done in ${elapsed().toFixed(1)} s: final train loss ${res.last?.loss.toFixed(4) ?? '-'}, val loss ${res.lastEval?.valLoss.toFixed(4) ?? '-'} (uniform guess: ${Math.log(data.tokenizer.vocabSize).toFixed(4)})`,
  );
  out(`metrics: ${s.metricsPath}`);
  out(`sample with: loom generate --model ${modelDir}`);
  return 0;
}

/** The GPT language-model task. */
export const gptTask: TrainTask = {
  name: 'gpt',
  description: DESCRIPTION,
  options: OPTIONS,
  run,
};
