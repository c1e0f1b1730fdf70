// The CPU backend's small-M matmul (WASM GEMV kernels, wasmgemv.ts) against the float64 oracle: M = 1..8,
// odd K and N, B row-major and transposed (a (N, K) weight viewed as (K, N), the tied GPT head), batched B,
// strided A. Counters prove the path ran; the worker-pool split must give the single-threaded bits.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { matmul, type Tensor } from '../../src/index.js';
import { cpuKernelCounters, cpuKernelInfo, cpuThreadsReady, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { expectTensor, fromND } from '../ops/util.js';

const defaults = setCpuKernelOptions({});
after(() => setCpuKernelOptions(defaults));

/** A transposed view (last two dims) holding `a`: unit row stride. */
function transposedView(a: O.ND): Tensor {
  return fromND(O.transpose(a), 'float32', 'cpu').transpose();
}

/** `a` as a contiguous tensor, or as a transposed view of the same values. */
function operand(a: O.ND, transposed: boolean): Tensor {
  return transposed ? transposedView(a) : fromND(a, 'float32', 'cpu');
}

describe('cpu gemv (small-M matmul)', () => {
  test('M = 1..8, odd K and N, both B layouts, contiguous and strided A: oracle values', async (t) => {
    const rng = testRng('cpu gemv', t);
    setCpuKernelOptions({ wasm: true, threads: false });
    const [k, n] = [131, 135];
    for (let m = 1; m <= 8; m++) {
      const a = randomND(rng, [m, k]);
      const b = randomND(rng, [k, n]);
      const want = O.roundND(O.matmul(a, b), 'float32');
      for (const bT of [false, true]) {
        for (const aT of [false, true]) {
          const before = cpuKernelCounters().matmulGemv;
          const got = matmul(operand(a, aT), operand(b, bT));
          const what = `gemv M=${m} A ${aT ? 'strided' : 'contiguous'} B ${bT ? 'transposed' : 'row-major'}`;
          await expectTensor(got, want, 'float32', { what, terms: k });
          assert.equal(cpuKernelCounters().matmulGemv - before, 1, `${what}: the GEMV kernel ran`);
        }
      }
    }
  });

  test('batched B (one GEMV per item) and M past the GEMV range (the GEMM)', async (t) => {
    const rng = testRng('cpu gemv batched', t);
    setCpuKernelOptions({ wasm: true, threads: false });
    const [batch, m, k, n] = [3, 2, 257, 67];
    const a = randomND(rng, [batch, m, k]);
    const b = randomND(rng, [batch, k, n]);
    const want = O.roundND(O.matmul(a, b), 'float32');
    for (const bT of [false, true]) {
      const before = cpuKernelCounters().matmulGemv;
      await expectTensor(matmul(fromND(a, 'float32', 'cpu'), operand(b, bT)), want, 'float32', {
        what: `batched gemv B ${bT ? 'transposed' : 'row-major'}`,
        terms: k,
      });
      assert.equal(cpuKernelCounters().matmulGemv - before, batch, 'one GEMV per batch item');
    }
    const a9 = randomND(rng, [9, k]);
    const b9 = randomND(rng, [k, n]);
    const before = cpuKernelCounters();
    await expectTensor(
      matmul(fromND(a9, 'float32', 'cpu'), fromND(b9, 'float32', 'cpu')),
      O.roundND(O.matmul(a9, b9), 'float32'),
      'float32',
      { what: 'M = 9', terms: k },
    );
    const now = cpuKernelCounters();
    assert.equal(now.matmulGemv, before.matmulGemv, 'M = 9 is not a GEMV');
    assert.equal(now.matmulWasm - before.matmulWasm, 1, 'M = 9 runs on the WASM GEMM');
  });

  test('split over the worker pool: oracle values, the same bits as one thread', async (t) => {
    const rng = testRng('cpu gemv pooled', t);
    const ready = await cpuThreadsReady();
    assert.equal(ready, cpuKernelInfo().threads > 1);
    // 7 x 771 x 3001 passes the pool's thresholds (M odd: the row-major kernel's paired rows and its last
    // one); K (row-major) and N (transposed) stream in chunks of different sizes on one thread and the pool
    const [m, k, n] = [7, 771, 3001];
    const a = randomND(rng, [m, k]);
    const b = randomND(rng, [k, n]);
    const want = O.roundND(O.matmul(a, b), 'float32');
    for (const bT of [false, true]) {
      const results: ArrayLike<number>[] = [];
      for (const threads of [true, false]) {
        setCpuKernelOptions({ wasm: true, threads });
        const before = cpuKernelCounters();
        const got = matmul(fromND(a, 'float32', 'cpu'), operand(b, bT));
        const what = `pooled gemv B ${bT ? 'transposed' : 'row-major'} threads ${threads}`;
        await expectTensor(got, want, 'float32', { what, terms: k });
        const now = cpuKernelCounters();
        assert.equal(now.matmulGemv - before.matmulGemv, 1, `${what}: the GEMV kernel ran`);
        assert.equal(now.matmulGemvThreaded - before.matmulGemvThreaded, threads && ready ? 1 : 0, what);
        results.push(await got.toArray());
      }
      assert.deepEqual(results[0], results[1], `B ${bT ? 'transposed' : 'row-major'}: threads change the bits`);
    }
  });
});
