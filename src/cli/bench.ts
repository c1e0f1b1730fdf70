// `loom bench <suite>`: runs a benchmark suite (matmul, elementwise, reduce, train-step, generate, or all)
// on a device, prints a table and optionally writes JSON in the stable schema, with the machine it ran on.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname } from 'node:path';
import { TensorloomError } from '../core/errors.js';
import { cpuKernelInfo, cpuThreadsReady, setCpuKernelOptions } from '../backend/cpu/index.js';
import { chooseDevice, getBackend, type DeviceLike } from '../tensor/index.js';
import { helpText, parseArgs, type OptionSpec } from './args.js';
import { SUITES, type BenchResult } from './benchsuites.js';

const OPTIONS = {
  device: { kind: 'string', choices: ['cpu', 'webgpu'], help: 'device to benchmark (default cpu)' },
  json: { kind: 'string', help: 'also write the results as JSON to this file' },
  reps: { kind: 'number', help: 'timed runs per case (default: per suite)' },
  warmup: { kind: 'number', help: 'untimed runs per case first (default: per suite)' },
  kernels: {
    kind: 'string',
    choices: ['js', 'wasm', 'threads'],
    help: 'cpu matmul path: js, wasm (single-threaded WASM SIMD) or threads (default: WASM on the worker pool)',
  },
  quick: { kind: 'boolean', help: 'small sizes only (checks that the benchmark runs)' },
  help: { kind: 'boolean', help: 'show this help' },
} satisfies Record<string, OptionSpec>;

const DESCRIPTION =
  `Suites: ${Object.keys(SUITES).join(', ')}, all. Each case runs warmup runs, then timed runs; the table and\n` +
  'the JSON give the median, min and max time and GFLOP/s, GB/s or tokens/s. Benchmarks are not tests:\n' +
  'compare only runs made on the same machine at the same time.';

/** The JSON file: the schema is stable so that runs can be compared. */
export interface BenchReport {
  tensorloom: string;
  machine: { cpu: string; cores: number; simd: string[] };
  device: 'cpu' | 'webgpu';
  adapter: Record<string, unknown> | null;
  results: BenchResult[];
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    if (pkg.version) return pkg.version;
  } catch {
    // running from an unusual layout: fall through
  }
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The WebAssembly features the CPU backend's matmul uses under `kernels`. */
function cpuSimd(kernels: string): string[] {
  const k = cpuKernelInfo();
  if (kernels === 'js' || !k.wasm) return [];
  const f = ['wasm-simd128'];
  if (k.wasm === 'relaxed-simd') f.push('wasm-relaxed-simd');
  if (kernels === 'threads' && k.threads > 1) f.push('wasm-threads');
  return f;
}

const fmt = (x: number | undefined, d = 1): string => (x === undefined ? '' : x.toFixed(d));

/** Prints results as an aligned table. */
function table(results: readonly BenchResult[], out: (s: string) => void): void {
  const rows = [
    ['suite', 'name', 'shape', 'median ms', 'min ms', 'max ms', 'GFLOP/s', 'GB/s', 'tokens/s', 'fwd/bwd/opt ms'],
  ];
  for (const r of results) {
    const ms = (x: number): string => (x < 0.1 ? x.toFixed(4) : x < 10 ? x.toFixed(3) : x.toFixed(1));
    rows.push([
      r.suite,
      r.name,
      `[${r.shape.join(', ')}]`,
      ms(r.median_ms),
      ms(r.min_ms),
      ms(r.max_ms),
      fmt(r.gflops),
      fmt(r.gbps, 2),
      fmt(r.tokens_per_s, 0),
      r.forward_ms === undefined
        ? ''
        : [r.forward_ms, r.backward_ms ?? 0, r.optimizer_ms ?? 0].map((x) => ms(x)).join('/'),
    ]);
  }
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) out(r.map((cell, c) => (c < 3 ? cell.padEnd(w[c]!) : cell.padStart(w[c]!))).join('  '));
}

/** Runs `loom bench`; returns the process exit code. */
export async function benchCommand(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const suite = argv[0] !== undefined && !argv[0].startsWith('--') ? argv[0] : undefined;
  const a = parseArgs('bench', suite === undefined ? argv : argv.slice(1), OPTIONS);
  if (a.help || suite === undefined) {
    out(helpText('bench <suite>', DESCRIPTION, OPTIONS));
    return a.help ? 0 : 1;
  }
  const names = suite === 'all' ? Object.keys(SUITES) : [suite];
  for (const n of names) {
    if (!SUITES[n])
      throw new TensorloomError(`loom bench: unknown suite '${n}' (suites: ${Object.keys(SUITES).join(', ')}, all)`);
  }
  const choice = await chooseDevice(((a.device as string | undefined) ?? 'cpu') as DeviceLike);
  const device = choice.device;
  const backend = getBackend(device);
  const kernels = (a.kernels as string | undefined) ?? 'threads';
  setCpuKernelOptions({ wasm: kernels !== 'js', threads: kernels === 'threads' });
  if (kernels === 'threads') await cpuThreadsReady();
  const simd = backend.name === 'cpu' ? cpuSimd(kernels) : [];
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), simd };
  out(`loom bench ${suite} on ${backend.name}: ${backend.caps.description}`);
  out(
    `machine: ${machine.cpu}, ${machine.cores} cores; matmul kernels: ${kernels} (${machine.simd.join(', ') || 'JS'})`,
  );
  const results: BenchResult[] = [];
  for (const n of names) {
    const opts = {
      device,
      quick: a.quick === true,
      ...(a.reps !== undefined ? { reps: a.reps as number } : {}),
      ...(a.warmup !== undefined ? { warmup: a.warmup as number } : {}),
      progress: (r: BenchResult) =>
        out(`  ${r.suite} ${r.name} [${r.shape.join(', ')}]: ${r.median_ms.toPrecision(4)} ms`),
    };
    results.push(...(await SUITES[n]!(opts)));
  }
  out('');
  table(results, out);
  if (typeof a.json === 'string') {
    const report: BenchReport = {
      tensorloom: packageVersion(),
      machine,
      device: backend.name,
      adapter:
        backend.name === 'cpu' ? null : { description: backend.caps.description, software: backend.caps.software },
      results,
    };
    mkdirSync(dirname(a.json), { recursive: true });
    writeFileSync(a.json, JSON.stringify(report, null, 2) + '\n');
    out(`\nwrote ${a.json}`);
  }
  return 0;
}
