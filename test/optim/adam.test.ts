// Adam and AdamW against a float64 re-implementation of torch.optim.Adam / AdamW's documented
// algorithm: bias correction, eps outside the square root, L2 vs decoupled decay, AMSGrad, maximize.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Adam, AdamW, type AdamOptions } from '../../src/optim/index.js';
import { tensor } from '../../src/tensor/index.js';
import { testRng } from '../helpers/random.js';
import { adamRefStep, checkAgainstReference, param, type AdamHyper } from './reference.js';

const BASE: AdamHyper = {
  lr: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  amsgrad: false,
  maximize: false,
  decoupled: false,
};

const CASES: { name: string; h: Partial<AdamHyper> }[] = [
  { name: 'Adam', h: {} },
  { name: 'Adam + L2 weight decay', h: { weightDecay: 0.1 } },
  { name: 'Adam, other betas, large eps', h: { beta1: 0.5, beta2: 0.9, eps: 1e-3, lr: 0.1 } },
  { name: 'Adam amsgrad + maximize', h: { amsgrad: true, maximize: true, weightDecay: 0.05 } },
  { name: 'AdamW', h: { decoupled: true, weightDecay: 0.01 } },
  { name: 'AdamW strong decay', h: { decoupled: true, weightDecay: 0.5, lr: 0.1 } },
  { name: 'AdamW amsgrad', h: { decoupled: true, weightDecay: 0.1, amsgrad: true, beta2: 0.95 } },
];

for (const c of CASES) {
  test(`${c.name} matches the float64 reference`, async (t) => {
    const h: AdamHyper = { ...BASE, ...c.h };
    const opts: Partial<AdamOptions> = {
      lr: h.lr,
      betas: [h.beta1, h.beta2],
      eps: h.eps,
      weightDecay: h.weightDecay,
      amsgrad: h.amsgrad,
      maximize: h.maximize,
    };
    await checkAgainstReference({
      rng: testRng(c.name, t),
      what: c.name,
      make: (params) => (h.decoupled ? new AdamW(params, opts) : new Adam(params, opts)),
      refStep: (p, g) => adamRefStep(p, g, h),
      stateNames: h.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq'] : ['expAvg', 'expAvgSq'],
      steps: 8,
    });
  });
}

test('Adam with small gradients: eps is added after the bias-corrected square root', async (t) => {
  // with |g| ~ 1e-6, sqrt(v̂) ~ 1e-6 is comparable to eps = 1e-6, so placing eps wrongly (inside the
  // root, or before bias correction) changes the update by tens of percent
  const h: AdamHyper = { ...BASE, eps: 1e-6, lr: 0.1 };
  await checkAgainstReference({
    rng: testRng('adam small grads', t),
    what: 'Adam small gradients',
    make: (params) => new Adam(params, { lr: h.lr, eps: h.eps }),
    refStep: (p, g) => adamRefStep(p, g, h),
    stateNames: ['expAvg', 'expAvgSq'],
    gradStd: 1e-6,
    steps: 4,
  });
});

test('Adam and AdamW defaults follow torch', () => {
  const common = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, amsgrad: false, maximize: false };
  assert.deepEqual({ ...new Adam([param([1], [1])]).defaults }, { ...common, weightDecay: 0 });
  assert.deepEqual({ ...new AdamW([param([1], [1])]).defaults }, { ...common, weightDecay: 1e-2 });
  assert.deepEqual(
    { ...new AdamW([param([1], [1])], { weightDecay: undefined, lr: 0.5 }).defaults },
    { ...common, lr: 0.5, weightDecay: 1e-2 },
  );
});

test('Adam with lr 0 leaves parameters unchanged but advances its moments', async () => {
  const p = param([1, -2, 3], [3]);
  const opt = new Adam([p], { lr: 0 });
  p.grad = tensor([0.5, 0.5, 0.5]);
  opt.step();
  assert.deepEqual(Array.from(await p.toArray()), [1, -2, 3]);
  const m = opt.stateDict().state[0]!.tensors.expAvg!;
  assert.deepEqual(Array.from(await m.toArray()), [0.05, 0.05, 0.05].map(Math.fround));
});
