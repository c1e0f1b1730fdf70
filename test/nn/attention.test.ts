// Tests of attention: scaledDotProductAttention against the float64 oracle (causal, bool and float
// masks) with finite-difference gradients, and CausalSelfAttention against a float64 re-implementation
// of nanoGPT's block, its parameter names, gradients, and causality (the future cannot leak back).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CausalSelfAttention, F, Generator, tensor, tidy } from '../../src/index.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, testRng } from '../helpers/random.js';
import { gradsOf, toND, toTensor } from './util.js';

test('causalMask: true where key <= query', async () => {
  assert.deepEqual(await F.causalMask(3).toNested(), [
    [1, 0, 0],
    [1, 1, 0],
    [1, 1, 1],
  ]);
  assert.deepEqual(await F.causalMask(2, 'cpu', 3).toNested(), [
    [1, 0, 0],
    [1, 1, 0],
  ]);
  assert.equal(F.causalMask(2).dtype, 'bool');
});

test('scaledDotProductAttention: matches the oracle, causal or not, with bool and float masks', async (t) => {
  const rng = testRng('nn sdpa forward', t);
  const [B, nh, T, hs] = [2, 3, 5, 4];
  const q = randomND(rng, [B, nh, T, hs]);
  const k = randomND(rng, [B, nh, T, hs]);
  const v = randomND(rng, [B, nh, T, hs]);
  const [qt, kt, vt] = [toTensor(q), toTensor(k), toTensor(v)];
  for (const causal of [true, false]) {
    const got = F.scaledDotProductAttention(qt, kt, vt, { causal });
    assert.deepEqual(got.shape, [B, nh, T, hs]);
    assertClose(await got.toArray(), O.attention(q, k, v, { causal }), {
      dtype: 'float32',
      rtol: 1e-5,
      atol: 1e-5,
      what: `sdpa causal=${causal}`,
    });
  }
  // a bool mask equal to the causal one gives the causal result; a float mask is added to the scores
  const tri = tensor(Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => j <= i)));
  assertClose(
    await F.scaledDotProductAttention(qt, kt, vt, { mask: tri }).toArray(),
    O.attention(q, k, v, { causal: true }),
    { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: 'sdpa bool mask' },
  );
  const bias = randomND(rng, [T, T]);
  const scores = O.add(O.mul(O.matmul(q, O.transpose(k)), 0.25), bias);
  const want = O.matmul(O.softmax(scores, -1), v);
  assertClose(await F.scaledDotProductAttention(qt, kt, vt, { mask: toTensor(bias), scale: 0.25 }).toArray(), want, {
    dtype: 'float32',
    rtol: 1e-5,
    atol: 1e-5,
    what: 'sdpa float mask',
  });
  // eval-mode dropout is the identity; training dropout p=1 zeroes everything
  assertClose(
    await F.scaledDotProductAttention(qt, kt, vt, { causal: true, dropoutP: 0.5, training: false }).toArray(),
    O.attention(q, k, v),
    { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: 'sdpa eval dropout' },
  );
  assert.ok((await F.scaledDotProductAttention(qt, kt, vt, { dropoutP: 1 }).toArray()).every((x) => x === 0));
  assert.throws(
    () => F.scaledDotProductAttention(qt, toTensor(randomND(rng, [B, nh, T, 3])), vt),
    /scaledDotProductAttention: shapes/,
  );
});

test('scaledDotProductAttention: gradients of q, k, v match finite differences (causal)', async (t) => {
  const rng = testRng('nn sdpa grad', t);
  const shape = [1, 2, 4, 3];
  const xs = [randomND(rng, shape), randomND(rng, shape), randomND(rng, shape)];
  const ts = xs.map((x) => toTensor(x, { requiresGrad: true }));
  const up = randomND(rng, shape);
  tidy(() => F.scaledDotProductAttention(ts[0]!, ts[1]!, ts[2]!, { causal: true }).backward(toTensor(up)));
  assertGradClose(await gradsOf(ts), ([q, k, v]) => O.attention(q!, k!, v!, { causal: true }), xs, up, {
    rtol: 1e-3,
    atol: 1e-4,
  });
});

