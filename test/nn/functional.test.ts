// Tests of the nn functional ops (linear, layerNorm, crossEntropy, mseLoss) against float64 references:
// values against loops written here and the test oracle, gradients against central finite differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, OpError, tensor, tidy } from '../../src/index.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomIndices, randomND, testRng } from '../helpers/random.js';
import { gradsOf, toIntTensor, toND, toTensor } from './util.js';

/** x (N, in) @ w (out, in)^T + b, written as the plain float64 triple loop. */
function loopLinear(x: O.ND, w: O.ND, b?: O.ND): O.ND {
  const [outF, inF] = w.shape as [number, number];
  const rows = x.data.length / inF;
  const out = O.nd([...x.shape.slice(0, -1), outF]);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b.data[o]! : 0;
      for (let i = 0; i < inF; i++) s += x.data[r * inF + i]! * w.data[o * inF + i]!;
      out.data[r * outF + o] = s;
    }
  }
  return out;
}

test('linear: forward equals a float64 loop (3-D, 2-D, no bias, strided input)', async (t) => {
  const rng = testRng('nn linear forward', t);
  for (const [xShape, hasBias] of [
    [[2, 3, 5], true],
    [[7, 5], true],
    [[4, 5], false],
    [[5], true],
  ] as const) {
    const x = randomND(rng, xShape);
    const w = randomND(rng, [4, 5]);
    const b = randomND(rng, [4]);
    const y = F.linear(toTensor(x), toTensor(w), hasBias ? toTensor(b) : null);
    assert.deepEqual(y.shape, [...xShape.slice(0, -1), 4]);
    assertClose(await y.toArray(), loopLinear(x, w, hasBias ? b : undefined), {
      dtype: 'float32',
      terms: 5,
      what: `linear ${xShape}`,
    });
  }
  // a transposed (non-contiguous) input: x^T of a (5, 6) array is (6, 5)
  const xt = randomND(rng, [5, 6]);
  const w = randomND(rng, [3, 5]);
  const y = F.linear(toTensor(xt).transpose(0, 1), toTensor(w));
  assertClose(await y.toArray(), loopLinear(O.transpose(xt, 0, 1), w), {
    dtype: 'float32',
    terms: 5,
    what: 'linear on a transposed view',
  });
});

test('linear: gradients of x, weight and bias match finite differences', async (t) => {
  const rng = testRng('nn linear grad', t);
  const x = randomND(rng, [2, 3, 4]);
  const w = randomND(rng, [5, 4]);
  const b = randomND(rng, [5]);
  const up = randomND(rng, [2, 3, 5]);
  const ts = [
    toTensor(x, { requiresGrad: true }),
    toTensor(w, { requiresGrad: true }),
    toTensor(b, { requiresGrad: true }),
  ] as const;
  tidy(() => F.linear(ts[0], ts[1], ts[2]).backward(toTensor(up)));
  assertGradClose(await gradsOf(ts), ([a, b2, c]) => loopLinear(a!, b2!, c), [x, w, b], up, { terms: 6 });
});

test('linear: clear errors for mismatched shapes', () => {
  assert.throws(() => F.linear(tensor([[1, 2, 3]]), tensor([[1, 2]])), /linear: input \[1, 3\] must end in 2 features/);
  assert.throws(() => F.linear(tensor([[1, 2]]), tensor([[1, 2]]), tensor([1, 2])), /bias must have shape \[1\]/);
});

test('layerNorm: rows have mean 0 and variance 1, and match a float64 reference with affine', async (t) => {
  const rng = testRng('nn layerNorm forward', t);
  const x = randomND(rng, [3, 4, 16], { low: -3, high: 5 });
  const y = await toND(F.layerNorm(toTensor(x), 16));
  for (let r = 0; r < 12; r++) {
    const row = y.data.subarray(r * 16, r * 16 + 16);
    const mean = row.reduce((s, v) => s + v, 0) / 16;
    const v = row.reduce((s, z) => s + (z - mean) ** 2, 0) / 16;
    assert.ok(Math.abs(mean) < 1e-5, `row ${r} mean ${mean}`);
    assert.ok(Math.abs(v - 1) < 1e-3, `row ${r} variance ${v}`); // eps = 1e-5 shrinks it slightly
  }
  // against a float64 loop, with weight, bias and a 2-D normalized shape
  const x2 = randomND(rng, [2, 3, 4]);
  const w = randomND(rng, [3, 4]);
  const b = randomND(rng, [3, 4]);
  const got = await F.layerNorm(toTensor(x2), [3, 4], toTensor(w), toTensor(b), 1e-3).toArray();
  const want = O.nd([2, 3, 4]);
  for (let r = 0; r < 2; r++) {
    const row = x2.data.subarray(r * 12, r * 12 + 12);
    const mean = row.reduce((s, v) => s + v, 0) / 12;
    const v = row.reduce((s, z) => s + (z - mean) ** 2, 0) / 12;
    for (let j = 0; j < 12; j++)
      want.data[r * 12 + j] = ((row[j]! - mean) / Math.sqrt(v + 1e-3)) * w.data[j]! + b.data[j]!;
  }
  assertClose(got, want, { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: 'layerNorm [3, 4]' });
  assertClose(got, O.layerNorm(x2, [3, 4], { weight: w, bias: b, eps: 1e-3 }), {
    dtype: 'float32',
    rtol: 1e-5,
    atol: 1e-5,
    what: 'layerNorm vs oracle',
  });
});

