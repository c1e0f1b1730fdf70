// The CPU backend's split work for the GPT lm head, against the float64 oracle: a matmul whose long K
// runs in chunks added into C (the input gradient's 50257-long K), and cross-entropy rows split over the
// worker pool. Counters prove each path ran; both must give the same bits as the unsplit kernels.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { F, matmul, tidy, type Tensor } from '../../src/index.js';
import { cpuKernelCounters, cpuKernelInfo, cpuThreadsReady, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { assertClose } from '../helpers/assert.js';
import { randomIndices, randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { expectTensor, fromND } from '../ops/util.js';

const defaults = setCpuKernelOptions({});
after(() => setCpuKernelOptions(defaults));

/** Transposed view (last two dims) holding `a`. */
function transposedView(a: O.ND): Tensor {
  return fromND(O.transpose(a), 'float32', 'cpu').transpose();
}

describe('cpu split kernels', () => {
  test('a long K runs in chunks added into C: oracle values, the same bits as one pass', async (t) => {
    const rng = testRng('cpu split k', t);
    const ready = await cpuThreadsReady();
    const [m, k, n] = [70, 3001, 45];
    const a = randomND(rng, [m, k]);
    const b = randomND(rng, [k, n]);
    for (const threads of [false, true]) {
      for (const [x, y, what] of [
        [fromND(a, 'float32', 'cpu'), fromND(b, 'float32', 'cpu'), 'row-major'],
        [transposedView(a), transposedView(b), 'transposed'],
      ] as const) {
        // 3 * 72 * 3001 + 3 * 3001 * 48 + ... floats unsplit; 300000 leaves K chunks of 768 (3 x the K block)
        setCpuKernelOptions({ wasm: true, threads, chunkFloats: 300000 });
        const before = cpuKernelCounters();
        const got = matmul(x, y);
        await expectTensor(got, O.roundND(O.matmul(a, b), 'float32'), 'float32', {
          what: `split K ${what} threads ${threads} [${m}, ${k}] @ [${k}, ${n}]`,
          terms: k,
        });
        const now = cpuKernelCounters();
        assert.equal(now.matmulWasm - before.matmulWasm, 1);
        assert.ok(now.matmulSplitK > before.matmulSplitK, 'K was split');
        assert.equal(now.matmulThreaded - before.matmulThreaded, threads && ready ? 1 : 0);
        setCpuKernelOptions({ chunkFloats: defaults.chunkFloats });
        const whole = matmul(x, y);
        assert.equal(cpuKernelCounters().matmulSplitK, now.matmulSplitK, 'one pass at the default chunk size');
        assert.deepEqual(await got.toArray(), await whole.toArray(), `${what}: split and unsplit K differ`);
      }
    }
  });

  test('cross-entropy rows split over the worker pool match the oracle and the single-threaded bits', async (t) => {
    const rng = testRng('cpu ce pooled', t);
    const ready = await cpuThreadsReady();
    assert.equal(ready, cpuKernelInfo().threads > 1);
    // 50001 columns: 20 rows per 4 MiB pooled chunk, so 45 rows take three chunks (the last one short)
    const [n, c, eps, ignore] = [45, 50001, 0.1, 7];
    const z = randomND(rng, [n, c], { low: -20, high: 20 });
    const y = randomIndices(rng, [n], c);
    y.data[3] = ignore;
    const up = randomND(rng, [n], { low: -2, high: 2 });
    const zf = O.roundND(z, 'float32');
    const opts = { ignoreIndex: ignore, labelSmoothing: eps, reduction: 'none' } as const;
    const results: (readonly ArrayLike<number>[])[] = [];
    for (const threads of [true, false]) {
      setCpuKernelOptions({ wasm: true, threads });
      const x = fromND(z, 'float32', 'cpu').requiresGrad_();
      const before = cpuKernelCounters();
      const loss = tidy(() => {
        const l = F.crossEntropy(x, fromND(y, 'int32', 'cpu'), opts);
        l.backward(fromND(up, 'float32', 'cpu'));
        return l;
      });
      const got = [await loss.toArray(), await x.grad!.toArray()] as const;
      const now = cpuKernelCounters();
      assert.equal(now.crossEntropyWasm - before.crossEntropyWasm, 2, 'forward and backward on WASM');
      assert.equal(now.crossEntropyThreaded - before.crossEntropyThreaded, threads && ready ? 2 : 0);
      results.push(got);
    }
    const [pooled, single] = results as [readonly ArrayLike<number>[], readonly ArrayLike<number>[]];
    const want = O.crossEntropy(zf, y, opts);
    assertClose(pooled[0]!, want, { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: 'pooled loss' });
    // the float64 gradient of sum(up * loss) with respect to z
    const p = O.softmax(zf, -1);
    const g = O.nd([n, c]);
    for (let r = 0; r < n; r++) {
      if (y.data[r] === ignore) continue;
      for (let j = 0; j < c; j++) {
        const onehot = j === y.data[r] ? 1 - eps : 0;
        g.data[r * c + j] = up.data[r]! * (p.data[r * c + j]! - onehot - eps / c);
      }
    }
    assertClose(pooled[1]!, g, { dtype: 'float32', rtol: 1e-4, atol: 1e-7, what: 'pooled gradient' });
    assert.deepEqual(Array.from(pooled[0]!), Array.from(single[0]!), 'pooled and single-threaded losses differ');
    assert.deepEqual(pooled[1]!, single[1]!, 'pooled and single-threaded gradients differ');
  });
});
