// Tests of the layer modules: Linear / Embedding / LayerNorm forward and gradients against float64
// references, PyTorch-style initialization statistics, Dropout statistics, Sequential and init.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Dropout,
  Embedding,
  F,
  GELU,
  Generator,
  LayerNorm,
  Linear,
  ModuleList,
  ReLU,
  Sequential,
  init,
  noGrad,
  ones,
  tensor,
  tidy,
  zeros,
} from '../../src/index.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomIndices, randomND, testRng } from '../helpers/random.js';
import { gradsOf, toIntTensor, toND, toTensor } from './util.js';

/** Sample mean and (biased) variance. */
function moments(a: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  const mean = s / a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i]! - mean) ** 2;
  return { mean, variance: v / a.length };
}

test('Linear: weight (out, in), bias (out), U(-1/sqrt(in), 1/sqrt(in)) init, as PyTorch', async () => {
  const lin = new Linear(64, 128, { generator: new Generator(1) });
  assert.deepEqual(lin.weight.shape, [128, 64]);
  assert.deepEqual(lin.bias!.shape, [128]);
  assert.ok(lin.weight.requiresGrad && lin.bias!.requiresGrad && lin.weight.isLeaf);
  const bound = 1 / 8;
  const w = await lin.weight.toArray();
  for (const v of w) assert.ok(v >= -bound && v <= bound, `weight ${v} outside ±${bound}`);
  for (const v of await lin.bias!.toArray()) assert.ok(v >= -bound && v <= bound, `bias ${v} outside ±${bound}`);
  // U(-b, b) has mean 0 and variance b^2/3; 8192 samples: 6-sigma bounds on both
  const { mean, variance } = moments(w);
  const n = w.length;
  assert.ok(Math.abs(mean) < 6 * Math.sqrt(bound ** 2 / 3 / n), `mean ${mean}`);
  assert.ok(Math.abs(variance - bound ** 2 / 3) < 6 * Math.sqrt(((4 / 45) * bound ** 4) / n), `variance ${variance}`);
  assert.equal(new Linear(3, 2, { bias: false }).bias, null);
  // different seeds give different weights, the same seed the same
  const a = await new Linear(4, 4, { generator: new Generator(7) }).weight.toArray();
  const b = await new Linear(4, 4, { generator: new Generator(7) }).weight.toArray();
  const c = await new Linear(4, 4, { generator: new Generator(8) }).weight.toArray();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('Linear: forward matches the oracle and the gradients finite differences', async (t) => {
  const rng = testRng('nn Linear module', t);
  const lin = new Linear(6, 3);
  const x = randomND(rng, [2, 4, 6]);
  const xt = toTensor(x, { requiresGrad: true });
  const y = lin.forward(xt);
  const w = await toND(lin.weight);
  const b = await toND(lin.bias!);
  assertClose(await y.toArray(), O.linear(x, w, b), { dtype: 'float32', terms: 6, what: 'Linear.forward' });
  const up = randomND(rng, [2, 4, 3]);
  tidy(() => y.backward(toTensor(up)));
  assertGradClose(await gradsOf([xt, lin.weight, lin.bias!]), ([p, q, r]) => O.linear(p!, q!, r), [x, w, b], up, {
    terms: 8,
  });
});

test('Embedding: N(0, 1) init, forward gathers rows, gradient scatters (repeated ids add up)', async (t) => {
  const rng = testRng('nn Embedding', t);
  const big = new Embedding(200, 50, { generator: new Generator(3) });
  const { mean, variance } = moments(await big.weight.toArray());
  assert.ok(Math.abs(mean) < 6 / Math.sqrt(10000), `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 6 * Math.sqrt(2 / 10000), `variance ${variance}`);

  const emb = new Embedding(7, 3);
  const ids = randomIndices(rng, [2, 5], 7);
  ids.data[0] = 4;
  ids.data[3] = 4; // a repeated id
  const w = await toND(emb.weight);
  const y = emb.forward(toIntTensor(ids));
  assert.deepEqual(y.shape, [2, 5, 3]);
  assertClose(await y.toArray(), O.embedding(ids, w), { dtype: 'float32', what: 'Embedding.forward' });
  const up = randomND(rng, [2, 5, 3]);
  tidy(() => y.backward(toTensor(up)));
  assertGradClose(await gradsOf([emb.weight]), ([p]) => O.embedding(ids, p!), [w], up, { what: 'Embedding grad' });
  assert.throws(() => emb.forward(tensor([1, 2])), /ids must be int32 or uint32, got float32/);
});

test('LayerNorm: ones/zeros init, forward and gradients against the oracle', async (t) => {
  const rng = testRng('nn LayerNorm module', t);
  const ln = new LayerNorm(5, { eps: 1e-4 });
  assert.deepEqual(Array.from(await ln.weight!.toArray()), [1, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(await ln.bias!.toArray()), [0, 0, 0, 0, 0]);
  noGrad(() => {
    ln.weight!.copy_(toTensor(randomND(rng, [5])));
    ln.bias!.copy_(toTensor(randomND(rng, [5])));
  });
  const w = await toND(ln.weight!);
  const b = await toND(ln.bias!);
  const x = randomND(rng, [3, 5], { low: -2, high: 2 });
  const xt = toTensor(x, { requiresGrad: true });
  const y = ln.forward(xt);
  assertClose(await y.toArray(), O.layerNorm(x, 1, { weight: w, bias: b, eps: 1e-4 }), {
    dtype: 'float32',
    rtol: 1e-5,
    atol: 1e-5,
    what: 'LayerNorm.forward',
  });
  const up = randomND(rng, [3, 5]);
  tidy(() => y.backward(toTensor(up)));
  assertGradClose(
    await gradsOf([xt, ln.weight!, ln.bias!]),
    ([p, q, r]) => O.layerNorm(p!, 1, { weight: q!, bias: r!, eps: 1e-4 }),
    [x, w, b],
    up,
    { rtol: 1e-3, atol: 1e-4 },
  );
  const plain = new LayerNorm([2, 3], { elementwiseAffine: false });
  assert.equal(plain.weight, null);
  assert.equal(plain.numParameters(), 0);
  assert.equal(new LayerNorm(4, { bias: false }).numParameters(), 4);
});

test('Dropout: fraction zeroed ~ p (binomial bound), survivors scaled by 1/(1-p), eval and p=0 are identity', async () => {
  const n = 200_000;
  const x = ones([n]);
  for (const p of [0.1, 0.5, 0.8]) {
    const d = new Dropout(p, new Generator(11));
    const y = await d.forward(x).toArray();
    let zeros = 0;
    for (const v of y) {
      if (v === 0) zeros++;
      else assert.ok(Math.abs(v - 1 / (1 - p)) < 1e-6 / (1 - p), `survivor ${v}, expected ${1 / (1 - p)}`);
    }
    const sigma = Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(zeros / n - p) < 6 * sigma, `p=${p}: zeroed fraction ${zeros / n}`);
    d.eval();
    assert.equal(d.forward(x), x, 'eval mode returns the input');
  }
  assert.equal(new Dropout(0).forward(x), x, 'p = 0 returns the input');
  assert.deepEqual(Array.from(await new Dropout(1).forward(tensor([1, 2, 3])).toArray()), [0, 0, 0]);
  assert.throws(() => new Dropout(1.5), /p must be in \[0, 1\]/);
});

test('Dropout: masks are fresh per call, reproducible per seed; gradient is mask / (1 - p)', async () => {
  const x = ones([1000]);
  const g1 = new Generator(5);
  const a = await F.dropout(x, 0.5, true, g1).toArray();
  const b = await F.dropout(x, 0.5, true, g1).toArray();
  assert.notDeepEqual(a, b, 'two calls draw different masks');
  assert.deepEqual(await F.dropout(x, 0.5, true, new Generator(5)).toArray(), a, 'same seed, same mask');
  const xt = tensor(
    Float32Array.from({ length: 1000 }, (_, i) => 1 + i / 1000),
    { requiresGrad: true },
  );
  const y = F.dropout(xt, 0.25, true, new Generator(9));
  tidy(() => y.sum().backward());
  const yv = await y.toArray();
  const xv = await xt.toArray();
  const g = await xt.grad!.toArray();
  for (let i = 0; i < 1000; i++) {
    const kept = yv[i] !== 0;
    assert.ok(Math.abs(g[i]! - (kept ? 1 / 0.75 : 0)) < 1e-6, `grad ${g[i]} at ${i}`);
    if (kept) assert.ok(Math.abs(yv[i]! - xv[i]! / 0.75) < 1e-5);
  }
});

test('Sequential / ModuleList: forward chains modules; children are named by position', async (t) => {
  const rng = testRng('nn Sequential', t);
  const l1 = new Linear(4, 6);
  const l2 = new Linear(6, 2);
  const seq = new Sequential(l1, new GELU(), l2, new ReLU());
  assert.deepEqual(
    seq.namedParameters().map(([n]) => n),
    ['0.weight', '0.bias', '2.weight', '2.bias'],
  );
  const x = randomND(rng, [3, 4]);
  const w1 = await toND(l1.weight);
  const b1 = await toND(l1.bias!);
  const w2 = await toND(l2.weight);
  const b2 = await toND(l2.bias!);
  const want = O.unary('relu', O.linear(O.unary('gelu', O.linear(x, w1, b1)), w2, b2));
  assertClose(await seq.forward(toTensor(x)).toArray(), want, {
    dtype: 'float32',
    rtol: 1e-5,
    atol: 1e-5,
    terms: 6,
    what: 'Sequential',
  });
  const list = new ModuleList([new Linear(2, 2), new Linear(2, 2, { bias: false })]);
  assert.equal(list.length, 2);
  assert.equal(list.at(-1), list.items[1]);
  assert.deepEqual(
    list.namedParameters().map(([n]) => n),
    ['0.weight', '0.bias', '1.weight'],
  );
  assert.deepEqual([...list].length, 2);
  assert.throws(() => list.at(5), /index 5 is out of range for 2 modules/);
});

test('init: normal_ / uniform_ / zeros_ / ones_ fill parameters in place', async () => {
  const lin = new Linear(100, 100);
  const w = lin.weight;
  init.normal_(w, 0.5, 0.02, new Generator(4));
  assert.equal(lin.weight, w, 'same tensor object');
  const { mean, variance } = moments(await w.toArray());
  assert.ok(Math.abs(mean - 0.5) < (6 * 0.02) / 100, `mean ${mean}`);
  assert.ok(Math.abs(Math.sqrt(variance) - 0.02) < 0.02 * 0.05, `std ${Math.sqrt(variance)}`);
  init.uniform_(w, 2, 3);
  for (const v of await w.toArray()) assert.ok(v >= 2 && v < 3);
  init.zeros_(lin.bias!);
  assert.ok((await lin.bias!.toArray()).every((v) => v === 0));
  init.ones_(lin.bias!);
  assert.ok((await lin.bias!.toArray()).every((v) => v === 1));
  assert.throws(() => init.normal_(zeros([2], { dtype: 'int32' })), /needs a float tensor/);
});