test('layerNorm: gradients of x, weight and bias match finite differences', async (t) => {
  const rng = testRng('nn layerNorm grad', t);
  const x = randomND(rng, [3, 6], { low: -2, high: 2 });
  const w = randomND(rng, [6]);
  const b = randomND(rng, [6]);
  const up = randomND(rng, [3, 6]);
  const ts = [
    toTensor(x, { requiresGrad: true }),
    toTensor(w, { requiresGrad: true }),
    toTensor(b, { requiresGrad: true }),
  ] as const;
  tidy(() => F.layerNorm(ts[0], 6, ts[1], ts[2]).backward(toTensor(up)));
  assertGradClose(await gradsOf(ts), ([a, ww, bb]) => O.layerNorm(a!, 1, { weight: ww!, bias: bb! }), [x, w, b], up, {
    rtol: 1e-3,
    atol: 1e-4,
  });
});

test('layerNorm: errors name the shapes', () => {
  assert.throws(
    () => F.layerNorm(tensor([[1, 2, 3]]), 4),
    /normalized shape \[4\] must match the trailing dims of the input \[1, 3\]/,
  );
  assert.throws(
    () => F.layerNorm(tensor([[1, 2, 3]]), 3, tensor([1, 2])),
    /weight must have the normalized shape \[3\], got \[2\]/,
  );
});

/**
 * torch.nn.functional.cross_entropy written out from its definition (class axis last): with
 * lp = log_softmax(logits), nll_i = -lp[i, y_i], smooth_i = -sum_c lp[i, c]; ignored positions are 0;
 * loss = (1 - eps) * nll_reduced + (eps / C) * smooth_reduced, where 'mean' divides by the number of
 * non-ignored targets.
 */
function refCrossEntropy(
  logits: O.ND,
  targets: O.ND,
  ignore: number,
  eps: number,
  reduction: 'mean' | 'sum' | 'none',
): O.ND {
  const C = logits.shape[logits.shape.length - 1]!;
  const rows = targets.data.length;
  const per = O.nd(targets.shape);
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const y = targets.data[r]!;
    if (y === ignore) continue;
    count++;
    const z = Array.from(logits.data.subarray(r * C, r * C + C));
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
    const lp = z.map((v) => v - lse);
    const nll = -lp[y]!;
    const smooth = -lp.reduce((s, v) => s + v, 0);
    per.data[r] = (1 - eps) * nll + (eps / C) * smooth;
  }
  if (reduction === 'none') return per;
  const total = per.data.reduce((s, v) => s + v, 0);
  return O.scalar(reduction === 'sum' ? total : total / count);
}

test("crossEntropy: matches torch's formula written out (ignoreIndex, labelSmoothing, reductions)", async (t) => {
  const rng = testRng('nn crossEntropy forward', t);
  const cases = [
    { shape: [6, 5], ignore: -100, eps: 0 },
    { shape: [2, 4, 7], ignore: -100, eps: 0.1 },
    { shape: [3, 3, 4], ignore: 2, eps: 0.25 }, // an ignore index that is a real class
    { shape: [9, 3], ignore: -1, eps: 1 },
  ];
  for (const c of cases) {
    const C = c.shape[c.shape.length - 1]!;
    const logits = randomND(rng, c.shape, { low: -4, high: 4 });
    const targets = randomIndices(rng, c.shape.slice(0, -1), C);
    targets.data[0] = c.ignore; // at least one ignored position
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      const got = F.crossEntropy(toTensor(logits), toIntTensor(targets), {
        ignoreIndex: c.ignore,
        labelSmoothing: c.eps,
        reduction,
      });
      assert.deepEqual(got.shape, reduction === 'none' ? c.shape.slice(0, -1) : []);
      const want = refCrossEntropy(logits, targets, c.ignore, c.eps, reduction);
      const what = `crossEntropy ${JSON.stringify(c)} ${reduction}`;
      assertClose(await got.toArray(), want, { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what });
      assertClose(
        await got.toArray(),
        O.crossEntropy(logits, targets, { ignoreIndex: c.ignore, labelSmoothing: c.eps, reduction }),
        { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: `${what} vs oracle` },
      );
    }
  }
});

test('crossEntropy: hand-checked value, defaults, uint32 targets, all ignored gives NaN', async () => {
  // logits [0, 0] and target 0: -log(1/2)
  assert.ok(
    Math.abs((await F.crossEntropy(tensor([[0, 0]]), tensor([0], { dtype: 'int32' })).item()) - Math.LN2) < 1e-6,
  );
  const logits = tensor([
    [1, 2, 3],
    [3, 1, 0],
  ]);
  // -lp[y] = log(sum_c e^z_c) - z_y, averaged over the two rows (targets 0 and 1)
  const want =
    (Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 1 + (Math.log(Math.exp(3) + Math.exp(1) + 1) - 1)) / 2;
  assert.ok(Math.abs((await F.crossEntropy(logits, tensor([0, 1], { dtype: 'uint32' })).item()) - want) < 1e-5);
  assert.ok(Number.isNaN(await F.crossEntropy(logits, tensor([-100, -100], { dtype: 'int32' })).item()));
});

