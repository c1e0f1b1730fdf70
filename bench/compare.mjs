#!/usr/bin/env node
// Runs tensorloom's CPU benchmarks and the PyTorch anchor (bench/torch_bench.py) back to back on this
// machine, writes every JSON file to bench/results/<stamp>/, and prints the ratios: matmul GFLOP/s of
// tensorloom's JS kernels, WASM SIMD (one thread) and WASM on the worker pool against PyTorch, the
// train-step time, and conv2d GFLOP/s (the ResNet-50 stem convolution, forward and forward + backward).
// PyTorch counts at its best of the default and OMP_WAIT_POLICY=passive, per case.
// With --rounds N everything runs N times, interleaved, and each side keeps its best median per case, so
// that load from other users of a shared machine hits both sides alike.
// Usage: node bench/compare.mjs [matmul|train-step|conv2d|all] [--quick] [--no-js] [--rounds N] [--out DIR]
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const args = process.argv.slice(2);
const suite = args.find((a) => !a.startsWith('--')) ?? 'all';
const quick = args.includes('--quick');
const outIdx = args.indexOf('--out');
const roundsIdx = args.indexOf('--rounds');
const rounds = roundsIdx >= 0 ? Number(args[roundsIdx + 1]) : 1;
const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
const dir = outIdx >= 0 ? args[outIdx + 1] : join('bench', 'results', stamp);
const PYTHON = process.env.TL_BENCH_PYTHON ?? '/usr/bin/python3';
mkdirSync(dir, { recursive: true });

/** Runs a command with inherited output; fails loudly. */
function run(cmd, argv, env = {}) {
  console.log(
    `\n$ ${Object.entries(env)
      .map(([k, v]) => `${k}=${v} `)
      .join('')}${cmd} ${argv.join(' ')}`,
  );
  const r = spawnSync(cmd, argv, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited with ${r.status ?? r.signal}`);
}

/** `loom bench` from the sources (no build needed). */
function loom(argv) {
  const entry = "import { main } from './src/cli/main.ts'; process.exitCode = await main(process.argv.slice(1));";
  run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', entry, 'bench', ...argv]);
}

const read = (f) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
const q = quick ? ['--quick'] : [];
/** JSON files per variant key ('matmul/wasm', 'train-step/torch-passive', ...), one per round. */
const files = {};
const suites = suite === 'all' ? ['matmul', 'train-step', 'conv2d'] : [suite];
for (let round = 1; round <= rounds; round++) {
  const tag = rounds > 1 ? `-r${round}` : '';
  for (const s of suites) {
    const js = s === 'matmul' && round === 1 && !args.includes('--no-js');
    for (const k of s === 'matmul' ? [...(js ? ['js'] : []), 'wasm', 'threads'] : ['threads']) {
      const f = `tensorloom-${s}-${k}${tag}.json`;
      // The JS kernels are 10-50x slower: one round, one timed run (after the calibration run) per case.
      loom([s, '--kernels', k, '--json', join(dir, f), ...q, ...(k === 'js' ? ['--reps', '1', '--warmup', '0'] : [])]);
      (files[`${s}/${k}`] ??= []).push(f);
    }
    for (const policy of [null, 'passive']) {
      const f = `pytorch-${s}${policy ? `-omp-${policy}` : ''}${tag}.json`;
      const env = policy ? { OMP_WAIT_POLICY: policy } : {};
      run(PYTHON, ['bench/torch_bench.py', s, '--threads', '2', '--json', join(dir, f), ...q], env);
      (files[`${s}/torch-${policy ?? 'default'}`] ??= []).push(f);
    }
  }
}

/** Results by 'suite name': for each case the run with the best (lowest) median over the rounds. */
function byName(fs) {
  const best = new Map();
  for (const f of fs) {
    for (const r of read(f).results) {
      const key = `${r.suite} ${r.name}`;
      if (!best.has(key) || r.median_ms < best.get(key).median_ms) best.set(key, r);
    }
  }
  return best;
}
const col = (s, w) => String(s).padStart(w);
const ratio = (x, y) => (x && y ? (x / y).toFixed(2) : '-');
const lines = [];
if (suites.includes('matmul')) {
  const tl = Object.fromEntries(
    ['js', 'wasm', 'threads'].filter((k) => files[`matmul/${k}`]).map((k) => [k, byName(files[`matmul/${k}`])]),
  );
  const pd = byName(files['matmul/torch-default']);
  const pp = byName(files['matmul/torch-passive']);
  lines.push('matmul GFLOP/s (median)        JS    WASM  WASM+thr   torch  torch(pass)  thr/torch  wasm/torch');
  for (const [key, r] of tl.threads) {
    const g = (m) => m?.get(key)?.gflops;
    const torch = Math.max(g(pd) ?? 0, g(pp) ?? 0);
    lines.push(
      `${r.name.padEnd(26)}${col(g(tl.js) ?? '-', 8)}${col(g(tl.wasm) ?? '-', 8)}${col(g(tl.threads) ?? '-', 10)}` +
        `${col(g(pd) ?? '-', 8)}${col(g(pp) ?? '-', 13)}${col(ratio(g(tl.threads), torch), 11)}${col(ratio(g(tl.wasm), torch), 12)}`,
    );
  }
}
if (suites.includes('train-step')) {
  const tl = byName(files['train-step/threads']);
  const pd = byName(files['train-step/torch-default']);
  const pp = byName(files['train-step/torch-passive']);
  lines.push('', 'train-step ms/step (median)   tensorloom    torch  torch(pass)  tensorloom/torch');
  for (const [key, r] of tl) {
    const torch = Math.min(pd.get(key)?.median_ms ?? Infinity, pp.get(key)?.median_ms ?? Infinity);
    lines.push(
      `${r.name.padEnd(28)}${col(r.median_ms.toFixed(0), 11)}${col(pd.get(key)?.median_ms.toFixed(0) ?? '-', 9)}` +
        `${col(pp.get(key)?.median_ms.toFixed(0) ?? '-', 13)}${col(ratio(r.median_ms, torch), 18)}`,
    );
  }
}
if (suites.includes('conv2d')) {
  const tl = byName(files['conv2d/threads']);
  const pd = byName(files['conv2d/torch-default']);
  const pp = byName(files['conv2d/torch-passive']);
  lines.push('', 'conv2d GFLOP/s (median)          tensorloom    torch  torch(pass)  tensorloom/torch');
  for (const [key, r] of tl) {
    const torch = Math.max(pd.get(key)?.gflops ?? 0, pp.get(key)?.gflops ?? 0);
    lines.push(
      `${r.name.padEnd(30)}${col(r.gflops ?? '-', 11)}${col(pd.get(key)?.gflops ?? '-', 9)}` +
        `${col(pp.get(key)?.gflops ?? '-', 13)}${col(ratio(r.gflops, torch), 18)}`,
    );
  }
}
const summary = `${lines.join('\n')}\n`;
writeFileSync(join(dir, 'summary.txt'), summary);
console.log(`\nresults in ${dir}/ (summary.txt)\n\n${summary}`);
