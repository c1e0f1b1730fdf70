// The CPU backend's WASM SIMD row kernels for softmax / logSoftmax (forward) and layerNorm (forward and
// input gradient) against the float64 oracle: odd widths (tails past the 4-lane vectors), a width of 1,
// -Inf, masked and NaN logits, an all -Inf row, rows with a large common offset (the centered variance),
// scalar weight and bias. The size threshold is lowered so small cases run there; a counter proves it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { F, tensor, tidy, type Tensor } from '../../src/index.js';
import { cpuKernelCounters } from '../../src/backend/cpu/index.js';
import { setRowKernelOptions } from '../../src/backend/cpu/wasmrows.js';
import { assertClose } from '../helpers/assert.js';
import { randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';

const defaults = setRowKernelOptions({ minElements: 1 });
after(() => setRowKernelOptions(defaults));

const put = (a: O.ND, requiresGrad = false): Tensor =>
  tensor(a.data, { shape: a.shape, device: 'cpu', dtype: 'float32', requiresGrad });

/** The float64 input gradient of sum(gy * layerNorm(x) over the last dim) with weight w. */
function refLayerNormGx(x: O.ND, w: O.ND | null, gy: O.ND, eps: number): O.ND {
  const d = x.shape[x.shape.length - 1]!;
  const rows = x.data.length / d;
  const gx = O.nd(x.shape);
  for (let r = 0; r < rows; r++) {
    const xr = x.data.subarray(r * d, r * d + d);
    const mean = xr.reduce((s, v) => s + v, 0) / d;
    const rstd = 1 / Math.sqrt(xr.reduce((s, v) => s + (v - mean) ** 2, 0) / d + eps);
    const h = Array.from(xr, (v) => (v - mean) * rstd);
    const v = h.map((_, j) => gy.data[r * d + j]! * (w ? w.data[j]! : 1));
    const ma = v.reduce((s, q) => s + q, 0) / d;
    const mb = v.reduce((s, q, j) => s + q * h[j]!, 0) / d;
    for (let j = 0; j < d; j++) gx.data[r * d + j] = rstd * (v[j]! - ma - h[j]! * mb);
  }
  return gx;
}

describe('cpu WASM softmax and layerNorm rows', () => {
  test('softmax and logSoftmax rows match the oracle (odd widths, masked, -Inf, NaN rows)', async (t) => {
    const rng = testRng('cpu wasm softmax rows', t);
    for (const shape of [
      [5, 1027],
      [2, 3, 8],
      [7, 1],
      [4, 130],
    ]) {
      const z = O.roundND(randomND(rng, shape, { low: -30, high: 30 }), 'float32');
      const c = shape[shape.length - 1]!;
      if (c > 4) {
        z.data[1] = -1e30; // a masked logit: probability exactly 0
        z.data[c + 2] = -Infinity;
        z.data.fill(-Infinity, 2 * c, 3 * c); // an all -Inf row: NaN (softmax), -Inf (logSoftmax)
        if (z.data.length >= 4 * c) z.data[3 * c + c - 1] = NaN; // NaN in the tail: the whole row NaN
      }
      for (const log of [false, true]) {
        const before = cpuKernelCounters().rowsWasm;
        const x = put(z);
        const got = await (log ? F.logSoftmax(x, -1) : F.softmax(x, -1)).toArray();
        assert.equal(cpuKernelCounters().rowsWasm - before, 1, 'ran on the WASM row kernel');
        const want = log ? O.logSoftmax(z, -1) : O.softmax(z, -1);
        assertClose(got, want, {
          dtype: 'float32',
          rtol: 1e-5,
          atol: 1e-6,
          what: `${log ? 'log' : ''}softmax [${shape}]`,
        });
      }
    }
  });

  test('layerNorm forward and input gradient rows match the oracle', async (t) => {
    const rng = testRng('cpu wasm layerNorm rows', t);
    const cases = [
      { rows: 5, d: 1027, affine: true, shift: 0 },
      { rows: 6, d: 8, affine: true, shift: 100 }, // a large mean: the variance is taken around it
      { rows: 3, d: 3, affine: false, shift: -7 },
      { rows: 9, d: 256, affine: false, shift: 0 },
    ];
    for (const cs of cases) {
      const x = O.roundND(randomND(rng, [cs.rows, cs.d], { low: cs.shift - 2, high: cs.shift + 2 }), 'float32');
      const w = O.roundND(randomND(rng, [cs.d], { low: 0.5, high: 1.5 }), 'float32');
      const b = O.roundND(randomND(rng, [cs.d]), 'float32');
      const gy = O.roundND(randomND(rng, [cs.rows, cs.d]), 'float32');
      const X = put(x, true);
      const before = cpuKernelCounters().rowsWasm;
      const y = cs.affine ? F.layerNorm(X, cs.d, put(w), put(b)) : F.layerNorm(X, cs.d);
      const what = `layerNorm ${JSON.stringify(cs)}`;
      const want = O.layerNorm(x, 1, cs.affine ? { weight: w, bias: b } : {});
      assertClose(await y.toArray(), want, { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what });
      tidy(() => y.mul(put(gy)).sum().backward());
      assert.equal(cpuKernelCounters().rowsWasm - before, 2, 'forward and backward on the WASM row kernels');
      assertClose(await X.grad!.toArray(), refLayerNormGx(x, cs.affine ? w : null, gy, 1e-5), {
        dtype: 'float32',
        rtol: 1e-4,
        atol: 1e-5,
        what: `${what} gx`,
      });
      X.dispose();
      y.dispose();
    }
  });

  test('below the size threshold the JS kernels run', async () => {
    const prev = setRowKernelOptions({ minElements: 1 << 16 });
    try {
      const before = cpuKernelCounters().rowsWasm;
      const z = O.nd(
        [4, 16],
        Array.from({ length: 64 }, (_, i) => Math.sin(i)),
      );
      assertClose(await F.softmax(put(z), -1).toArray(), O.softmax(z, -1), { dtype: 'float32', what: 'js softmax' });
      assert.equal(cpuKernelCounters().rowsWasm - before, 0);
    } finally {
      setRowKernelOptions(prev);
    }
  });
});
