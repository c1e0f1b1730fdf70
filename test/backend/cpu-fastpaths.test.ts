// The CPU backend's fast paths are taken and correct: large float32 matmuls run on the WASM SIMD kernel
// (counted, not timed) and on the worker pool, with results against the float64 oracle on odd sizes
// (non-multiples of the 4x8 tile and the 4-lane vectors), transposed, strided and stride-0 operands,
// batched broadcast, chunked problems; every output element written; threads give bit-identical results.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { binary, matmul, unary, type Tensor } from '../../src/index.js';
import {
  cpuBackend,
  cpuKernelCounters,
  cpuKernelInfo,
  cpuThreadsReady,
  setCpuKernelOptions,
  type CpuKernelCounters,
} from '../../src/backend/cpu/index.js';
import { StoragePool } from '../../src/backend/cpu/buffer.js';
import { randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { expectTensor, fromND, stridedView } from '../ops/util.js';

const defaults = setCpuKernelOptions({});
after(() => setCpuKernelOptions(defaults));

/** Increments of the deterministic counters while `fn` runs. */
async function counted(
  fn: () => Promise<void>,
): Promise<Pick<CpuKernelCounters, 'matmulJs' | 'matmulWasm' | 'matmulThreaded'>> {
  const before = cpuKernelCounters();
  await fn();
  const now = cpuKernelCounters();
  return {
    matmulJs: now.matmulJs - before.matmulJs,
    matmulWasm: now.matmulWasm - before.matmulWasm,
    matmulThreaded: now.matmulThreaded - before.matmulThreaded,
  };
}

/** x @ y against the oracle product of `a` and `b` (the values x and y hold). */
async function check(x: Tensor, y: Tensor, a: O.ND, b: O.ND, what: string): Promise<void> {
  const k = a.shape[a.shape.length - 1]!;
  await expectTensor(matmul(x, y), O.roundND(O.matmul(a, b), 'float32'), 'float32', {
    what: `${what} [${a.shape}] @ [${b.shape}]`,
    terms: k,
  });
}

/** Transposed view (last two dims) holding `a`. */
function transposedView(a: O.ND): Tensor {
  return fromND(O.transpose(a), 'float32', 'cpu').transpose();
}

describe('cpu fast paths', () => {
  test('the WASM SIMD matmul loaded (relaxed SIMD in Node 20 after the V8 switch)', () => {
    const info = cpuKernelInfo();
    assert.equal(info.wasm, 'relaxed-simd', `notes: ${info.notes.join('; ')}`);
    assert.match(cpuBackend.caps.description, /WebAssembly relaxed SIMD/);
  });

  test('large odd-sized 2-D matmuls take the WASM path and match the oracle', async (t) => {
    setCpuKernelOptions({ wasm: true, threads: false });
    const rng = testRng('cpu wasm 2d', t);
    for (const [m, k, n] of [
      [131, 97, 203],
      [4, 500, 8],
      [131, 1, 203],
      [61, 517, 9],
    ] as [number, number, number][]) {
      const a = randomND(rng, [m, k]);
      const b = randomND(rng, [k, n]);
      const d = await counted(() => check(fromND(a, 'float32', 'cpu'), fromND(b, 'float32', 'cpu'), a, b, '2-D'));
      assert.deepEqual(d, { matmulJs: 0, matmulWasm: 1, matmulThreaded: 0 }, `${m}x${k}x${n} path`);
    }
  });

  test('transposed, strided and stride-0 operands are read through their strides', async (t) => {
    setCpuKernelOptions({ wasm: true, threads: false });
    const rng = testRng('cpu wasm strided', t);
    const [m, k, n] = [45, 67, 29];
    const a = randomND(rng, [m, k]);
    const b = randomND(rng, [k, n]);
    const d = await counted(async () => {
      await check(transposedView(a), fromND(b, 'float32', 'cpu'), a, b, 'A^T view');
      await check(fromND(a, 'float32', 'cpu'), transposedView(b), a, b, 'B^T view');
      await check(transposedView(a), transposedView(b), a, b, 'both transposed');
      await check(stridedView(rng, a, 'float32', 'cpu'), stridedView(rng, b, 'float32', 'cpu'), a, b, 'strided');
      const row = randomND(rng, [1, n]);
      const bRows = fromND(row, 'float32', 'cpu').expand([k, n]); // row stride 0
      await check(fromND(a, 'float32', 'cpu'), bRows, a, O.broadcastTo(row, [k, n]), 'stride-0 rows of B');
    });
    assert.deepEqual(d, { matmulJs: 0, matmulWasm: 5, matmulThreaded: 0 });
  });

  test('batched matmul with broadcast batch dims runs every item on the WASM path', async (t) => {
    setCpuKernelOptions({ wasm: true, threads: false });
    const rng = testRng('cpu wasm batched', t);
    const a = randomND(rng, [2, 1, 37, 45]);
    const b = randomND(rng, [3, 45, 29]);
    const d = await counted(() => check(fromND(a, 'float32', 'cpu'), fromND(b, 'float32', 'cpu'), a, b, 'batched'));
    assert.deepEqual(d, { matmulJs: 0, matmulWasm: 6, matmulThreaded: 0 });
  });

  test('problems larger than a chunk run in row and column chunks', async (t) => {
    setCpuKernelOptions({ wasm: true, threads: false, chunkFloats: 40000 });
    try {
      const rng = testRng('cpu wasm chunks', t);
      const [m, k, n] = [70, 53, 150];
      const a = randomND(rng, [m, k]);
      const b = randomND(rng, [k, n]);
      await check(fromND(a, 'float32', 'cpu'), fromND(b, 'float32', 'cpu'), a, b, 'chunked');
      await check(transposedView(a), transposedView(b), a, b, 'chunked, transposed');
    } finally {
      setCpuKernelOptions({ chunkFloats: defaults.chunkFloats });
    }
  });

  test('every output element is written (the output buffer starts as NaN)', async (t) => {
    setCpuKernelOptions({ wasm: true, threads: false });
    const rng = testRng('cpu wasm coverage', t);
    const [m, k, n] = [33, 41, 27];
    const a = randomND(rng, [m, k]);
    const b = randomND(rng, [k, n]);
    const x = fromND(a, 'float32', 'cpu');
    const y = fromND(b, 'float32', 'cpu');
    const out = cpuBackend.alloc(m * n * 4 + 8);
    cpuBackend.write(out, 'float32', new Float32Array(m * n + 2).fill(NaN), 0);
    const d = await counted(async () => {
      const o = { buffer: out, dtype: 'float32', shape: [m, n], strides: [n, 1], offset: 1 } as const;
      cpuBackend.run('matmul', [x.spec(), y.spec()], o, {});
    });
    assert.equal(d.matmulWasm, 1);
    const got = (await cpuBackend.read(out, 'float32', 0, m * n + 2)) as Float32Array;
    cpuBackend.free(out);
    assert.ok(Number.isNaN(got[0]!) && Number.isNaN(got[m * n + 1]!), 'wrote outside the output');
    const want = O.roundND(O.matmul(a, b), 'float32').data;
    for (let i = 0; i < m * n; i++) {
      assert.ok(
        Math.abs(got[i + 1]! - want[i]!) <= 1e-4 * (1 + Math.abs(want[i]!)),
        `element ${i}: ${got[i + 1]} vs ${want[i]}`,
      );
    }
  });

  test('the worker pool takes large matmuls and gives bit-identical results', async (t) => {
    const rng = testRng('cpu wasm threads', t);
    const ready = await cpuThreadsReady();
    assert.equal(ready, cpuKernelInfo().threads > 1, 'the pool starts where there is more than one core');
    const [m, k, n] = [259, 301, 143];
    const a = randomND(rng, [m, k]);
    const b = randomND(rng, [k, n]);
    const x = transposedView(a);
    const y = fromND(b, 'float32', 'cpu');
    setCpuKernelOptions({ wasm: true, threads: true });
    const d = await counted(() => check(x, y, a, b, 'threaded'));
    assert.deepEqual(d, { matmulJs: 0, matmulWasm: 1, matmulThreaded: ready ? 1 : 0 });
    const threaded = await matmul(x, y).toArray();
    setCpuKernelOptions({ threads: false });
    const single = await matmul(x, y).toArray();
    assert.deepEqual(threaded, single, 'threaded and single-threaded results differ');
  });

  test('small, float16 and switched-off cases stay on the JS kernels', async (t) => {
    const rng = testRng('cpu js paths', t);
    setCpuKernelOptions({ wasm: true, threads: false });
    const a = randomND(rng, [8, 9]);
    const b = randomND(rng, [9, 10]);
    let d = await counted(() => check(fromND(a, 'float32', 'cpu'), fromND(b, 'float32', 'cpu'), a, b, 'small'));
    assert.deepEqual(d, { matmulJs: 1, matmulWasm: 0, matmulThreaded: 0 });
    const big = randomND(rng, [64, 64]);
    d = await counted(async () => {
      await matmul(fromND(big, 'float16', 'cpu'), fromND(big, 'float16', 'cpu')).toArray();
    });
    assert.deepEqual(d, { matmulJs: 1, matmulWasm: 0, matmulThreaded: 0 }, 'float16');
    setCpuKernelOptions({ wasm: false });
    d = await counted(() => check(fromND(big, 'float32', 'cpu'), fromND(big, 'float32', 'cpu'), big, big, 'JS'));
    assert.deepEqual(d, { matmulJs: 1, matmulWasm: 0, matmulThreaded: 0 }, 'wasm off');
  });
});

describe('cpu storage pool', () => {
  test('freed large storage is reused zero-filled, and only new storage counts as created', async () => {
    const bytes = 300_000; // above the pool's minimum, not a size-class boundary
    const a = cpuBackend.alloc(bytes);
    cpuBackend.write(a, 'float32', new Float32Array(bytes / 4).fill(7), 0);
    cpuBackend.free(a);
    const before = cpuBackend.stats();
    const b = cpuBackend.alloc(bytes - 100); // same size class
    const after = cpuBackend.stats();
    assert.equal(after.buffersCreated - before.buffersCreated, 0, 'served from the pool');
    assert.equal(after.liveBuffers - before.liveBuffers, 1);
    assert.equal(b.bytes, bytes - 100);
    const got = (await cpuBackend.read(b, 'float32', 0, b.bytes / 4)) as Float32Array;
    assert.ok(
      got.every((v) => v === 0),
      'reused storage is zero-filled',
    );
    assert.throws(() => cpuBackend.read(a, 'float32', 0, 1), /used after free/);
    cpuBackend.free(b);
    const small = cpuBackend.alloc(1000);
    cpuBackend.free(small);
    const s0 = cpuBackend.stats().buffersCreated;
    cpuBackend.free(cpuBackend.alloc(1000));
    assert.equal(cpuBackend.stats().buffersCreated - s0, 1, 'small buffers are not pooled');
  });

  test('size classes waste at most 1/8 and are fixed points', () => {
    for (const n of [4, 1000, 65536, 65537, 300_000, 1 << 20, (1 << 20) + 1, 123_456_789]) {
      const c = StoragePool.classBytes(n);
      assert.ok(c >= n && c <= Math.max(n * 1.125 + 4, 4), `${n} -> ${c}`);
      assert.equal(StoragePool.classBytes(c), c, `class of ${c}`);
    }
  });
});

describe('cpu WASM gelu and geluGrad', () => {
  /** Lengths around the vector width and the staging chunk (32768), with specials first, then a wide range. */
  function inputs(rng: ReturnType<typeof testRng>, n: number): O.ND {
    const specials = [NaN, Infinity, -Infinity, 0, -0, 20, -20, 25, -25, 9.5, -9.5, 10.5, -10.5, 1e30, -1e30, 1e-40];
    const wide = randomND(rng, [n], { low: -20, high: 20, dtype: 'float32' });
    const near = randomND(rng, [n], { low: -4, high: 4, dtype: 'float32' });
    return O.nd(
      [n],
      Array.from({ length: n }, (_, i) => (i < specials.length ? specials[i]! : i % 2 ? wide.data[i]! : near.data[i]!)),
    );
  }

  test('match the float64 oracle over ±20, ±Inf and NaN on odd lengths, on the WASM path', async (t) => {
    const rng = testRng('wasm gelu', t);
    const prev = setCpuKernelOptions({ wasm: true, geluMin: 1 });
    try {
      for (const n of [1, 3, 5, 17, 1027, 40001]) {
        const a = inputs(rng, n);
        const g = randomND(rng, [n], { low: -2, high: 2, dtype: 'float32' });
        const before = cpuKernelCounters().geluWasm;
        const x = fromND(a, 'float32', 'cpu');
        await expectTensor(unary('gelu', x), O.unary('gelu', a, 'float32'), 'float32', { what: `gelu n ${n}` });
        const gt = fromND(g, 'float32', 'cpu');
        await expectTensor(binary('geluGrad', x, gt), O.binary('geluGrad', a, g, 'float32'), 'float32', {
          what: `geluGrad n ${n}`,
        });
        assert.equal(cpuKernelCounters().geluWasm - before, 2, `n ${n}: both ran on the WASM kernels`);
      }
    } finally {
      setCpuKernelOptions(prev);
    }
  });

  test('large dense gelu takes the WASM path by default; strided operands stay on the JS loops', async (t) => {
    const rng = testRng('wasm gelu default', t);
    setCpuKernelOptions({ wasm: true, geluMin: defaults.geluMin });
    const a = randomND(rng, [300, 257], { low: -6, high: 6, dtype: 'float32' });
    const before = cpuKernelCounters().geluWasm;
    await expectTensor(unary('gelu', fromND(a, 'float32', 'cpu')), O.unary('gelu', a, 'float32'), 'float32', {
      what: 'gelu [300, 257]',
    });
    assert.equal(cpuKernelCounters().geluWasm - before, 1);
    const at = O.transpose(a);
    const xt = fromND(at, 'float32', 'cpu').transpose();
    await expectTensor(unary('gelu', xt), O.unary('gelu', a, 'float32'), 'float32', { what: 'gelu transposed' });
    assert.equal(cpuKernelCounters().geluWasm - before, 1, 'a transposed view is not dense');
  });
});
