// Gradient accumulation without temporaries: once a leaf has a .grad buffer (zeroed in place between
// steps), an embedding backward index-adds straight into it. Checked by recording every allocation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, embedding, getBackend, noGrad, randn, tensor, tidy } from '../../src/index.js';
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

forEachBackend((device) => {
  test('a Linear weight gradient accumulates into .grad in its matmul (no add), values exact', async (t) => {
    const rng = testRng('linear accumulate layout', t);
    const [N, IN, OUT] = [6, 5, 7];
    const xs = Array.from({ length: N * IN }, () => rng.uniform(-1, 1));
    const x = tensor(Float32Array.from(xs), { shape: [N, IN], device });
    const W = randn([OUT, IN], { device, requiresGrad: true }); // F.linear multiplies by W^T, a strided view
    const step = () => tidy(() => F.linear(x, W).sum().backward());
    step(); // creates W.grad
    const backend = getBackend(device);
    let adds = 0;
    const run = backend.run.bind(backend);
    backend.run = (op, inputs, out, attrs) => {
      if (op === 'add' && out.shape.length === 2 && out.shape[0] === OUT && out.shape[1] === IN) adds++;
      return run(op, inputs, out, attrs);
    };
    try {
      step(); // accumulates into W.grad
    } finally {
      backend.run = run;
    }
    // the weight gradient accumulates in the matmul that computes it (grad += x @ y): no add at all
    assert.equal(adds, 0, 'no separate accumulation add');
    // d(sum(x W^T))/dW[o][i] = sum_n x[n][i], twice
    const colSums = Array.from({ length: IN }, (_, i) => xs.reduce((s, v, k) => (k % IN === i ? s + v : s), 0));
    const got = await W.grad!.toArray();
    for (let o = 0; o < OUT; o++)
      for (let i = 0; i < IN; i++)
        assert.ok(Math.abs(got[o * IN + i]! - 2 * colSums[i]!) < 1e-5, `W.grad[${o}][${i}] = ${got[o * IN + i]}`);
    x.dispose();
    W.dispose();
  });
});
