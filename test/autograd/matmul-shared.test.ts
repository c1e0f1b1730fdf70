// The gradient of a weight shared across a batch ((..., m, k) @ (k, n): Linear layers, the tied GPT head)
// must be one (k, rows) @ (rows, n) product, not a per-item product summed afterwards: the latter builds a
// (batch, k, n) temporary (400+ MB for a GPT-2 head) and a reduction over it. The values are checked by
// the finite-difference suite (grad-ops.test.ts); this checks the kernels that ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend, randn, tidy, type DeviceName } from '../../src/index.js';
import '../../src/autograd/index.js';
import { forEachBackend } from '../helpers/backends.js';

forEachBackend((device: DeviceName) => {
  test('a shared 2-D weight gets its gradient from one matmul and no sum over the batch', async () => {
    const backend = getBackend(device);
    const x = randn([4, 3, 8], { device });
    const w = randn([8, 5], { device, requiresGrad: true });
    const y = tidy(() => x.matmul(w).sum());
    await backend.sync();
    backend.setProfiling(true);
    tidy(() => y.backward());
    await backend.sync();
    const profile = await backend.takeProfile();
    backend.setProfiling(false);
    const count = (re: RegExp) => profile.kernels.filter((k) => re.test(k.name)).reduce((s, k) => s + k.count, 0);
    assert.equal(count(/matmul/), 1, 'one matmul (the weight gradient; x needs no gradient)');
    assert.equal(count(/sum/), 0, 'no reduction over a per-item weight gradient');
    assert.deepEqual(w.grad?.shape, [8, 5]);
    for (const t of [x, w, y]) t.dispose();
    w.grad?.dispose();
  });
});
