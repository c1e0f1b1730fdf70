// `loom bench`: the quick suites run end to end and write JSON in the stable schema (this checks that
// the benchmark works, never how fast anything is).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { main } from '../../src/cli/main.js';

test('loom bench all --quick prints a table and writes the JSON schema', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-bench-'));
  const saved = setCpuKernelOptions({});
  try {
    const file = join(dir, 'out', 'bench.json');
    const lines: string[] = [];
    const code = await main(['bench', 'all', '--quick', '--reps', '2', '--warmup', '0', '--json', file], (s) =>
      lines.push(s),
    );
    assert.equal(code, 0, lines.join('\n'));
    assert.match(lines.join('\n'), /matmul\s+64x64x64/);
    const report = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(report), ['tensorloom', 'machine', 'device', 'adapter', 'results']);
    assert.equal(report.device, 'cpu');
    assert.equal(report.adapter, null);
    const machine = report.machine as { cpu: string; cores: number; simd: string[] };
    assert.deepEqual(Object.keys(machine), ['cpu', 'cores', 'simd']);
    assert.ok(machine.cores >= 1 && machine.simd.includes('wasm-simd128'));
    const results = report.results as Record<string, unknown>[];
    const suites = new Set(results.map((r) => r.suite));
    assert.deepEqual([...suites], ['matmul', 'elementwise', 'reduce', 'train-step', 'generate', 'conv2d']);
    for (const r of results) {
      for (const k of ['suite', 'name', 'shape', 'dtype', 'median_ms', 'min_ms', 'max_ms']) assert.ok(k in r, k);
      const ms = [r.min_ms, r.median_ms, r.max_ms] as number[];
      assert.ok(ms[0]! > 0 && ms[0]! <= ms[1]! && ms[1]! <= ms[2]!, `${String(r.name)}: ${ms.join(' ')}`);
      const metric =
        r.suite === 'matmul' || r.suite === 'conv2d'
          ? 'gflops'
          : r.suite === 'train-step' || r.suite === 'generate'
            ? 'tokens_per_s'
            : 'gbps';
      assert.ok(typeof r[metric] === 'number' && r[metric] > 0, `${String(r.name)} ${metric}`);
      if (r.suite === 'train-step')
        for (const k of ['forward_ms', 'backward_ms', 'optimizer_ms'])
          assert.ok(typeof r[k] === 'number' && r[k] > 0, `${String(r.name)} ${k}`);
    }
    assert.ok(
      results.some((r) => r.suite === 'matmul' && r.name === '96x80x72'),
      'matmul names are MxNxK',
    );
  } finally {
    setCpuKernelOptions(saved);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loom bench without a suite, or with an unknown one, says what exists', async () => {
  const lines: string[] = [];
  assert.equal(await main(['bench'], (s) => lines.push(s)), 1);
  assert.match(lines.join('\n'), /Suites: matmul, elementwise, reduce, train-step, generate, conv2d, all/);
  lines.length = 0;
  assert.equal(await main(['bench', 'matmull'], (s) => lines.push(s)), 2);
  assert.match(lines.join('\n'), /unknown suite 'matmull'/);
});
