// In-place ops whose input overlaps the target through a different view must read the input as it
// was before the write (expected values follow from the definition: out = old_target op old_input).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { testRng } from '../helpers/random.js';

forEachBackend((device) => {
  test('x.add_(x.transpose()) uses the old values of x', async (t) => {
    const rng = testRng('alias add', t);
    const n = 5;
    const vals = Array.from({ length: n * n }, () => rng.int(-50, 50));
    const x = tensor(new Float32Array(vals), { shape: [n, n], device });
    noGrad(() => x.add_(x.transpose()));
    const got = await x.toArray();
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) assert.equal(got[i * n + j], vals[i * n + j]! + vals[j * n + i]!);
  });

  test('copy_ between overlapping slices of one tensor shifts like memmove', async () => {
    const y = tensor([1, 2, 3, 4, 5], { device });
    noGrad(() => y.slice(0, 1, 5).copy_(y.slice(0, 0, 4)));
    assert.deepEqual(Array.from(await y.toArray()), [1, 1, 2, 3, 4]);
  });

  test('an in-place op reading a broadcast row of its own target uses the old row', async () => {
    const m = tensor(
      [
        [1, 2],
        [10, 20],
      ],
      { device },
    );
    noGrad(() => m.mul_(m.select(0, 0))); // every row times the old first row [1, 2]
    assert.deepEqual(await m.toNested(), [
      [1, 4],
      [10, 40],
    ]);
  });
});
