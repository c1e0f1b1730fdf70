// LR schedules against their formulas (written out again here) at several steps including the
// boundaries, and LRScheduler driving an optimizer's groups, resuming from a state dict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LRScheduler, SGD, constantLR, cosineAnnealing, linearLR, warmupCosine } from '../../src/optim/index.js';
import { param } from './reference.js';

function near(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)),
    `${what}: got ${actual}, expected ${expected}`,
  );
}

test('constantLR: lr·factor before totalIters, lr after', () => {
  const plain = constantLR({ lr: 0.3 });
  for (const s of [0, 1, 100]) near(plain(s), 0.3, `plain step ${s}`);
  const f = constantLR({ lr: 0.3, factor: 0.5, totalIters: 4 });
  const expect = [0.15, 0.15, 0.15, 0.15, 0.3, 0.3];
  expect.forEach((e, s) => near(f(s), e, `step ${s}`));
});

test('linearLR: warmup and decay between factors, then the end factor', () => {
  const warm = linearLR({ lr: 2, startFactor: 0, endFactor: 1, totalIters: 4 });
  [0, 0.5, 1, 1.5, 2, 2, 2].forEach((e, s) => near(warm(s), e, `warmup step ${s}`));
  const decay = linearLR({ lr: 1, startFactor: 1, endFactor: 0.1, totalIters: 10 });
  for (const s of [0, 1, 5, 9, 10, 11, 50]) near(decay(s), 1 + ((0.1 - 1) * Math.min(s, 10)) / 10, `decay step ${s}`);
  const torchDefaults = linearLR({ lr: 3 });
  near(torchDefaults(0), 1, 'torch default start 1/3');
  near(torchDefaults(5), 3, 'torch default end after 5 steps');
  near(
    linearLR({ lr: 1, startFactor: 0.5, endFactor: 0.25, totalIters: 0 })(0),
    0.25,
    'totalIters 0 gives the end factor',
  );
});

test('cosineAnnealing: torch closed form, periodic after tMax', () => {
  const f = cosineAnnealing({ lr: 1, tMax: 10, etaMin: 0.1 });
  near(f(0), 1, 'start');
  near(f(5), 0.55, 'half way');
  near(f(10), 0.1, 'tMax');
  near(f(15), 0.55, 'rises again after tMax like torch');
  for (const s of [1, 3, 7, 9]) near(f(s), 0.1 + (0.9 * (1 + Math.cos((Math.PI * s) / 10))) / 2, `step ${s}`);
});

/** build-nanogpt's get_lr, transcribed. */
function nanoGptLr(it: number, maxLr: number, minLr: number, warmup: number, maxSteps: number): number {
  if (it < warmup) return (maxLr * (it + 1)) / warmup;
  if (it > maxSteps) return minLr;
  const decayRatio = (it - warmup) / (maxSteps - warmup);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * decayRatio));
  return minLr + coeff * (maxLr - minLr);
}

test('warmupCosine matches nanoGPT at every step, boundaries included', () => {
  const f = warmupCosine({ warmupSteps: 10, totalSteps: 50, maxLr: 6e-4, minLr: 6e-5 });
  for (let s = 0; s <= 60; s++) near(f(s), nanoGptLr(s, 6e-4, 6e-5, 10, 50), `step ${s}`);
  near(f(0), 6e-5, 'step 0 is maxLr/warmup, not 0');
  near(f(9), 6e-4, 'last warmup step reaches maxLr');
  near(f(10), 6e-4, 'cosine starts at maxLr');
  near(f(30), 3.3e-4, 'midpoint of the decay');
  near(f(50), 6e-5, 'minLr at totalSteps');
  near(f(1000), 6e-5, 'minLr after');
  near(warmupCosine({ warmupSteps: 0, totalSteps: 4, maxLr: 1 })(0), 1, 'no warmup; minLr defaults to maxLr/10');
  near(warmupCosine({ warmupSteps: 0, totalSteps: 4, maxLr: 1 })(4), 0.1, 'default minLr');
});

test('schedules reject invalid arguments and steps', () => {
  assert.throws(
    () => warmupCosine({ warmupSteps: 10, totalSteps: 10, maxLr: 1 }),
    /totalSteps 10; it must be an integer > warmupSteps/,
  );
  assert.throws(() => cosineAnnealing({ lr: 1, tMax: 0 }), /tMax/);
  assert.throws(() => linearLR({ lr: -1 }), /invalid lr -1/);
  assert.throws(() => constantLR({ lr: 1 })(-1), /invalid step -1/);
  assert.throws(() => constantLR({ lr: 1 })(1.5), /invalid step 1.5/);
});

test('LRScheduler sets every group (keeping their ratio), steps, and resumes from a state dict', () => {
  const a = param([1], [1]);
  const b = param([2], [1]);
  const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.2 }], { lr: 0.1 });
  const sched = warmupCosine({ warmupSteps: 2, totalSteps: 6, maxLr: 1, minLr: 0 });
  const s = new LRScheduler(opt, sched);
  near(opt.paramGroups[0]!.lr, sched(0), 'step 0 set at construction');
  near(opt.paramGroups[1]!.lr, 2 * sched(0), 'second group keeps its 2x ratio');
  for (let i = 1; i <= 4; i++) near(s.step(), sched(i), `step ${i}`);
  assert.equal(s.currentStep, 4);
  near(opt.lr, sched(4), 'optimizer.lr reads the first group');
  const saved = s.stateDict();
  const opt2 = new SGD([param([1], [1])], { lr: 0.1 });
  const s2 = new LRScheduler(opt2, sched);
  s2.loadStateDict(saved);
  near(opt2.lr, sched(4), 'resumed rate');
  near(s2.step(), sched(5), 'continues identically');
});
