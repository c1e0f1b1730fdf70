// The convolutional layers as modules: PyTorch's default initialization (bounds and variance), parameter
// and buffer names, BatchNorm2d's train/eval behaviour against a float64 reference, the pooling and
// Flatten wrappers, ResNet shapes, and clear errors for bad construction or input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdaptiveAvgPool2d,
  BatchNorm2d,
  Conv2d,
  F,
  Flatten,
  Generator,
  MaxPool2d,
  noGrad,
  tensor,
} from '../../src/index.js';
import { ResNet, ResNet50Stem } from '../../src/models/resnet.js';
import { assertClose } from '../helpers/assert.js';

test('Conv2d: torch default init U(-1/sqrt(fanIn), 1/sqrt(fanIn)), names, shapes and groups', async () => {
  const c = new Conv2d(6, 32, [3, 2], { groups: 2, generator: new Generator(3) });
  assert.deepEqual(
    c.namedParameters().map(([n, p]) => [n, p.shape]),
    [
      ['weight', [32, 3, 3, 2]],
      ['bias', [32]],
    ],
  );
  const bound = 1 / Math.sqrt(3 * 3 * 2); // fanIn = inChannels/groups * KH * KW
  const w = (await c.weight.toArray()) as Float32Array;
  let sq = 0;
  for (const v of w) {
    assert.ok(Math.abs(v) <= bound, `weight ${v} outside ±${bound}`);
    sq += v * v;
  }
  const variance = sq / w.length; // U(-b, b) has variance b^2 / 3
  assert.ok(Math.abs(variance / ((bound * bound) / 3) - 1) < 0.15, `weight variance ${variance}`);
  for (const v of (await c.bias!.toArray()) as Float32Array) assert.ok(Math.abs(v) <= bound);
  const y = noGrad(() => c.forward(tensor(new Float32Array(2 * 6 * 7 * 5), { shape: [2, 6, 7, 5] })));
  assert.deepEqual(y.shape, [2, 32, 5, 4]);
  assert.equal(new Conv2d(3, 4, 1, { bias: false }).bias, null);
  assert.throws(() => new Conv2d(6, 5, 3, { groups: 2 }), /Conv2d.*divisible by groups 2/);
  assert.throws(() => c.forward(tensor(new Float32Array(4 * 25), { shape: [1, 4, 5, 5] })), /Conv2d.*\(N, 6, H, W\)/);
});

test('BatchNorm2d: PyTorch names; training uses batch stats and updates running ones; eval uses them', async () => {
  const bn = new BatchNorm2d(3, { momentum: 0.2 });
  assert.deepEqual(
    [...bn.stateDict().keys()],
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'],
  );
  assert.deepEqual(bn.parameters().length, 2);
  const N = 2, C = 3, H = 2, W = 3; // prettier-ignore
  const xs = Float64Array.from({ length: N * C * H * W }, (_, i) => Math.sin(i * 1.7) * 2 + (i % 3));
  const x = tensor(Float32Array.from(xs), { shape: [N, C, H, W] });
  // float64 per-channel statistics
  const mean = new Float64Array(C);
  const varB = new Float64Array(C);
  const at = (n: number, c: number, k: number) => Math.fround(xs[(n * C + c) * H * W + k]!);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let k = 0; k < H * W; k++) s += at(n, c, k);
    mean[c] = s / (N * H * W);
    let v = 0;
    for (let n = 0; n < N; n++) for (let k = 0; k < H * W; k++) v += (at(n, c, k) - mean[c]!) ** 2;
    varB[c] = v / (N * H * W);
  }
  const yTrain = noGrad(() => bn.forward(x));
  const expTrain = new Float64Array(N * C * H * W);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let k = 0; k < H * W; k++)
        expTrain[(n * C + c) * H * W + k] = (at(n, c, k) - mean[c]!) / Math.sqrt(varB[c]! + 1e-5);
  assertClose(await yTrain.toArray(), expTrain, { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: 'train y' });
  const m = N * H * W;
  const rm = Array.from(mean, (v) => 0.2 * v);
  const rv = Array.from(varB, (v) => 0.8 + 0.2 * v * (m / (m - 1))); // unbiased variance in the running stat
  assertClose(await bn.running_mean!.toArray(), rm, { dtype: 'float32', what: 'running_mean' });
  assertClose(await bn.running_var!.toArray(), rv, { dtype: 'float32', what: 'running_var' });
  assert.deepEqual([...(await bn.num_batches_tracked!.toArray())], [1]);
  bn.eval();
  const yEval = noGrad(() => bn.forward(x));
  const expEval = expTrain.map((_, i) => {
    const c = Math.floor(i / (H * W)) % C;
    return (Math.fround(xs[i]!) - rm[c]!) / Math.sqrt(rv[c]! + 1e-5);
  });
  assertClose(await yEval.toArray(), expEval, { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: 'eval y' });
  assert.deepEqual([...(await bn.num_batches_tracked!.toArray())], [1], 'eval must not count batches');
  assert.throws(() => bn.forward(tensor(new Float32Array(8), { shape: [2, 4, 1, 1] })), /BatchNorm2d.*\(N, 3, H, W\)/);
  assert.equal(new BatchNorm2d(2, { trackRunningStats: false }).stateDict().size, 2);
});

test('pooling, Flatten and the F namespace compose; ResNet and the stem give the right shapes', () => {
  const x = tensor(
    Float32Array.from({ length: 2 * 3 * 9 * 8 }, (_, i) => i % 7),
    { shape: [2, 3, 9, 8] },
  );
  noGrad(() => {
    assert.deepEqual(new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }).forward(x).shape, [2, 3, 5, 4]);
    assert.deepEqual(new AdaptiveAvgPool2d([2, 3]).forward(x).shape, [2, 3, 2, 3]);
    assert.deepEqual(new Flatten().forward(x).shape, [2, 216]);
    assert.deepEqual(F.avgPool2d(x, { kernelSize: 2 }).shape, [2, 3, 4, 4]);
    const net = new ResNet({ widths: [4, 8, 8], blocks: [1, 2, 1], numClasses: 5 });
    assert.deepEqual(net.forward(x).shape, [2, 5]);
    assert.equal(net.layers.length, 3);
    assert.ok([...net.stateDict().keys()].includes('layer2.1.bn2.running_var'));
    assert.deepEqual(
      new ResNet50Stem().forward(tensor(new Float32Array(3 * 32 * 32), { shape: [1, 3, 32, 32] })).shape,
      [1, 64, 8, 8],
    );
  });
  assert.throws(
    () => new ResNet({ widths: [4, 8], blocks: [1], numClasses: 2 }),
    /ResNet: widths \[4, 8\] and blocks \[1\]/,
  );
});
