// The training tasks `loom train` can run (a GPT language model, a CNN, ...): what a task declares
// (its options, help and run function), the options every task shares, and the registry by name.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TensorloomError } from '../core/errors.js';
import { didYouMean, type OptionSpec, type Parsed } from './args.js';

/** A training task: `loom train --task NAME` (or `"task": NAME` in a config file) runs it. */
export interface TrainTask {
  readonly name: string;
  /** One paragraph for `loom train --help`. */
  readonly description: string;
  /** Every option the task accepts (COMMON_TRAIN_OPTIONS included), in help order. */
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Runs the task with the merged config-file + command-line options; resolves with the exit code. */
  run(opts: Parsed, out: (s: string) => void): Promise<number>;
}

/** The options every training task accepts (the task decides the defaults of out and seed). */
export const COMMON_TRAIN_OPTIONS = {
  config: { kind: 'string', help: 'JSON config file: its keys are these option names (+ "task"); flags override it' },
  device: {
    kind: 'string',
    choices: ['auto', 'cpu', 'webgpu'],
    help: 'device to train on (default auto: a hardware GPU if found, else cpu)',
  },
  seed: { kind: 'number', help: 'seed for data order, init and sampling (default 1337)' },
  out: { kind: 'string', help: 'run folder: checkpoints, the trained model and metrics (default runs/<task>)' },
  'checkpoint-every': { kind: 'number', help: 'checkpoint every N steps, and at the end and on SIGINT (default 100)' },
  resume: { kind: 'boolean', help: 'continue the run from the latest complete checkpoint in --out' },
  metrics: { kind: 'string', help: 'also write one record per step and eval to this .jsonl or .csv file' },
  help: { kind: 'boolean', help: "show this help (with --config: the options of that config's task)" },
} satisfies Record<string, OptionSpec>;

/**
 * The registered tasks by name, each loaded on first use: a task module imports this file for its
 * types and common options, so the registry reaches it through a dynamic import (no import cycle, and
 * `loom train` loads only the task it runs).
 */
const TASKS: Readonly<Record<string, () => Promise<TrainTask>>> = {
  gpt: async () => (await import('./gpttrain.js')).gptTask,
  cnn: async () => (await import('./cnntrain.js')).cnnTask,
};

/** The names of the registered tasks. */
export function trainTaskNames(): string[] {
  return Object.keys(TASKS);
}

/** Loads the task called `name`; an unknown name is an error naming `where` (the flag or file) with a did-you-mean. */
export async function getTrainTask(name: string, where = '--task'): Promise<TrainTask> {
  const load = TASKS[name];
  if (!load) {
    const hint = didYouMean(name, Object.keys(TASKS));
    throw new TensorloomError(
      `loom train: unknown task '${name}' in ${where}${hint ? ` (did you mean '${hint}'?)` : ''}; tasks: ${Object.keys(TASKS).join(', ')}`,
    );
  }
  return load();
}

/**
 * Removes the checkpoints of an earlier run from the run folder `dir` before a fresh (not resumed) run
 * writes its own: checkpoint rotation keeps the highest step numbers, so a stale step-400 would otherwise
 * outlive the new run's step-100. Says so through `out` when there was anything to remove.
 */
export function clearOldCheckpoints(dir: string, out: (s: string) => void): void {
  if (!existsSync(dir)) return;
  const old = readdirSync(dir).filter((n) => /^(step|tmp)-\d+$/.test(n) || n === 'latest');
  if (!old.length) return;
  for (const n of old) rmSync(join(dir, n), { recursive: true, force: true });
  out(`note: ${dir} held checkpoints of an earlier run; they are replaced (--resume continues a run instead)`);
}
