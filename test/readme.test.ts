// The README's library example, run as written: a Linear layer fitted with AdamW must recover the
// weights that generated the data (the oracle is the generating matrix itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, F, Linear, randn, tensor, tidy } from '../src/index.js';

test('README example: Linear + AdamW recovers the generating weights', async () => {
  const model = new Linear(3, 1);
  const opt = new AdamW(model.parameters(), { lr: 5e-2 });
  const x = randn([64, 3]);
  const y = x.matmul(tensor([[1], [-2], [0.5]]));
  for (let step = 0; step < 300; step++) {
    tidy(() => {
      const loss = F.mseLoss(model.forward(x), y);
      loss.backward();
      opt.step();
      opt.zeroGrad();
    });
  }
  const w = (await model.weight.toNested()) as number[][];
  [1, -2, 0.5].forEach((want, i) =>
    assert.ok(Math.abs(w[0]![i]! - want) < 0.05, `weight ${i}: ${w[0]![i]} vs ${want}`),
  );
});
