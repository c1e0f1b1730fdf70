// Playground for the WebGPU float32 matmul: every tile variant (and the size-based pick) on contiguous
// and transposed-B operands, checked against the CPU backend, timed in GFLOP/s per size.
// Run: node --import tsx bench/kernels/webgpu-matmul.ts [--quick] [--json out.json]
// (no GPU: TL_WEBGPU_BACKEND=opengles EGL_PLATFORM=surfaceless for Mesa llvmpipe; expect ~1-2 GFLOP/s.)
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import process from 'node:process';
import type { TensorSpec } from '../../src/backend/backend.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { initWebGPU } from '../../src/backend/webgpu/index.js';
import type { KernelContext, WebGPUKernel } from '../../src/backend/webgpu/kernel.js';
import { KERNELS } from '../../src/backend/webgpu/kernels/index.js';
import {
  MATMUL_TILES,
  fitTile,
  matmul,
  matmulDispatches,
  pickTile,
  type MatmulTile,
} from '../../src/backend/webgpu/kernels/matmul.js';

const quick = process.argv.includes('--quick');
const jsonAt = process.argv.indexOf('--json');
const jsonPath = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;
const sizes = quick ? [256, 512] : [256, 512, 1024];
const minMs = quick ? 300 : 1500;

const cpu = createCpuBackend();
const gpu = await initWebGPU();
// The playground swaps the table's matmul for a forced-tile variant while it times that variant.
const table = KERNELS as unknown as { matmul: WebGPUKernel<'matmul'> };
const forced =
  (tile: MatmulTile): WebGPUKernel<'matmul'> =>
  (inputs, out, _a, ctx: KernelContext) =>
    matmulDispatches(
      inputs[0] as TensorSpec,
      inputs[1] as TensorSpec,
      out,
      ctx,
      fitTile(tile, ctx.limits.maxComputeInvocationsPerWorkgroup),
    );

function pair(shape: number[], strides: number[], data: Float32Array): { c: TensorSpec; g: TensorSpec } {
  const mk = (be: typeof cpu | typeof gpu): TensorSpec => {
    const buffer = be.alloc(data.byteLength);
    be.write(buffer, 'float32', data, 0);
    return { buffer, dtype: 'float32', shape, strides, offset: 0 };
  };
  return { c: mk(cpu), g: mk(gpu) };
}

/** Runs the GPU matmul at least once and for at least `minMs`; returns GFLOP/s (compile excluded by a warm-up). */
async function time(flops: number, a: TensorSpec, b: TensorSpec, o: TensorSpec): Promise<number> {
  gpu.run('matmul', [a, b], o, {});
  await gpu.sync();
  let reps = 0;
  const t0 = performance.now();
  do {
    gpu.run('matmul', [a, b], o, {});
    await gpu.sync();
    reps++;
  } while (performance.now() - t0 < minMs);
  return (flops * reps) / (performance.now() - t0) / 1e6;
}

const rows: string[][] = [['size', 'B layout', 'variant', 'GFLOP/s', 'max rel err']];
const results: { size: number; layout: string; variant: string; gflops: number; maxRelErr: number }[] = [];
for (const s of sizes) {
  const [m, k, n] = [s, s, s];
  const a = Float32Array.from({ length: m * k }, () => Math.random() - 0.5);
  const b = Float32Array.from({ length: k * n }, () => Math.random() - 0.5);
  const bt = new Float32Array(k * n); // B stored (N, K), read through strides [1, K]
  for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bt[j * k + p] = b[p * n + j]!;
  const A = pair([m, k], [k, 1], a);
  const flops = 2 * m * n * k;
  for (const [layout, B] of [
    ['row', pair([k, n], [n, 1], b)],
    ['transposed', pair([k, n], [1, k], bt)],
  ] as const) {
    const oc: TensorSpec = {
      buffer: cpu.alloc(m * n * 4),
      dtype: 'float32',
      shape: [m, n],
      strides: [n, 1],
      offset: 0,
    };
    const og: TensorSpec = { ...oc, buffer: gpu.alloc(m * n * 4) };
    cpu.run('matmul', [A.c, B.c], oc, {});
    const ref = (await cpu.read(oc.buffer, 'float32', 0, m * n)) as Float32Array;
    const picked = pickTile(m, n, 1, 1024); // BM x BN do not depend on the thread limit (only TM x TN do)
    const variants: [string, WebGPUKernel<'matmul'>][] = [
      [`pick (${picked.bm}x${picked.bn})`, matmul],
      ...MATMUL_TILES.map((t): [string, WebGPUKernel<'matmul'>] => [
        `v${t.bm}x${t.bn} k${t.bk} ${t.tm}x${t.tn}`,
        forced(t),
      ]),
    ];
    for (const [name, kernel] of variants) {
      table.matmul = kernel;
      const gflops = await time(flops, A.g, B.g, og);
      const got = (await gpu.read(og.buffer, 'float32', 0, m * n)) as Float32Array;
      let err = 0;
      for (let i = 0; i < m * n; i++) err = Math.max(err, Math.abs(got[i]! - ref[i]!) / (1 + Math.abs(ref[i]!)));
      rows.push([`${s}^3`, layout, name, gflops.toFixed(2), err.toExponential(1)]);
      results.push({ size: s, layout, variant: name, gflops, maxRelErr: err });
    }
    table.matmul = matmul;
    for (const t of [B.c, oc]) cpu.free(t.buffer);
    for (const t of [B.g, og]) gpu.free(t.buffer);
  }
  cpu.free(A.c.buffer);
  gpu.free(A.g.buffer);
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
console.log(`adapter: ${gpu.caps.description}`);
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
if (jsonPath) {
  const machine = {
    cpus: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    platform: `${os.platform()} ${os.arch()}`,
    node: process.version,
  };
  writeFileSync(
    jsonPath,
    JSON.stringify({ bench: 'webgpu-matmul', adapter: gpu.caps.description, machine, results }, null, 2),
  );
}
