// Memory tests of a training step on a small transformer: inside tidy(), forward + loss + backward
// leave exactly the new gradients alive (tensor handles and backend buffers), and later steps after
// zeroGrad() add nothing at all, in training mode (dropout) as in eval mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CausalSelfAttention,
  Dropout,
  Embedding,
  F,
  Generator,
  LayerNorm,
  Linear,
  Module,
  getBackend,
  liveTensors,
  noGrad,
  tensor,
  tidy,
  type Tensor,
} from '../../src/index.js';

class TinyLM extends Module {
  wte = new Embedding(11, 8);
  wpe = new Embedding(5, 8);
  drop = new Dropout(0.2, new Generator(1));
  ln_1 = new LayerNorm(8);
  attn = new CausalSelfAttention(8, 2, { dropout: 0.1, generator: new Generator(2) });
  ln_f = new LayerNorm(8);
  head = new Linear(8, 11);

  forward(ids: Tensor, pos: Tensor): Tensor {
    return tidy(() => {
      const x = this.drop.forward(this.wte.forward(ids).add(this.wpe.forward(pos))); // (B, T, C)
      const h = x.add(this.attn.forward(this.ln_1.forward(x)));
      return this.head.forward(this.ln_f.forward(h)); // (B, T, V)
    });
  }
}

test('a tidy training step leaves only the new grads alive; repeated steps after zeroGrad add nothing', async () => {
  const backend = getBackend('cpu');
  const model = new TinyLM();
  const ids = tensor(
    [
      [1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10],
    ],
    { dtype: 'int32' },
  );
  const pos = tensor([0, 1, 2, 3, 4], { dtype: 'int32' });
  const targets = tensor(
    [
      [2, 3, 4, 5, -100],
      [7, 8, 9, 10, 0],
    ],
    { dtype: 'int32' },
  );
  const step = () =>
    tidy(() => {
      const loss = F.crossEntropy(model.forward(ids, pos), targets, { labelSmoothing: 0.1 });
      loss.backward();
    });
  const live = () => ({ tensors: liveTensors(), buffers: backend.stats().liveBuffers });
  const nParams = model.parameters().length;

  const before = live();
  step();
  const after = live();
  assert.deepEqual(
    after,
    { tensors: before.tensors + nParams, buffers: before.buffers + nParams },
    'only the gradients were added',
  );
  assert.ok(model.parameters().every((p) => p.grad !== null));

  for (const mode of ['train', 'eval'] as const) {
    model[mode]();
    for (let i = 0; i < 3; i++) {
      model.zeroGrad();
      step();
      // an optimizer-like in-place update allocates nothing that outlives its scope either
      noGrad(() => tidy(() => model.parameters().forEach((p) => p.sub_(p.grad!.mul(1e-3)))));
      assert.deepEqual(live(), after, `${mode} step ${i} left tensors or buffers behind`);
    }
  }
  const loss = tidy(() => F.crossEntropy(model.forward(ids, pos), targets));
  assert.ok(Number.isFinite(await loss.item()));
  loss.dispose();
  model.zeroGrad({ setToNone: true });
  assert.deepEqual(live(), before, 'setToNone frees the gradients');
  model.dispose();
  assert.equal(liveTensors(), before.tensors - nParams, 'dispose frees every parameter');
});
