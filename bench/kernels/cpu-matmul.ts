// Playground for the CPU backend's float32 matmul: plain-JS references against the backend's JS kernels,
// its WASM SIMD kernel on one thread and on the worker pool (contiguous and transposed-B operands), with a
// correctness check and GFLOP/s per size (wall and per CPU-second: on a shared machine they differ).
// Run: node --import tsx bench/kernels/cpu-matmul.ts [--quick]
import process from 'node:process';
import { cpuThreadsReady, createCpuBackend, setCpuKernelOptions, view } from '../../src/backend/cpu/index.js';
import type { TensorSpec } from '../../src/backend/backend.js';

const be = createCpuBackend();
await cpuThreadsReady();

/** v0: textbook i-j-k dot products (the correctness reference; doubles, one rounding per output). */
function v0Naive(m: number, k: number, n: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
      c[i * n + j] = s;
    }
  }
}

/** v1: i-k-j row updates (the usual "fast" plain-JS loop; accumulates in float32 storage). */
function v1Ikj(m: number, k: number, n: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  c.fill(0);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p]!;
      const row = p * n;
      const out = i * n;
      for (let j = 0; j < n; j++) c[out + j]! += x * b[row + j]!;
    }
  }
}

function tensor(shape: number[], strides: number[], data?: Float32Array): TensorSpec {
  const size = shape.reduce((x, y) => x * y, 1);
  const buffer = be.alloc(size * 4);
  if (data) view(buffer, 'float32').set(data);
  return { buffer, dtype: 'float32', shape, strides, offset: 0 };
}

/** Times `fn` for at least `minMs` of wall time; returns [wall GFLOP/s, CPU-time GFLOP/s]. */
function time(flops: number, fn: () => void, minMs: number): [number, number] {
  fn(); // warm up (JIT, scratch growth)
  let reps = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let wall = 0;
  do {
    fn();
    reps++;
    wall = performance.now() - t0;
  } while (wall < minMs);
  const cpu = process.cpuUsage(c0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return [(flops * reps) / wall / 1e6, (flops * reps) / cpuMs / 1e6];
}

const quick = process.argv.includes('--quick');
const sizes: [number, number, number][] = [
  [128, 128, 128],
  [256, 256, 256],
  [512, 512, 512],
  [1024, 1024, 1024],
  [512, 768, 3072], // GPT-2 small's MLP up-projection for 512 tokens
  [1, 768, 3072], // the same for one token (generation)
];
const minMs = quick ? 200 : 1000;
const rows: string[][] = [['M x K x N', 'variant', 'GFLOP/s wall', 'GFLOP/s cpu', 'max |err|']];

for (const [m, k, n] of sizes) {
  const a = Float32Array.from({ length: m * k }, () => Math.random() - 0.5);
  const b = Float32Array.from({ length: k * n }, () => Math.random() - 0.5);
  const bt = new Float32Array(k * n); // B stored transposed (N x K), read back through strides [1, K]
  for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bt[j * k + p] = b[p * n + j]!;
  const refRows = Math.min(m, 16);
  const ref = new Float32Array(refRows * n);
  v0Naive(refRows, k, n, a, b, ref);
  const err = (c: Float32Array): number => {
    let e = 0;
    for (let i = 0; i < refRows * n; i++) e = Math.max(e, Math.abs(c[i]! - ref[i]!));
    return e;
  };
  const flops = 2 * m * n * k;
  const label = `${m} x ${k} x ${n}`;
  const cPlain = new Float32Array(m * n);
  if (m * n * k <= 512 ** 3) {
    const [w, c] = time(flops, () => v0Naive(m, k, n, a, b, cPlain), minMs);
    rows.push([label, 'v0 naive ijk', w.toFixed(2), c.toFixed(2), err(cPlain).toExponential(1)]);
    const [w1, c1] = time(flops, () => v1Ikj(m, k, n, a, b, cPlain), minMs);
    rows.push([label, 'v1 ikj', w1.toFixed(2), c1.toFixed(2), err(cPlain).toExponential(1)]);
  }
  const A = tensor([m, k], [k, 1], a);
  const B = tensor([k, n], [n, 1], b);
  const BT = tensor([k, n], [1, k], bt);
  const C = tensor([m, n], [n, 1]);
  const cView = view(C.buffer, 'float32');
  for (const [kernels, opts] of [
    ['JS', { wasm: false }],
    ['WASM', { wasm: true, threads: false }],
    ['WASM threads', { wasm: true, threads: true }],
  ] as const) {
    setCpuKernelOptions(opts);
    for (const [name, bSpec] of [
      ['', B],
      [', B transposed', BT],
    ] as const) {
      if (kernels === 'JS' && m * n * k > 512 ** 3) continue;
      const [w, c] = time(flops, () => be.run('matmul', [A, bSpec], C, {}), minMs);
      rows.push([label, `backend ${kernels}${name}`, w.toFixed(2), c.toFixed(2), err(cView).toExponential(1)]);
    }
  }
  for (const t of [A, B, BT, C]) be.free(t.buffer);
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((s, i) => s.padEnd(widths[i]!)).join('  '));
