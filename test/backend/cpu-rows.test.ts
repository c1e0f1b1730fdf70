// The CPU backend's fast paths for the GPT training step's large row work, against the float64 oracle:
// softmax cross-entropy rows on the WASM SIMD kernels (forward and backward; odd widths, -Inf and NaN
// logits, ignored rows, label smoothing, strided rows), batched matmuls with a broadcast B folded into one
// GEMM, and the blocked sum over leading rows. Counters prove each fast path ran.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { F, matmul, sum, tensor, tidy, type Tensor } from '../../src/index.js';
import { cpuKernelCounters, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { assertClose } from '../helpers/assert.js';
import { randomIndices, randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { expectTensor, fromND } from '../ops/util.js';

const defaults = setCpuKernelOptions({});
after(() => setCpuKernelOptions(defaults));

/** The float64 gradient of sum(up * crossEntropy(z, y, reduction none)) with respect to z (rows of C). */
function ceGrad(z: O.ND, y: O.ND, up: O.ND, ignore: number, eps: number): O.ND {
  const c = z.shape[z.shape.length - 1]!;
  const p = O.softmax(z, -1);
  const g = O.nd(z.shape);
  for (let r = 0; r < y.data.length; r++) {
    const t = y.data[r]!;
    if (t === ignore) continue;
    for (let j = 0; j < c; j++) {
      const onehot = j === t ? 1 - eps : 0;
      g.data[r * c + j] = up.data[r]! * (p.data[r * c + j]! - onehot - eps / c);
    }
  }
  return g;
}

/** Cross-entropy (none) of `x` against targets `y` and its logits gradient for the upstream `up`. */
async function ceRun(
  x: Tensor,
  y: O.ND,
  up: O.ND,
  ignore: number,
  eps: number,
): Promise<[ArrayLike<number>, ArrayLike<number>]> {
  const loss = tidy(() => {
    const l = F.crossEntropy(x, fromND(y, 'int32', 'cpu'), {
      ignoreIndex: ignore,
      labelSmoothing: eps,
      reduction: 'none',
    });
    l.backward(fromND(up, 'float32', 'cpu'));
    return l;
  });
  return [await loss.toArray(), await x.grad!.toArray()];
}

describe('cpu row fast paths', () => {
  test('cross-entropy rows run on the WASM kernels and match the oracle (forward and gradient)', async (t) => {
    const rng = testRng('cpu ce rows', t);
    setCpuKernelOptions({ crossEntropyMinCols: 8 });
    const cases = [
      { n: 5, c: 1027, eps: 0, ignore: -100 }, // a tail of 3 past the 4-lane vectors
      { n: 3, c: 8, eps: 0.1, ignore: 2 },
      { n: 4, c: 2049, eps: 0.25, ignore: -1 },
    ];
    for (const cs of cases) {
      const z = randomND(rng, [cs.n, cs.c], { low: -30, high: 30 });
      z.data[1] = -1e30; // a masked logit: exp underflows to 0 (zero probability and gradient)
      const y = randomIndices(rng, [cs.n], cs.c);
      y.data[1] = cs.ignore;
      const up = randomND(rng, [cs.n], { low: -2, high: 2 });
      const x = fromND(z, 'float32', 'cpu').requiresGrad_();
      const before = cpuKernelCounters().crossEntropyWasm;
      const [loss, grad] = await ceRun(x, y, up, cs.ignore, cs.eps);
      assert.equal(cpuKernelCounters().crossEntropyWasm - before, 2, 'forward and backward on WASM');
      const zf = O.roundND(z, 'float32');
      const what = `ce ${JSON.stringify(cs)}`;
      const want = O.crossEntropy(zf, y, { ignoreIndex: cs.ignore, labelSmoothing: cs.eps, reduction: 'none' });
      assertClose(loss, want, { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: `${what} loss` });
      assertClose(grad, ceGrad(zf, y, up, cs.ignore, cs.eps), { dtype: 'float32', rtol: 1e-4, atol: 1e-6, what });
    }
  });

  test('cross-entropy rows: all -Inf, NaN and strided rows on the WASM kernels', async () => {
    setCpuKernelOptions({ crossEntropyMinCols: 8 });
    const c = 13;
    const rows = [
      Array.from({ length: c }, () => -Infinity), // logsumexp -Inf: the target's loss is NaN (-Inf + Inf)
      Array.from({ length: c }, (_, j) => (j === 4 ? NaN : j)),
      Array.from({ length: c }, (_, j) => j / 3),
    ];
    const z = O.nd([3, c], rows.flat());
    const y = O.nd([3], [0, 1, 5]);
    const want = O.crossEntropy(z, y, { reduction: 'none' });
    const got = await F.crossEntropy(tensor(z.data, { shape: [3, c], device: 'cpu' }), fromND(y, 'int32', 'cpu'), {
      reduction: 'none',
    }).toArray();
    assertClose(got, want, { dtype: 'float32', what: 'special rows' });
    // every other row of a wider matrix: row stride 2c, unit column stride
    const wide = randomND(testRng('cpu ce strided'), [6, c], { low: -5, high: 5 });
    const x = fromND(wide, 'float32', 'cpu')
      .reshape([3, 2 * c])
      .slice(1, 0, c);
    const picked = O.nd(
      [3, c],
      [0, 2, 4].flatMap((r) => Array.from(wide.data.subarray(r * c, r * c + c))),
    );
    const before = cpuKernelCounters().crossEntropyWasm;
    const loss = await F.crossEntropy(x, fromND(y, 'int32', 'cpu'), { reduction: 'none' }).toArray();
    assert.equal(cpuKernelCounters().crossEntropyWasm - before, 1);
    assertClose(loss, O.crossEntropy(O.roundND(picked, 'float32'), y, { reduction: 'none' }), {
      dtype: 'float32',
      what: 'strided rows',
    });
  });

  test('a batched matmul with a broadcast B folds into one GEMM and matches the oracle', async (t) => {
    const rng = testRng('cpu matmul fold', t);
    setCpuKernelOptions({ wasm: true });
    const a = randomND(rng, [3, 2, 37, 40]);
    const b = randomND(rng, [40, 53]);
    const before = cpuKernelCounters();
    const got = matmul(fromND(a, 'float32', 'cpu'), fromND(b, 'float32', 'cpu'));
    await expectTensor(got, O.roundND(O.matmul(a, b), 'float32'), 'float32', { what: 'folded matmul', terms: 40 });
    const now = cpuKernelCounters();
    assert.equal(now.matmulWasm - before.matmulWasm, 1, 'one GEMM for all 6 batch items');
    assert.equal(now.matmulJs - before.matmulJs, 0);
  });

  test('sums over leading rows (blocked, four rows at a time) match the oracle', async (t) => {
    const rng = testRng('cpu sum rows', t);
    for (const shape of [
      [7, 3, 2500],
      [4, 5000],
      [1, 9],
      [2, 3],
    ]) {
      const a = randomND(rng, shape);
      const terms = shape[0]!;
      await expectTensor(sum(fromND(a, 'float32', 'cpu'), 0), O.roundND(O.sum(a, 0), 'float32'), 'float32', {
        what: `sum [${shape}] over axis 0`,
        terms,
      });
    }
  });
});
