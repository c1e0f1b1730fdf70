// Gradient accumulation without temporaries: once a leaf has a .grad buffer (zeroed in place between
// steps), an embedding backward index-adds straight into it. Checked by recording every allocation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { embedding, getBackend, noGrad, randn, tensor, tidy } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { testRng } from '../helpers/random.js';

forEachBackend((device) => {
  test('embedding backward accumulates into an existing .grad with no table-sized buffer', async (t) => {
    const rng = testRng('embedding accumulate', t);
    const V = 97;
    const D = 24;
    const W = randn([V, D], { device, requiresGrad: true });
    const ids = Array.from({ length: 40 }, () => rng.int(0, V)); // duplicates likely
    const idT = tensor(Int32Array.from(ids), { shape: [5, 8], device });
    const step = () => tidy(() => embedding(idT, W).sum().backward());
    step(); // creates W.grad
    noGrad(() => W.grad!.zero_());

    const backend = getBackend(device);
    const sizes: number[] = [];
    const alloc = backend.alloc.bind(backend);
    backend.alloc = (bytes: number) => {
      sizes.push(bytes);
      return alloc(bytes);
    };
    try {
      step();
      step();
    } finally {
      backend.alloc = alloc;
    }
    const table = V * D * 4;
    assert.ok(
      sizes.every((b) => b < table),
      `no allocation as large as the ${table}-byte table, got [${sizes.join(', ')}]`,
    );
    // d(sum of looked-up rows)/dW[v, :] = 2 * (number of times v appears), after two steps
    const counts = new Array<number>(V).fill(0);
    for (const v of ids) counts[v]!++;
    const g = await W.grad!.toArray();
    for (let v = 0; v < V; v++) for (let j = 0; j < D; j++) assert.equal(g[v * D + j], 2 * counts[v]!);
  });
});
