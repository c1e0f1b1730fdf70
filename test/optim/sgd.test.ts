// SGD against a float64 re-implementation of torch.optim.SGD's documented algorithm: plain,
// momentum, dampening, Nesterov, weight decay and maximize, over several steps of random gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SGD, type SGDOptions } from '../../src/optim/index.js';
import { testRng } from '../helpers/random.js';
import { checkAgainstReference, param, sgdRefStep, type SgdHyper } from './reference.js';

const BASE: SgdHyper = { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false };

const CASES: { name: string; h: Partial<SgdHyper> }[] = [
  { name: 'plain', h: {} },
  { name: 'momentum', h: { momentum: 0.9 } },
  { name: 'momentum + dampening', h: { momentum: 0.9, dampening: 0.3 } },
  { name: 'nesterov', h: { momentum: 0.8, nesterov: true } },
  { name: 'weight decay', h: { weightDecay: 0.05 } },
  { name: 'momentum + weight decay', h: { momentum: 0.9, weightDecay: 0.01, lr: 0.05 } },
  {
    name: 'nesterov + weight decay + maximize',
    h: { momentum: 0.5, nesterov: true, weightDecay: 0.1, maximize: true },
  },
  { name: 'maximize + dampening', h: { momentum: 0.7, dampening: 0.5, maximize: true, lr: 0.3 } },
];

for (const c of CASES) {
  test(`SGD ${c.name} matches the float64 reference`, async (t) => {
    const h: SgdHyper = { ...BASE, ...c.h };
    const opts: Partial<SGDOptions> = { ...h };
    await checkAgainstReference({
      rng: testRng(`sgd ${c.name}`, t),
      what: `SGD ${c.name}`,
      make: (params) => new SGD(params, opts),
      refStep: (p, g) => sgdRefStep(p, g, h),
      stateNames: h.momentum !== 0 ? ['momentumBuffer'] : [],
    });
  });
}

test('SGD defaults follow torch', () => {
  assert.deepEqual(
    { ...new SGD([param([1], [1])]).defaults },
    { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false },
  );
});
