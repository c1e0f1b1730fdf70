// `loom train` task "cnn": trains a small ResNet on procedurally drawn shape images (no downloads),
// one log line per step (step, loss, acc, lr, ms, images/s), held-out accuracy every --eval-every steps
// and at the end, crash-safe checkpoints (--out, --checkpoint-every, --resume, SIGINT) and metrics.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { crossEntropy } from '../nn/functional.js';
import { imageBatchAt, type HostImageBatch } from '../data/index.js';
import '../autograd/index.js';
import { getBackend, noGrad, stack, tensor, tidy, type Tensor } from '../tensor/index.js';
import { TensorloomError } from '../core/errors.js';
import { CNN_OPTIONS, buildCnnJob, resumeCnnJob, saveCnnCheckpoint, type CnnJob } from './cnnjob.js';
import { openMetrics, type MetricsWriter } from './metrics.js';
import type { OptionSpec, Parsed } from './args.js';
import { COMMON_TRAIN_OPTIONS, type TrainTask } from './tasks.js';

const OPTIONS = {
  ...COMMON_TRAIN_OPTIONS,
  out: { kind: 'string', help: 'run folder: checkpoints and OUT/metrics.jsonl (default runs/cnn-shapes)' },
  metrics: {
    kind: 'string',
    help: 'metrics file, .jsonl or .csv: one record per step and eval (default OUT/metrics.jsonl)',
  },
  ...CNN_OPTIONS,
} satisfies Record<string, OptionSpec>;

/** Images per evaluation batch (the held-out split is read in order, in batches of this size). */
const EVAL_BATCH = 200;

/** The loss and the number of correct predictions of `model` on one host batch, as device scalars. */
function lossAndCorrect(job: CnnJob, batch: HostImageBatch): { loss: Tensor; correct: Tensor } {
  const x = tensor(batch.x, { shape: batch.shape, device: job.device }); // (B, C, H, W): one upload
  const y = tensor(batch.y, { shape: [batch.y.length], device: job.device }); // (B)
  const logits = job.model.forward(x); // (B, classes)
  const correct = noGrad(() => logits.argmax(1).eq(y).cast('float32').sum());
  return { loss: crossEntropy(logits, y), correct };
}

/** Accuracy and mean loss on the whole held-out split, in eval mode; one host read. */
async function evaluate(job: CnnJob): Promise<{ acc: number; loss: number }> {
  job.model.eval();
  const n = job.test.count;
  const sums = noGrad(() =>
    tidy(() => {
      const parts: Tensor[] = [];
      for (let start = 0; start < n; start += EVAL_BATCH) {
        const batch = imageBatchAt(job.test, start, Math.min(EVAL_BATCH, n - start));
        const { loss, correct } = lossAndCorrect(job, batch);
        parts.push(stack([loss.mul(batch.y.length), correct]));
      }
      return stack(parts).sum(0); // (2): loss sum, correct count
    }),
  );
  const [lossSum, correct] = await sums.toArray();
  sums.dispose();
  job.model.train();
  return { acc: correct! / n, loss: lossSum! / n };
}

/** Clears the checkpoints of an earlier run in `dir`, so the newest-N rotation never keeps a stale one. */
function clearOldRun(dir: string, out: (s: string) => void): void {
  if (!existsSync(dir)) return;
  const old = readdirSync(dir).filter((n) => /^(step|tmp)-\d+$/.test(n) || n === 'latest');
  if (!old.length) return;
  for (const n of old) rmSync(join(dir, n), { recursive: true, force: true });
  out(`note: ${dir} held checkpoints of an earlier run; they are replaced (--resume continues a run instead)`);
}