test('crossEntropy: gradients match finite differences (mean with ignore + smoothing, and none)', async (t) => {
  const rng = testRng('nn crossEntropy grad', t);
  const logits = randomND(rng, [2, 3, 5], { low: -3, high: 3 });
  const targets = randomIndices(rng, [2, 3], 5);
  targets.data[1] = -100;
  targets.data[4] = -100;
  for (const [reduction, eps] of [
    ['mean', 0.2],
    ['none', 0],
    ['sum', 0.5],
  ] as const) {
    const up = reduction === 'none' ? randomND(rng, [2, 3]) : O.scalar(rng.uniform(0.5, 2));
    const lt = toTensor(logits, { requiresGrad: true });
    tidy(() => F.crossEntropy(lt, toIntTensor(targets), { labelSmoothing: eps, reduction }).backward(toTensor(up)));
    assertGradClose(await gradsOf([lt]), ([z]) => refCrossEntropy(z!, targets, -100, eps, reduction), [logits], up, {
      what: `crossEntropy ${reduction} grad`,
    });
    const g = await lt.grad!.toArray();
    for (const r of [1, 4]) for (let c = 0; c < 5; c++) assert.equal(g[r * 5 + c], 0, 'ignored rows get no gradient');
  }
});

test('crossEntropy: clear errors for bad targets', () => {
  const logits = tensor([
    [1, 2, 3],
    [3, 1, 0],
  ]);
  assert.throws(
    () => F.crossEntropy(logits, tensor([0, 1, 2], { dtype: 'int32' })),
    (e: Error) =>
      e instanceof OpError &&
      /targets \[3\] must have the logits' shape without the class dim: logits \[2, 3\] needs targets \[2\]/.test(
        e.message,
      ),
  );
  assert.throws(
    () => F.crossEntropy(logits, tensor([0, 1])),
    /targets must be int32 or uint32 class indices, got float32/,
  );
  assert.throws(
    () => F.crossEntropy(tensor([0, 1], { dtype: 'int32' }), tensor([0], { dtype: 'int32' })),
    /logits must be float/,
  );
  assert.throws(
    () => F.crossEntropy(logits, tensor([0, 1], { dtype: 'int32' }), { labelSmoothing: 2 }),
    /labelSmoothing must be in \[0, 1\]/,
  );
  // out-of-range targets are not checked on the host; the gather kernel must refuse them
  assert.throws(() => tidy(() => F.crossEntropy(logits, tensor([0, 3], { dtype: 'int32' }))));
});

test('mseLoss: values and gradients for every reduction', async (t) => {
  const rng = testRng('nn mseLoss', t);
  const a = randomND(rng, [3, 4]);
  const b = randomND(rng, [3, 4]);
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    let s = 0;
    const sq = O.nd(
      [3, 4],
      a.data.map((v, i) => (v - b.data[i]!) ** 2),
    );
    for (const v of sq.data) s += v;
    const want = reduction === 'none' ? sq : O.scalar(reduction === 'sum' ? s : s / 12);
    const at = toTensor(a, { requiresGrad: true });
    const bt = toTensor(b, { requiresGrad: true });
    const y = F.mseLoss(at, bt, reduction);
    assertClose(await y.toArray(), want, { dtype: 'float32', terms: 12, what: `mseLoss ${reduction}` });
    const up = reduction === 'none' ? randomND(rng, [3, 4]) : O.scalar(1.5);
    tidy(() => y.backward(toTensor(up)));
    assertGradClose(await gradsOf([at, bt]), ([p, q]) => O.mseLoss(p!, q!, reduction), [a, b], up, {
      what: `mseLoss ${reduction}`,
    });
  }
  assert.throws(
    () => F.mseLoss(tensor([1, 2]), tensor([1, 2, 3])),
    /mseLoss: input \[2\] and target \[3\] must have the same shape/,
  );
});

test('softmax / logSoftmax / gelu / relu: match the oracle', async (t) => {
  const rng = testRng('nn activations', t);
  const x = randomND(rng, [3, 5], { low: -3, high: 3 });
  const xt = toTensor(x);
  assertClose(await F.softmax(xt).toArray(), O.softmax(x, -1), { dtype: 'float32', what: 'softmax' });
  assertClose(await F.logSoftmax(xt, 0).toArray(), O.logSoftmax(x, 0), { dtype: 'float32', what: 'logSoftmax axis 0' });
  assertClose(await F.gelu(xt).toArray(), O.unary('gelu', x), {
    dtype: 'float32',
    atol: 1e-6,
    rtol: 1e-5,
    what: 'gelu',
  });
  assertClose(await F.relu(xt).toArray(), O.unary('relu', x), { dtype: 'float32', what: 'relu' });
});
