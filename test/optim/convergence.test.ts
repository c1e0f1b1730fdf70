// Convergence: optimizers fit a noisy linear regression by full-batch training through autograd,
// and must reach the least-squares optimum's loss (computed here in float64) within a small margin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import '../../src/autograd/index.js';
import { AdamW, LRScheduler, SGD, warmupCosine, type Optimizer } from '../../src/optim/index.js';
import type { Tensor } from '../../src/tensor/index.js';
import { tensor, tidy } from '../../src/tensor/index.js';
import { testRng, type Rng } from '../helpers/random.js';
import { f32Normals, param } from './reference.js';

const N = 64;
const D = 5;
const NOISE = 0.1;

interface Problem {
  x: Tensor;
  y: Tensor;
  /** The smallest achievable mean squared error (the least-squares fit's), in float64. */
  optimum: number;
}

/** Solves the square system `a·s = r` in place by Gaussian elimination with partial pivoting. */
function solve(a: number[][], r: number[]): number[] {
  const n = r.length;
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(a[i]![c]!) > Math.abs(a[piv]![c]!)) piv = i;
    [a[c], a[piv]] = [a[piv]!, a[c]!];
    [r[c], r[piv]] = [r[piv]!, r[c]!];
    for (let i = c + 1; i < n; i++) {
      const f = a[i]![c]! / a[c]![c]!;
      for (let j = c; j < n; j++) a[i]![j]! -= f * a[c]![j]!;
      r[i]! -= f * r[c]!;
    }
  }
  const s = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let acc = r[i]!;
    for (let j = i + 1; j < n; j++) acc -= a[i]![j]! * s[j]!;
    s[i] = acc / a[i]![i]!;
  }
  return s;
}

function problem(rng: Rng): Problem {
  const xs = f32Normals(rng, N * D);
  const wTrue = f32Normals(rng, D);
  const ys = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let s = 0.5;
    for (let j = 0; j < D; j++) s += xs[i * D + j]! * wTrue[j]!;
    ys[i] = Math.fround(s + NOISE * rng.normal());
  }
  // least squares on [x, 1] through the normal equations
  const rows = Array.from({ length: N }, (_, i) => [...Array.from(xs.subarray(i * D, i * D + D)), 1]);
  const ata = Array.from({ length: D + 1 }, (_, a) =>
    Array.from({ length: D + 1 }, (_, b) => rows.reduce((s, r) => s + r[a]! * r[b]!, 0)),
  );
  const aty = Array.from({ length: D + 1 }, (_, a) => rows.reduce((s, r, i) => s + r[a]! * ys[i]!, 0));
  const beta = solve(ata, aty);
  const optimum = rows.reduce((s, r, i) => s + (r.reduce((p, v, j) => p + v * beta[j]!, 0) - ys[i]!) ** 2, 0) / N;
  return {
    x: tensor(Float32Array.from(xs), { shape: [N, D] }),
    y: tensor(Float32Array.from(ys), { shape: [N, 1] }),
    optimum,
  };
}

/** Trains W, b from zero with full-batch steps; returns the final loss. */
async function train(
  p: Problem,
  make: (ps: Tensor[]) => Optimizer,
  steps: number,
  schedule?: (opt: Optimizer) => LRScheduler,
): Promise<number> {
  const w = param(new Float64Array(D), [D, 1]);
  const b = param([0], [1]);
  const opt = make([w, b]);
  const sched = schedule?.(opt);
  const loss = (): Tensor => {
    const d = p.x.matmul(w).add(b).sub(p.y);
    return d.mul(d).mean();
  };
  for (let s = 0; s < steps; s++) {
    tidy(() => loss().backward());
    opt.step();
    opt.zeroGrad();
    sched?.step();
  }
  const final = tidy(() => loss());
  return final.item();
}

test('AdamW with warmup + cosine reaches the least-squares optimum of a noisy linear regression', async (t) => {
  const p = problem(testRng('convergence adamw', t));
  const steps = 400;
  const loss = await train(
    p,
    (ps) => new AdamW(ps, { lr: 0.1, weightDecay: 1e-4 }),
    steps,
    (opt) => new LRScheduler(opt, warmupCosine({ warmupSteps: 20, totalSteps: steps, maxLr: 0.1, minLr: 1e-4 })),
  );
  t.diagnostic(`final loss ${loss}, optimum ${p.optimum}`);
  // the noise floor is NOISE² (~0.01); 0.1% above the exact optimum is far below the distance from it
  assert.ok(loss <= p.optimum * 1.001 + 1e-7, `AdamW final loss ${loss} > 1.001 × optimum ${p.optimum}`);
});

test('SGD with momentum reaches the least-squares optimum', async (t) => {
  const p = problem(testRng('convergence sgd', t));
  const loss = await train(p, (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9 }), 300);
  t.diagnostic(`final loss ${loss}, optimum ${p.optimum}`);
  assert.ok(loss <= p.optimum * 1.001 + 1e-7, `SGD final loss ${loss} > 1.001 × optimum ${p.optimum}`);
});
