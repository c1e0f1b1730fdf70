// Host-side cost per elementwise op on the WebGPU backend: kernel building (WGSL specialization lookup,
// uniform packing), recording (pipeline/bind group lookup, Dawn calls), and end to end with submits.
// Run: node --import tsx bench/kernels/webgpu-overhead.ts   (software adapters make "end to end" GPU-bound)
import type { DeviceBuffer, TensorSpec } from '../../src/backend/backend.js';
import { initWebGPU } from '../../src/backend/webgpu/index.js';
import type { KernelContext } from '../../src/backend/webgpu/kernel.js';
import { KERNELS } from '../../src/backend/webgpu/kernels/index.js';

const gpu = await initWebGPU();
console.log(`adapter: ${gpu.caps.description}`);
const mat = (buffer: DeviceBuffer, strides = [64, 1]): TensorSpec => ({
  buffer,
  dtype: 'float32',
  shape: [64, 64],
  strides,
  offset: 0,
});
const a = gpu.alloc(64 * 64 * 4);
const b = gpu.alloc(64 * 64 * 4);
const c = gpu.alloc(64 * 64 * 4);
const ctx = (gpu as unknown as { ctx: KernelContext }).ctx; // the backend's kernel context (bench-only access)
const rt = (gpu as unknown as { runtime: { record(d: unknown): void; flush(): void } }).runtime;

/** Best of 3 runs of n calls, in microseconds per call. */
function time(n: number, f: () => void): number {
  let best = Infinity;
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) f();
    best = Math.min(best, (1000 * (performance.now() - t0)) / n);
  }
  return best;
}

type Row = [string, 'add' | 'gelu', TensorSpec[]];
const rows: Row[] = [
  ['add contiguous (vec4)', 'add', [mat(a), mat(b)]],
  ['add broadcast (strided)', 'add', [mat(a), mat(b, [0, 1])]],
  ['gelu', 'gelu', [mat(a)]],
];
console.log('op                         build us  record us  end-to-end us');
for (const [label, op, ins] of rows) {
  const f = (): void => gpu.run(op, ins, mat(c), {});
  f();
  await gpu.sync();
  const build = time(20000, () => KERNELS[op](ins, mat(c), {}, ctx));
  const ds = KERNELS[op](ins, mat(c), {}, ctx);
  const record = time(100, () => rt.record(ds[0]));
  rt.flush();
  await gpu.sync();
  const t0 = performance.now();
  for (let i = 0; i < 2000; i++) f();
  await gpu.sync();
  const e2e = (1000 * (performance.now() - t0)) / 2000;
  console.log(
    `${label.padEnd(26)} ${build.toFixed(2).padStart(8)} ${record.toFixed(2).padStart(10)} ${e2e.toFixed(2).padStart(14)}`,
  );
}
console.log(JSON.stringify(gpu.stats()));