/** Runs the task with merged config-file and command-line options; resolves with the exit code. */
async function runCnn(a: Parsed, out: (s: string) => void): Promise<number> {
  const fail = (msg: string): never => {
    throw new TensorloomError(`loom train (cnn): ${msg}`);
  };
  const outDir = (a.out as string | undefined) ?? join('runs', 'cnn-shapes');
  const metricsPath = (a.metrics as string | undefined) ?? join(outDir, 'metrics.jsonl');
  const every = (a['checkpoint-every'] as number | undefined) ?? 100;
  if (!Number.isInteger(every) || every < 1) fail(`--checkpoint-every must be a positive integer, got ${every}`);
  const evalEvery = (a['eval-every'] as number | undefined) ?? 100;
  if (!Number.isInteger(evalEvery) || evalEvery < 0) fail(`--eval-every must be an integer >= 0, got ${evalEvery}`);
  const resume = a.resume === true;
  const job = await buildCnnJob(a);
  const { config, model, optimizer, schedule, sampler } = job;
  const { steps, batchSize: B, data: d } = config;
  const backend = getBackend(job.device);
  out(
    `loom train cnn: ${d.train} + ${d.test} generated ${d.size}x${d.size}x${d.channels} shape images, ${d.classes} classes, device ${backend.name} (${job.deviceReason})`,
  );
  out(
    `model: ResNet widths [${config.model.widths.join(', ')}] blocks [${config.model.blocks.join(', ')}], ` +
      `${model.numParameters().toLocaleString('en')} parameters; ${config.optimizer} lr ${config.lr}, batch ${B}, ${steps} steps`,
  );
  const startStep = resume ? await resumeCnnJob(outDir, job, out) : 0;
  if (!resume) clearOldRun(outDir, out);
  const metrics: MetricsWriter = openMetrics(metricsPath, {
    columns: ['kind', 'step', 'loss', 'acc', 'lr', 'ms', 'images_per_s'],
    // a crashed run may have logged past its last checkpoint; the eval at the resume step runs again
    ...(resume ? { keep: (r) => (r.kind === 'eval' ? Number(r.step) < startStep : Number(r.step) <= startStep) } : {}),
  });
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    out('SIGINT: finishing the current step, then saving a checkpoint');
  };
  process.on('SIGINT', onSigint);
  const started = performance.now();
  const w = String(steps).length;
  let last: { loss: number; acc: number } | undefined;
  let lastEval: { acc: number; loss: number } | undefined;
  const runEval = async (step: number): Promise<void> => {
    lastEval = await evaluate(job);
    out(`eval at step ${step}: test accuracy ${(100 * lastEval.acc).toFixed(1)}%, loss ${lastEval.loss.toFixed(4)}`);
    metrics.write({ kind: 'eval', step, loss: lastEval.loss, acc: lastEval.acc });
  };
  try {
    model.train();
    for (let step = startStep; step < steps; step++) {
      if (evalEvery > 0 && step > startStep && step % evalEvery === 0) await runEval(step);
      const lr = schedule(step);
      optimizer.lr = lr;
      const t0 = performance.now();
      const batch = sampler.next();
      const logged = tidy(() => {
        const { loss, correct } = lossAndCorrect(job, batch);
        loss.backward();
        optimizer.step();
        optimizer.zeroGrad();
        return noGrad(() => stack([loss, correct]));
      });
      const [loss, correct] = await logged.toArray(); // the step's one sync point
      logged.dispose();
      // yield to the event loop so a SIGINT is seen now: on the CPU the read resolves as a microtask
      await new Promise<void>((resolve) => setImmediate(resolve));
      const ms = performance.now() - t0;
      last = { loss: loss!, acc: correct! / B };
      const ips = (B / ms) * 1000;
      out(
        `step ${String(step + 1).padStart(w)}/${steps} | loss ${last.loss.toFixed(4)} | acc ${last.acc.toFixed(3)} | ` +
          `lr ${lr.toExponential(2)} | ${ms.toFixed(0)} ms | ${ips.toFixed(0)} images/s`,
      );
      metrics.write({ kind: 'step', step: step + 1, loss: last.loss, acc: last.acc, lr, ms, images_per_s: ips });
      const done = step + 1;
      if (done % every === 0 || done === steps || interrupted)
        out(`checkpoint ${await saveCnnCheckpoint(outDir, job, done)}`);
      if (interrupted) return 130;
    }
    if (evalEvery > 0 && steps > startStep) await runEval(steps);
  } finally {
    process.off('SIGINT', onSigint);
    metrics.close();
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  out(
    `done in ${secs} s: final train loss ${last?.loss.toFixed(4) ?? '-'}, test accuracy ` +
      `${lastEval ? `${(100 * lastEval.acc).toFixed(1)}%` : '-'} (chance ${(100 / d.classes).toFixed(1)}%)`,
  );
  return 0;
}

/** The "cnn" training task: a small ResNet on generated shape images. */
export const cnnTask: TrainTask = {
  name: 'cnn',
  description:
    'Trains a small ResNet to classify procedurally drawn shape images (no downloads), printing one line per\n' +
    'step (step, loss, acc, lr, ms, images/s) and the held-out accuracy every --eval-every steps and at the end.',
  options: OPTIONS,
  run: runCnn,
};
