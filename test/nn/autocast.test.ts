// autocast on every backend with float16 (the CPU; WebGPU with shader-f16, else skipped): linear and attention compute in float16 inside the scope
// and match their float32 results within float16 tolerance, gradients reach the float32 parameters as
// float32, the softmax of attention runs in float32, and the scope is synchronous and nests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Linear, autocast, autocastDType } from '../../src/nn/index.js';
import { Generator, randn, tidy, type Tensor } from '../../src/tensor/index.js';
import '../../src/autograd/index.js';
import { forEachBackendAsDefault, needsDTypes } from '../helpers/backends.js';

/** Largest |a - b| relative to max |b|. */
async function relErr(a: Tensor, b: Tensor): Promise<number> {
  const x = await a.toArray();
  const y = await b.toArray();
  let d = 0;
  let m = 0;
  for (let i = 0; i < y.length; i++) {
    d = Math.max(d, Math.abs(x[i]! - y[i]!));
    m = Math.max(m, Math.abs(y[i]!));
  }
  return d / m;
}

forEachBackendAsDefault((device) => {
  test(
    'Linear under autocast: float16 output near the float32 one, float32 gradients on float32 weights',
    needsDTypes(device, ['float16']),
    async () => {
      const g = new Generator(1);
      const lin = new Linear(24, 12, { generator: g });
      const x = randn([5, 24], { generator: g });
      const y32 = lin.forward(x);
      const y16 = autocast('float16', () => lin.forward(x));
      assert.equal(y32.dtype, 'float32');
      assert.equal(y16.dtype, 'float16');
      assert.ok((await relErr(y16, y32)) < 1e-2, 'float16 tolerance');

      y32.sum().backward();
      const w32 = Float32Array.from(await lin.weight.grad!.toArray());
      lin.weight.grad = null;
      lin.bias!.grad = null;
      y16.cast('float32').sum().backward();
      assert.equal(lin.weight.dtype, 'float32');
      assert.equal(lin.weight.grad!.dtype, 'float32', 'the cast rule brings the gradient back to float32');
      const w16 = await lin.weight.grad!.toArray();
      let d = 0;
      for (let i = 0; i < w32.length; i++) d = Math.max(d, Math.abs(w16[i]! - w32[i]!));
      assert.ok(d < 1e-2 * Math.max(...w32.map(Math.abs)), `weight grad within float16 tolerance (${d})`);
    },
  );

  test(
    'attention under autocast: float16 matmuls, float32 softmax, causal result near float32',
    needsDTypes(device, ['float16']),
    async () => {
      const g = new Generator(2);
      const [q, k, v] = [0, 1, 2].map(() => randn([2, 2, 6, 8], { generator: g })) as [Tensor, Tensor, Tensor];
      const ref = F.scaledDotProductAttention(q, k, v, { causal: true });
      const out = autocast('float16', () => F.scaledDotProductAttention(q, k, v, { causal: true }));
      assert.equal(out.dtype, 'float16');
      assert.ok((await relErr(out, ref)) < 1e-2);
      // the first query sees only the first key: its output is v's first row (rounded to float16)
      const first = tidy(() => out.narrow(2, 0, 1).cast('float32'));
      assert.ok((await relErr(first, v.narrow(2, 0, 1).contiguous())) < 1e-3);
    },
  );

  test('the scope nests, float32 turns it off inside, and async functions are refused', async () => {
    assert.equal(autocastDType(), null);
    autocast('float16', () => {
      assert.equal(autocastDType(), 'float16');
      autocast('float32', () => assert.equal(autocastDType(), null));
      assert.equal(autocastDType(), 'float16');
    });
    assert.equal(autocastDType(), null);
    assert.throws(() => autocast('float16', async () => 1), /must be synchronous/);
    assert.equal(autocastDType(), null, 'restored after the error');
    assert.throws(() => autocast('bfloat16' as 'float16', () => 1), /dtype must be 'float16' or 'float32'/);
  });
});
