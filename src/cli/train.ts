// `loom train [--config FILE] [overrides]`: reads the config file (JSON whose keys are the task's option
// names, plus "task" and "description"), checks every key and value against the task's options, lets
// command-line flags override it, and runs the task (default: gpt, the small GPT on generated stories).
import { readFileSync } from 'node:fs';
import { TensorloomError } from '../core/errors.js';
import { didYouMean, helpText, parseArgs, type OptionSpec, type Parsed } from './args.js';
import { getTrainTask, trainTaskNames, type TrainTask } from './tasks.js';

/** The task used when neither --task nor a config file's "task" names one. */
export const DEFAULT_TRAIN_TASK = 'gpt';

/** Config keys that are documentation or selection, not options. */
const META_KEYS = ['task', 'description'];
/** Options that only make sense on the command line. */
const CLI_ONLY = ['config', 'help'];

/** The option `loom train` adds to every task's: which task. */
function taskOption(): OptionSpec {
  return {
    kind: 'string',
    choices: trainTaskNames(),
    help: `training task: ${trainTaskNames().join(', ')} (default ${DEFAULT_TRAIN_TASK}; a config file sets it with "task")`,
  };
}

/** A validated config file: its task and option values. */
export interface TrainConfig {
  readonly task: TrainTask;
  readonly values: Parsed;
  readonly description?: string;
}

/** Reads `file` as a JSON object; errors name the file. */
function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TensorloomError(`loom train: cannot read --config ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TensorloomError(`loom train: config ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new TensorloomError(`loom train: config ${file} must hold a JSON object of option names to values`);
  return raw as Record<string, unknown>;
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/**
 * Checks the config object `raw` (read from `file`) against `task`'s options: every key must be an option
 * (a did-you-mean for typos) or "task"/"description", every value of the option's kind (and among its
 * choices). Returns the option values.
 */
export function validateConfig(raw: Readonly<Record<string, unknown>>, task: TrainTask, file: string): Parsed {
  const values: Parsed = {};
  const known = Object.keys(task.options).filter((k) => !CLI_ONLY.includes(k));
  for (const [key, v] of Object.entries(raw)) {
    if (META_KEYS.includes(key)) {
      if (typeof v !== 'string')
        throw new TensorloomError(`loom train: config ${file}: "${key}" must be a string, got ${kindOf(v)}`);
      continue;
    }
    if (CLI_ONLY.includes(key))
      throw new TensorloomError(`loom train: config ${file}: "${key}" is a command-line flag, not a config key`);
    const spec = task.options[key];
    if (!spec) {
      const hint = didYouMean(key, [...known, ...META_KEYS]);
      throw new TensorloomError(
        `loom train: config ${file}: unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; ` +
          `see loom train --task ${task.name} --help for the keys of the ${task.name} task`,
      );
    }
    const ok = spec.kind === 'number' ? typeof v === 'number' && Number.isFinite(v) : typeof v === spec.kind;
    if (!ok)
      throw new TensorloomError(
        `loom train: config ${file}: "${key}" must be a ${spec.kind}, got ${kindOf(v)} ${JSON.stringify(v)}`,
      );
    if (spec.choices && !spec.choices.includes(v as string))
      throw new TensorloomError(
        `loom train: config ${file}: "${key}" must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(v)}`,
      );
    values[key] = v as string | number | boolean;
  }
  return values;
}

/** Reads and validates config `file`; `taskOverride` (a --task flag) wins over the file's "task". */
export async function loadTrainConfig(file: string, taskOverride?: string): Promise<TrainConfig> {
  const raw = readJsonObject(file);
  const named = raw.task;
  if (named !== undefined && typeof named !== 'string')
    throw new TensorloomError(`loom train: config ${file}: "task" must be a string, got ${kindOf(named)}`);
  const task = await getTrainTask(
    taskOverride ?? named ?? DEFAULT_TRAIN_TASK,
    taskOverride !== undefined ? '--task' : `config ${file}`,
  );
  const description = typeof raw.description === 'string' ? raw.description : undefined;
  return { task, values: validateConfig(raw, task, file), ...(description ? { description } : {}) };
}

/** The value of `--name V` / `--name=V` in `argv` (before the task, hence its full options, is known). */
function peekFlag(argv: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === `--${name}`) found = argv[++i];
    else if (arg.startsWith(`--${name}=`)) found = arg.slice(name.length + 3);
  }
  return found;
}

/** Runs `loom train`; returns the process exit code. */
export async function trainCommand(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const file = peekFlag(argv, 'config');
  const taskFlag = peekFlag(argv, 'task');
  const wantsHelp = argv.includes('--help');
  let config: TrainConfig | undefined;
  let task: TrainTask;
  if (file !== undefined && !wantsHelp) {
    config = await loadTrainConfig(file, taskFlag);
    task = config.task;
  } else if (file !== undefined) {
    // help for the config's task, even when the rest of the file has a problem
    const named = readJsonObject(file).task;
    task = await getTrainTask(taskFlag ?? (typeof named === 'string' ? named : DEFAULT_TRAIN_TASK), `config ${file}`);
  } else {
    task = await getTrainTask(taskFlag ?? DEFAULT_TRAIN_TASK);
  }
  // --task right after --config in the help, then the task's own options
  const spec: Record<string, OptionSpec> = { config: task.options.config!, task: taskOption(), ...task.options };
  const cli = parseArgs('train', argv, spec);
  if (cli.help) {
    const intro =
      `${task.description}\n\n` +
      'A config file (--config FILE, JSON) holds any of these options by name (without the --), plus\n' +
      `"task" (${trainTaskNames().join(', ')}; default ${DEFAULT_TRAIN_TASK}) and "description"; ` +
      'flags given with it override its values.\n' +
      `loom train --task NAME --help lists the options of another task.${file !== undefined ? `\nConfig: ${file}` : ''}`;
    out(helpText('train', intro, spec));
    return 0;
  }
  const merged: Parsed = { ...(config?.values ?? {}), ...cli };
  delete merged.config;
  delete merged.task;
  return task.run(merged, out);
}
