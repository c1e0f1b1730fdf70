// Checkpoints of the GPT training task: what a checkpoint records about the run (model and optimizer
// state, the data position of both splits, RNG states, the loss scaler of f16 runs, the config) and how
// `--resume` restores it exactly; and the self-contained model folder (HF weights + tokenizer) that
// `loom generate --model` reads.
import { readFileSync } from 'node:fs';
import { TensorloomError } from '../core/errors.js';
import { loadLatestCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import type { AdamOptions, GradScalerState, OptimizerStateDict } from '../optim/index.js';
import { saveTokenizer } from '../data/tokenizer-files.js';
import { saveGPT2 } from '../models/gpt2/index.js';
import { defaultGenerator } from '../tensor/index.js';
import type { GptJob } from './gptjob.js';

/** The settings a resumed run must share with the run that wrote the checkpoint. */
export type RunConfig = Record<string, unknown>;

/** The tensorloom version (from package.json; 'unknown' when it cannot be read). */
function version(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'tensorloom' && pkg.version) return pkg.version;
    } catch {
      // try the next layout (src/ under tsx, dist/src/ when built)
    }
  }
  return 'unknown';
}

/** Saves the job's state after `step` completed steps into `dir`; returns the checkpoint folder. */
export async function saveJobCheckpoint(dir: string, job: GptJob, step: number, config: RunConfig): Promise<string> {
  const opt = job.optimizer.stateDict();
  return saveCheckpoint(
    dir,
    {
      step,
      model: job.model.stateDict(),
      optimizer: { state: opt.state, paramGroups: opt.paramGroups },
      extra: {
        config,
        data: { train: job.data.train.getState(), val: job.data.val?.getState() ?? null },
        rng: { default: defaultGenerator.getState(), model: job.generator.getState() },
        // the loss scale and its growth count: a resumed f16 run continues the same schedule
        scaler: job.scaler?.stateDict() ?? null,
      },
    },
    { version: version() },
  );
}

/** Differences between two JSON-like values, as `path: saved vs now` lines. */
function differences(saved: unknown, now: unknown, path: string, out: string[]): void {
  if (typeof saved === 'object' && saved !== null && typeof now === 'object' && now !== null) {
    const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
    for (const k of keys) {
      differences(
        (saved as Record<string, unknown>)[k],
        (now as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
        out,
      );
    }
  } else if (saved !== now) {
    out.push(`${path}: ${JSON.stringify(saved)} in the checkpoint, ${JSON.stringify(now)} now`);
  }
}

/** Writes the trained model as a self-contained folder `dir`: HF GPT-2 weights + config, and the tokenizer. */
export async function saveModelFolder(dir: string, job: GptJob): Promise<void> {
  await saveGPT2(job.model, dir);
  saveTokenizer(dir, job.data.tokenizer);
}

/**
 * Restores the newest usable checkpoint in `dir` into `job` (model, optimizer, data positions, RNGs) and
 * returns the step to continue from. Refuses a checkpoint whose config differs from `config`.
 */
export async function resumeJob(
  dir: string,
  job: GptJob,
  config: RunConfig,
  log: (s: string) => void,
): Promise<number> {
  const ck = await loadLatestCheckpoint(dir, { device: job.device, log });
  if (!ck) throw new TensorloomError(`--resume: no checkpoint found in ${dir}`);
  try {
    const diffs: string[] = [];
    differences(ck.extra.config, config, '', diffs);
    if (diffs.length) {
      throw new TensorloomError(
        `--resume: ${ck.path} was written by a run with a different config; refusing it:\n  ${diffs.join('\n  ')}`,
      );
    }
    const extra = ck.extra as {
      data?: { train: unknown; val: unknown };
      scaler?: GradScalerState | null;
      rng: {
        default: ReturnType<typeof defaultGenerator.getState>;
        model: ReturnType<typeof defaultGenerator.getState>;
      };
    };
    job.model.loadStateDict(ck.model);
    job.optimizer.loadStateDict(ck.optimizer as unknown as OptimizerStateDict<AdamOptions>);
    if (job.scaler) {
      // the config check above guarantees an f16 checkpoint here
      if (!extra.scaler) throw new TensorloomError(`--resume: ${ck.path} records no loss-scaler state`);
      job.scaler.loadStateDict(extra.scaler);
    }
    if (!extra.data) throw new TensorloomError(`--resume: ${ck.path} records no data position`);
    job.data.train.setState(extra.data.train);
    if (job.data.val && extra.data.val !== null) job.data.val.setState(extra.data.val);
    defaultGenerator.setState(extra.rng.default);
    job.generator.setState(extra.rng.model);
    log(`resumed from ${ck.path} at step ${ck.step}`);
    return ck.step;
  } finally {
    for (const t of ck.model.values()) t.dispose();
    for (const st of Object.values(ck.optimizer.state)) for (const t of Object.values(st.tensors)) t.dispose();
  }
}
