// The `loom` command line: dispatches to the subcommands and turns errors into one clear line.
import process from 'node:process';
import { TensorloomError } from '../core/errors.js';
import type { Backend } from '../backend/backend.js';
import { getBackend, initWebGPU } from '../tensor/index.js';
import { benchCommand } from './bench.js';
import { generateCommand } from './generate.js';
import { prepareCommand } from './prepare.js';
import { profileCommand } from './profile.js';
import { trainCommand } from './train.js';

const USAGE = `Usage: loom <command> [options]

Commands:
  prepare  tokenize your text into train/val token shards with a BPE tokenizer (loom prepare --help)
  train    train a small GPT on generated stories (the default job; loom train --help)
  generate sample text from a trained model folder, streaming it (loom generate --help)
  profile  profile training steps of that GPT: top kernels, phases, counters (loom profile --help)
  bench    benchmarks: matmul, elementwise, reduce, train-step, generate, all (loom bench --help)
  info     show the devices tensorloom can use

Run 'loom <command> --help' for a command's options.
`;

async function info(out: (s: string) => void): Promise<number> {
  const cpu = getBackend('cpu');
  out('tensorloom devices:');
  out(`  cpu     ${cpu.caps.description}; dtypes ${cpu.caps.dtypes.join(', ')}`);
  let webgpu: Backend | undefined;
  try {
    webgpu = await initWebGPU();
    out(`  webgpu  ${webgpu.caps.description}; dtypes ${webgpu.caps.dtypes.join(', ')}`);
    out(
      `          ${webgpu.caps.software ? 'software adapter: slower than the CPU backend, used only with --device webgpu' : 'hardware adapter'}`,
    );
  } catch (e) {
    out(`  webgpu  not available: ${(e as Error).message}`);
  }
  const auto = webgpu && !webgpu.caps.software ? 'webgpu' : 'cpu';
  out(`--device auto picks: ${auto}`);
  return 0;
}

const consoleOut = (s: string): void => console.log(s);

/**
 * Runs the CLI with `argv` (without node and the script); resolves with the exit code. `out` prints whole
 * lines; `write` prints partial output (streamed text), by default to stdout when `out` is the console's.
 */
export async function main(
  argv: readonly string[],
  out: (s: string) => void = consoleOut,
  write: ((s: string) => void) | null = out === consoleOut ? (s) => void process.stdout.write(s) : null,
): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'train':
        return await trainCommand(rest, out);
      case 'generate':
        return await generateCommand(rest, out, write);
      case 'prepare':
        return await prepareCommand(rest, out);
      case 'bench':
        return await benchCommand(rest, out);
      case 'profile':
        return await profileCommand(rest, out);
      case 'info':
        return await info(out);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out(USAGE);
        return cmd === undefined ? 1 : 0;
      default:
        out(`loom: unknown command '${cmd}'\n\n${USAGE}`);
        return 1;
    }
  } catch (e) {
    if (e instanceof TensorloomError) {
      out(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
