// Command-line parsing: `--key value`, `--key=value` and boolean `--flag`, checked against the
// options a command declares, with a did-you-mean for unknown ones.
import { TensorloomError } from '../core/errors.js';

/** The kind of value an option takes. */
export type OptionKind = 'string' | 'number' | 'boolean';

/** A declared option. */
export interface OptionSpec {
  readonly kind: OptionKind;
  readonly help: string;
  /** Allowed values for string options. */
  readonly choices?: readonly string[];
}

/** Parsed option values by name. */
export type Parsed = Record<string, string | number | boolean>;

/** Levenshtein distance (small strings only). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest known name to `name`, if it is close enough to be a likely typo. */
export function didYouMean(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = distance(name.toLowerCase(), k.toLowerCase());
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** Parses `argv` (without the command name) against `spec`. */
export function parseArgs(
  command: string,
  argv: readonly string[],
  spec: Readonly<Record<string, OptionSpec>>,
): Parsed {
  const out: Parsed = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--'))
      throw new TensorloomError(
        `loom ${command}: unexpected argument '${arg}' (options start with --; see loom ${command} --help)`,
      );
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const opt = spec[name];
    if (!opt) {
      const hint = didYouMean(name, Object.keys(spec));
      throw new TensorloomError(
        `loom ${command}: unknown option --${name}${hint ? ` (did you mean --${hint}?)` : ''}; see loom ${command} --help`,
      );
    }
    let raw: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (opt.kind === 'boolean') {
      if (raw !== undefined && raw !== 'true' && raw !== 'false')
        throw new TensorloomError(`loom ${command}: --${name} takes no value or true/false, got '${raw}'`);
      out[name] = raw !== 'false';
      continue;
    }
    if (raw === undefined) {
      raw = argv[++i];
      if (raw === undefined) throw new TensorloomError(`loom ${command}: --${name} needs a value`);
    }
    if (opt.kind === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n))
        throw new TensorloomError(`loom ${command}: --${name} needs a number, got '${raw}'`);
      out[name] = n;
    } else {
      if (opt.choices && !opt.choices.includes(raw))
        throw new TensorloomError(`loom ${command}: --${name} must be one of ${opt.choices.join(', ')}, got '${raw}'`);
      out[name] = raw;
    }
  }
  return out;
}

/** Formats a command's help text from its description and options. */
export function helpText(command: string, description: string, spec: Readonly<Record<string, OptionSpec>>): string {
  const rows = Object.entries(spec).map(([k, o]) => {
    const arg = o.kind === 'boolean' ? '' : o.choices ? ` <${o.choices.join('|')}>` : ` <${o.kind}>`;
    return [`  --${k}${arg}`, o.help] as const;
  });
  const w = Math.max(...rows.map((r) => r[0].length), 10) + 2;
  return `Usage: loom ${command} [options]\n\n${description}\n\nOptions:\n${rows.map(([a, h]) => a.padEnd(w) + h).join('\n')}\n`;
}
