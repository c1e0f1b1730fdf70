// `loom profile`: builds the same GPT job as `loom train`, warms up, profiles N training steps and prints
// the top kernels by time, host time per phase and the backend counters, saying whether the kernel times
// are GPU timestamps or host timings only. TL_DEBUG=1 adds a line per step, TL_DEBUG=2 its kernels.
import { mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';
import { dirname } from 'node:path';
import { config } from '../core/config.js';
import { TensorloomError } from '../core/errors.js';
import { formatProfile, formatStep, profileSteps, trainStep } from '../train/index.js';
import { helpText, parseArgs, type OptionSpec } from './args.js';
import { DATA_OPTIONS, MODEL_OPTIONS, buildStoriesJob, numberOption } from './gptjob.js';

const OPTIONS = {
  steps: { kind: 'number', help: 'profiled steps (default 10)' },
  warmup: { kind: 'number', help: 'unprofiled steps first: compiles, pool, optimizer state (default 3)' },
  ...MODEL_OPTIONS,
  ...DATA_OPTIONS,
  top: { kind: 'number', help: 'kernel rows to show (default 20)' },
  json: { kind: 'string', help: 'also write the report as JSON to this file' },
  help: { kind: 'boolean', help: 'show this help' },
} satisfies Record<string, OptionSpec>;

const DESCRIPTION =
  'Profiles training steps of the loom train GPT (same options): per-kernel time (GPU timestamps where\n' +
  'the adapter has timestamp-query, else host timings only, said so), host time per phase (forward,\n' +
  'backward, optimizer; a device sync ends each phase while profiling) and counters per step.';

function positiveInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min)
    throw new TensorloomError(`loom profile: --${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** Runs `loom profile`; returns the process exit code. */
export async function profileCommand(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const a = parseArgs('profile', argv, OPTIONS);
  if (a.help) {
    out(helpText('profile', DESCRIPTION, OPTIONS));
    return 0;
  }
  const steps = positiveInt('steps', numberOption(a, 'steps', 10), 1);
  const warmup = positiveInt('warmup', numberOption(a, 'warmup', 3), 0);
  const top = positiveInt('top', numberOption(a, 'top', 20), 1);
  // the LR schedule runs as in a training run of warmup + steps steps (at least past its warmup)
  const job = await buildStoriesJob(a, Math.max(warmup + steps, numberOption(a, 'warmup-steps', 20) + 1));
  const { config: c, model, device } = job;
  out(
    `loom profile: device ${device} (${job.deviceReason}); model ${c.nLayer} layers, ${c.nHead} heads, ` +
      `width ${c.nEmbd}, vocab ${c.vocabSize}, ${model.numParameters().toLocaleString('en')} parameters; ` +
      `batch ${job.batchSize} x ${job.blockSize} tokens`,
  );
  model.train(true);
  const step = trainStep({
    params: model.parameters(),
    loss: () => job.lossOf(job.data.trainSampler.next()),
    optimizer: job.optimizer,
    gradClip: job.gradClip,
  });
  const report = await profileSteps(
    {
      device,
      steps,
      warmup,
      onStep: (s) => {
        if (config.debug >= 2) for (const l of formatStep(s)) out(l);
        else if (config.debug >= 1) out(formatStep(s)[0]!);
      },
    },
    async (ctx, i) => {
      job.optimizer.lr = job.schedule(i);
      await step(ctx, i);
    },
  );
  out('');
  for (const l of formatProfile(report, { top })) out(l);
  const file = a.json as string | undefined;
  if (file !== undefined) {
    const doc = {
      command: 'loom profile',
      date: new Date().toISOString(),
      machine: { platform: platform(), arch: arch(), cpu: cpus()[0]?.model ?? '', cores: cpus().length },
      node: process.versions.node,
      model: c,
      batch: { size: job.batchSize, tokens: job.blockSize },
      report,
    };
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
    out(`wrote ${file}`);
  }
  return 0;
}
