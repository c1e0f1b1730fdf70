// Memory in the steady state: a training step wrapped in tidy (forward, backward, clip, step,
// zeroGrad in place) leaves the number of live tensors and live backend buffers unchanged, reuses
// the gradient buffers, and never reads from the device. Its own file, so nothing else allocates meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import '../../src/autograd/index.js';
import { Adam, AdamW, SGD, clipGradNorm_, type Optimizer } from '../../src/optim/index.js';
import { Tensor, getBackend, liveTensors, tensor, tidy } from '../../src/tensor/index.js';
import { testRng } from '../helpers/random.js';
import { f32Normals, param } from './reference.js';

const MAKERS: [string, (ps: Tensor[]) => Optimizer][] = [
  ['SGD nesterov + weight decay', (ps) => new SGD(ps, { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
  ['Adam amsgrad + L2', (ps) => new Adam(ps, { lr: 0.01, amsgrad: true, weightDecay: 1e-3 })],
  ['AdamW', (ps) => new AdamW(ps, { lr: 0.01 })],
];

for (const [name, make] of MAKERS) {
  test(`${name}: steady-state steps allocate no persistent tensor or buffer`, (t) => {
    const rng = testRng(`memory ${name}`, t);
    const backend = getBackend('cpu');
    const x = tensor(Float32Array.from(f32Normals(rng, 8 * 4)), { shape: [8, 4] });
    const y = tensor(Float32Array.from(f32Normals(rng, 8 * 3)), { shape: [8, 3] });
    const w = param(f32Normals(rng, 12, 0.5), [4, 3]);
    const b = param(f32Normals(rng, 3, 0.5), [3]);
    const opt = make([w, b]);
    const live: [number, number][] = [];
    let grads: (Tensor | null)[] = [];
    const downloaded = backend.stats().bytesDownloaded;
    for (let i = 0; i < 6; i++) {
      tidy(() => {
        const d = x.matmul(w).add(b).sub(y);
        d.mul(d).mean().backward();
        clipGradNorm_([w, b], 1);
        opt.step();
        opt.zeroGrad();
      });
      if (i === 0) grads = [w.grad, b.grad];
      else assert.deepEqual([w.grad, b.grad], grads, `step ${i}: the gradient buffers are reused`);
      live.push([liveTensors(), backend.stats().liveBuffers]);
    }
    assert.ok(grads.every((g) => g instanceof Tensor));
    for (let i = 1; i < live.length; i++) {
      assert.deepEqual(live[i], live[0], `after step ${i}: [live tensors, live buffers] ${JSON.stringify(live)}`);
    }
    assert.equal(backend.stats().bytesDownloaded, downloaded, 'no host reads during training steps');
    opt.dispose();
  });
}