/** nanoGPT's CausalSelfAttention in float64: qkv = x Wa^T + ba, split, heads, causal attention, c_proj. */
function refBlock(x: O.ND, wa: O.ND, ba: O.ND, wp: O.ND, bp: O.ND, nh: number): O.ND {
  const [B, T, C] = x.shape as [number, number, number];
  const hs = C / nh;
  const qkv = O.linear(x, wa, ba); // (B, T, 3C)
  const heads = (i: number) => O.permute(O.reshape(O.slice(qkv, 2, i * C, (i + 1) * C), [B, T, nh, hs]), [0, 2, 1, 3]);
  const y = O.attention(heads(0), heads(1), heads(2), { causal: true }); // (B, nh, T, hs)
  return O.linear(O.reshape(O.permute(y, [0, 2, 1, 3]), [B, T, C]), wp, bp);
}

test('CausalSelfAttention: c_attn / c_proj names and shapes, forward matches a float64 re-implementation', async (t) => {
  const rng = testRng('nn CausalSelfAttention forward', t);
  const attn = new CausalSelfAttention(8, 2, { generator: new Generator(2) });
  assert.deepEqual(
    attn.namedParameters().map(([n, p]) => `${n} [${p.shape.join(', ')}]`),
    ['c_attn.weight [24, 8]', 'c_attn.bias [24]', 'c_proj.weight [8, 8]', 'c_proj.bias [8]'],
  );
  assert.equal(new CausalSelfAttention(8, 2, { bias: false }).numParameters(), 24 * 8 + 8 * 8);
  assert.throws(() => new CausalSelfAttention(8, 3), /nEmbd 8 must be a multiple of nHead 3/);
  const x = randomND(rng, [2, 5, 8]);
  const [wa, ba, wp, bp] = await Promise.all(attn.parameters().map(toND));
  const got = attn.forward(toTensor(x));
  assert.deepEqual(got.shape, [2, 5, 8]);
  assertClose(await got.toArray(), refBlock(x, wa!, ba!, wp!, bp!, 2), {
    dtype: 'float32',
    rtol: 1e-5,
    atol: 1e-5,
    terms: 8,
    what: 'CausalSelfAttention',
  });
  assert.throws(() => attn.forward(toTensor(randomND(rng, [2, 5, 6]))), /must end in 8 features/);
});

test('CausalSelfAttention: gradients of the input and all parameters match finite differences', async (t) => {
  const rng = testRng('nn CausalSelfAttention grad', t);
  const attn = new CausalSelfAttention(4, 2);
  const x = randomND(rng, [2, 3, 4]);
  const xt = toTensor(x, { requiresGrad: true });
  const params = attn.parameters();
  const nds = [x, ...(await Promise.all(params.map(toND)))];
  const up = randomND(rng, [2, 3, 4]);
  tidy(() => attn.forward(xt).backward(toTensor(up)));
  assertGradClose(await gradsOf([xt, ...params]), ([a, b, c, d, e]) => refBlock(a!, b!, c!, d!, e!, 2), nds, up, {
    rtol: 1e-3,
    atol: 1e-4,
  });
});

test('CausalSelfAttention: output at position t does not depend on inputs after t', async (t) => {
  const rng = testRng('nn CausalSelfAttention causality', t);
  const attn = new CausalSelfAttention(6, 3);
  const x = randomND(rng, [1, 6, 6]);
  const cut = 3;
  const x2 = O.clone(x);
  for (let i = (cut + 1) * 6; i < x2.data.length; i++) x2.data[i] = rng.uniform(-5, 5); // change positions > cut
  const y1 = await attn.forward(toTensor(x)).toArray();
  const y2 = await attn.forward(toTensor(x2)).toArray();
  for (let i = 0; i < (cut + 1) * 6; i++) assert.equal(y1[i], y2[i], `position ${Math.floor(i / 6)} changed`);
  let changed = 0;
  for (let i = (cut + 1) * 6; i < y1.length; i++) if (y1[i] !== y2[i]) changed++;
  assert.ok(changed > 0, 'later positions must change');
});

test('CausalSelfAttention: dropout is active in training, off in eval', async (t) => {
  const rng = testRng('nn CausalSelfAttention dropout', t);
  const attn = new CausalSelfAttention(8, 2, { dropout: 0.5, generator: new Generator(3) });
  const x = toTensor(randomND(rng, [1, 4, 8]));
  const a = await attn.forward(x).toArray();
  const b = await attn.forward(x).toArray();
  assert.notDeepEqual(a, b, 'training: fresh dropout masks');
  attn.eval();
  assert.equal(attn.resid_dropout.training, false);
  const c = await attn.forward(x).toArray();
  assert.deepEqual(await attn.forward(x).toArray(), c, 'eval: deterministic');
});
