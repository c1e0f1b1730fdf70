// The `loom` command line: dispatches to the subcommands and turns errors into one clear line.
import { TensorloomError } from '../core/errors.js';
import { getBackend } from '../tensor/index.js';
import { trainCommand } from './train.js';

const USAGE = `Usage: loom <command> [options]

Commands:
  train    train a small GPT on generated stories (the default job; loom train --help)
  info     show the devices tensorloom can use

Run 'loom <command> --help' for a command's options.
`;

function info(out: (s: string) => void): number {
  const cpu = getBackend('cpu');
  out(`tensorloom devices:`);
  out(`  cpu     available: ${cpu.caps.description}; dtypes ${cpu.caps.dtypes.join(', ')}`);
  out(`  webgpu  not available in this version (the WebGPU backend is being built)`);
  out(`default device: cpu`);
  return 0;
}

/** Runs the CLI with `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: readonly string[], out: (s: string) => void = (s) => console.log(s)): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'train':
        return await trainCommand(rest, out);
      case 'info':
        return info(out);
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
