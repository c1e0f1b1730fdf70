// batchNorm on every backend against the float64 oracle (test/oracle/batchnorm.ts): training and eval
// forward and gradients for 2-D, 3-D and 4-D inputs, running statistics after several steps (unbiased
// variance), optional affine parameters and running statistics, strided inputs, finite-difference
// gradchecks of tiny cases, the dispatch count of a training step, and the argument errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  adaptiveAvgPool2d,
  avgPool2d,
  batchNorm,
  getBackend,
  liveTensors,
  maxPool2d,
  tensor,
  tidy,
  type DeviceName,
  type Tensor,
} from '../../src/index.js';
import * as B from '../oracle/batchnorm.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend, needsDTypes } from '../helpers/backends.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, testRng } from '../helpers/random.js';
import { assertThrowsWith, fromND, stridedView } from './util.js';

const put = (a: O.ND, device: DeviceName, requiresGrad = false): Tensor =>
  tensor(a.data, { shape: a.shape, device, requiresGrad });

const SHAPES = [
  [6, 5],
  [3, 4, 7],
  [2, 3, 5, 3],
];

forEachBackend((device) => {
  test('training: output and gradients of x, weight and bias match the oracle (2-D, 3-D, 4-D)', async (t) => {
    const rng = testRng(`batchNorm train ${device}`, t);
    for (const shape of SHAPES) {
      const c = shape[1]!;
      const x = randomND(rng, shape, { low: -2, high: 3 });
      const w = randomND(rng, [c], { low: 0.5, high: 1.5 });
      const b = randomND(rng, [c]);
      const [X, W, Bt] = [put(x, device, true), put(w, device, true), put(b, device, true)];
      const y = batchNorm(X, null, null, W, Bt, { training: true, eps: 1e-3 });
      const what = `batchNorm train [${shape.join(', ')}]`;
      assertClose(await y.toArray(), B.batchNormTrain(x, w, b, 1e-3), { dtype: 'float32', atol: 1e-5, what });
      const up = randomND(rng, shape);
      y.backward(put(up, device));
      const [gx, gw, gb] = B.batchNormGrads(x, w, up, 1e-3, null);
      const n = x.data.length / c;
      assertClose(await X.grad!.toArray(), gx, { dtype: 'float32', rtol: 1e-4, atol: 1e-5, what: `${what} dx` });
      assertClose(await W.grad!.toArray(), gw, { dtype: 'float32', atol: 1e-5, terms: n, what: `${what} dweight` });
      assertClose(await Bt.grad!.toArray(), gb, { dtype: 'float32', atol: 1e-5, terms: n, what: `${what} dbias` });
    }
  });

  test('training updates the running statistics in place (unbiased variance) over several steps', async (t) => {
    const rng = testRng(`batchNorm running ${device}`, t);
    for (const [shape, momentum] of [
      [[4, 3, 2, 5], 0.1],
      [[7, 2], 0.3],
    ] as const) {
      const c = shape[1];
      let [mean, variance] = [new Array<number>(c).fill(0), new Array<number>(c).fill(1)];
      const rm = put(O.nd([c], 0), device);
      const rv = put(O.nd([c], 1), device);
      for (let step = 0; step < 3; step++) {
        const x = randomND(rng, [...shape], { low: -1, high: 2 + step });
        const y = batchNorm(put(x, device), rm, rv, null, null, { training: true, momentum });
        assertClose(await y.toArray(), B.batchNormTrain(x, null, null, 1e-5), {
          dtype: 'float32',
          atol: 1e-5,
          what: `step ${step} output`,
        });
        [mean, variance] = B.updateRunning(x, mean, variance, momentum);
      }
      assertClose(await rm.toArray(), mean, { dtype: 'float32', what: `running mean [${shape.join(', ')}]` });
      assertClose(await rv.toArray(), variance, { dtype: 'float32', what: `running var [${shape.join(', ')}]` });
    }
  });

  test('eval: normalizes with the running statistics; gradients treat them as constants', async (t) => {
    const rng = testRng(`batchNorm eval ${device}`, t);
    for (const shape of SHAPES) {
      const c = shape[1]!;
      const x = randomND(rng, shape, { low: -2, high: 2 });
      const w = randomND(rng, [c], { low: 0.5, high: 1.5 });
      const b = randomND(rng, [c]);
      const rm = randomND(rng, [c]);
      const rv = randomND(rng, [c], { low: 0.5, high: 2 });
      const [X, W, Bt] = [put(x, device, true), put(w, device, true), put(b, device, true)];
      const RM = put(rm, device);
      const y = batchNorm(X, RM, put(rv, device), W, Bt, { training: false });
      const stats = { mean: Array.from(rm.data), variance: Array.from(rv.data) };
      const what = `batchNorm eval [${shape.join(', ')}]`;
      assertClose(await y.toArray(), B.normalize(x, stats.mean, stats.variance, w, b, 1e-5), {
        dtype: 'float32',
        atol: 1e-5,
        what,
      });
      assertClose(await RM.toArray(), rm, { dtype: 'float32', what: `${what}: running mean untouched` });
      const up = randomND(rng, shape);
      y.backward(put(up, device));
      const [gx, gw, gb] = B.batchNormGrads(x, w, up, 1e-5, stats);
      const n = x.data.length / c;
      assertClose(await X.grad!.toArray(), gx, { dtype: 'float32', atol: 1e-5, what: `${what} dx` });
      assertClose(await W.grad!.toArray(), gw, { dtype: 'float32', atol: 1e-5, terms: n, what: `${what} dweight` });
      assertClose(await Bt.grad!.toArray(), gb, { dtype: 'float32', atol: 1e-5, terms: n, what: `${what} dbias` });
    }
  });

  test('strided (channels-last) input; without affine parameters; a few dispatches per step', async (t) => {
    const rng = testRng(`batchNorm strided ${device}`, t);
    const x = randomND(rng, [3, 4, 5, 2], { low: -1, high: 1 });
    const xs = stridedView(rng, x, 'float32', device);
    const y = batchNorm(xs, null, null, null, null, { training: true });
    assertClose(await y.toArray(), B.batchNormTrain(x, null, null, 1e-5), {
      dtype: 'float32',
      atol: 1e-5,
      what: 'batchNorm of a strided view',
    });
    const nhwc = put(O.permute(x, [0, 2, 3, 1]), device, true); // (N, H, W, C) leaf
    const yp = batchNorm(nhwc.permute([0, 3, 1, 2]), null, null, null, null, { training: true });
    const up = randomND(rng, [3, 4, 5, 2]);
    yp.backward(put(up, device));
    const [gx] = B.batchNormGrads(x, null, up, 1e-5, null);
    assertClose(await nhwc.grad!.toArray(), O.permute(gx, [0, 2, 3, 1]), {
      dtype: 'float32',
      rtol: 1e-4,
      atol: 1e-5,
      what: 'dx through a channels-last view',
    });
    // stats + normalize forward, and 3 small kernels per running statistic: no per-element composition
    const backend = getBackend(device);
    const X = put(x, device);
    const [rm, rv] = [put(O.nd([4], 0), device), put(O.nd([4], 1), device)];
    const before = backend.stats().dispatches;
    batchNorm(X, rm, rv, null, null, { training: true }).dispose();
    assert.ok(backend.stats().dispatches - before <= 8, `dispatches: ${backend.stats().dispatches - before}`);
  });

  test('long channels and many channels: the per-channel reductions over every workgroup shape', async (t) => {
    const rng = testRng(`batchNorm wide ${device}`, t);
    for (const shape of [
      [8, 3, 16, 17],
      [2, 70, 3],
    ]) {
      const c = shape[1]!;
      const x = randomND(rng, shape, { low: 1, high: 3 }); // an offset mean: a one-pass variance would lose digits
      const w = randomND(rng, [c], { low: 0.5, high: 1.5 });
      const [X, W] = [put(x, device, true), put(w, device, true)];
      const rm = put(O.nd([c], 0), device);
      const rv = put(O.nd([c], 1), device);
      const y = batchNorm(X, rm, rv, W, null, { training: true });
      const what = `batchNorm [${shape.join(', ')}]`;
      assertClose(await y.toArray(), B.batchNormTrain(x, w, null, 1e-5), { dtype: 'float32', atol: 2e-5, what });
      const [mean, variance] = B.updateRunning(x, new Array<number>(c).fill(0), new Array<number>(c).fill(1), 0.1);
      assertClose(await rm.toArray(), mean, { dtype: 'float32', what: `${what} running mean` });
      assertClose(await rv.toArray(), variance, { dtype: 'float32', rtol: 1e-4, what: `${what} running var` });
      const up = randomND(rng, shape);
      y.backward(put(up, device));
      const [gx, gw] = B.batchNormGrads(x, w, up, 1e-5, null);
      const n = x.data.length / c;
      assertClose(await X.grad!.toArray(), gx, { dtype: 'float32', rtol: 1e-3, atol: 1e-4, what: `${what} dx` });
      assertClose(await W.grad!.toArray(), gw, { dtype: 'float32', atol: 1e-5, terms: n, what: `${what} dweight` });
    }
  });

  test('float16 input and weight (float32 statistics)', async (t) => {
    if (needsDTypes(device, ['float16']).skip) return t.skip(needsDTypes(device, ['float16']).skip);
    const rng = testRng(`batchNorm f16 ${device}`, t);
    const x = randomND(rng, [4, 3, 5], { dtype: 'float16', low: -2, high: 2 });
    const w = randomND(rng, [3], { dtype: 'float16', low: 0.5, high: 1.5 });
    const X = fromND(x, 'float16', device).requiresGrad_();
    const W = fromND(w, 'float16', device).requiresGrad_();
    const y = batchNorm(X, null, null, W, null, { training: true });
    assert.equal(y.dtype, 'float16');
    assertClose(await y.toArray(), B.batchNormTrain(x, w, null, 1e-5), { dtype: 'float16', what: 'f16 batchNorm' });
    const up = randomND(rng, [4, 3, 5], { dtype: 'float16' });
    y.backward(fromND(up, 'float16', device));
    const [gx, gw] = B.batchNormGrads(x, w, up, 1e-5, null);
    assertClose(await X.grad!.toArray(), gx, { dtype: 'float16', atol: 1e-2, what: 'f16 dx' });
    assertClose(await W.grad!.toArray(), gw, { dtype: 'float16', atol: 1e-2, what: 'f16 dweight' });
  });

  test('gradients match finite differences of the oracle on tiny cases (train and eval)', async (t) => {
    const rng = testRng(`batchNorm gradcheck ${device}`, t);
    const x = randomND(rng, [3, 2, 2], { low: -2, high: 2 });
    const w = randomND(rng, [2], { low: 0.5, high: 1.5 });
    const b = randomND(rng, [2]);
    const up = randomND(rng, [3, 2, 2]);
    const rm = [0.3, -0.2];
    const rv = [0.8, 1.7];
    for (const training of [true, false]) {
      const [X, W, Bt] = [put(x, device, true), put(w, device, true), put(b, device, true)];
      const y = batchNorm(X, put(O.nd([2], rm), device), put(O.nd([2], rv), device), W, Bt, { training, eps: 0.01 });
      y.backward(put(up, device));
      const ref = ([a, wa, ba]: O.ND[]) =>
        training ? B.batchNormTrain(a!, wa!, ba!, 0.01) : B.normalize(a!, rm, rv, wa!, ba!, 0.01);
      const got = await Promise.all([X, W, Bt].map((p) => p.grad!.toArray()));
      assertGradClose(got, ref, [x, w, b], up, { rtol: 1e-3, atol: 1e-4, what: `batchNorm training=${training}` });
    }
  });

  test('batchNorm and pooling leave no tensors or buffers behind after forward and backward', async () => {
    const backend = getBackend(device);
    const live = () => ({ tensors: liveTensors(), buffers: backend.stats().liveBuffers });
    const x = put(O.nd([2, 3, 4, 5], 0.5), device, true);
    const w = put(O.nd([3], 1), device, true);
    const [rm, rv] = [put(O.nd([3], 0), device), put(O.nd([3], 1), device)];
    for (const training of [true, false]) {
      // counted with no await in between: garbage of earlier tests is finalized (and uncounted) only
      // between tasks, so an await here would let the counters drop by whatever the GC found
      const before = live();
      tidy(() => {
        const p = maxPool2d(batchNorm(x, rm, rv, w, null, { training }), { kernelSize: 2 }); // (2, 3, 2, 2)
        const q = adaptiveAvgPool2d(avgPool2d(p.reshape([6, 2, 2]), { kernelSize: 1 }), 1);
        q.sum().backward();
      });
      const grads = [x.grad!, w.grad!];
      x.grad = null;
      w.grad = null;
      const expected = { tensors: before.tensors + 2, buffers: before.buffers + 2 };
      assert.deepEqual(live(), expected, `training=${training}: tensors or buffers left behind`);
      await grads[0]!.toArray();
      for (const t of grads) t.dispose();
    }
    // outside tidy too: the functions free their own intermediates (views, statistics, 3-D reshapes)
    const x3 = put(O.nd([3, 4, 5], 0.25), device);
    const base = live();
    for (const y of [
      batchNorm(x, rm, rv, w, null, { training: true }),
      batchNorm(x, rm, rv, null, null, { training: false }),
      maxPool2d(x3, { kernelSize: 2 }),
      avgPool2d(x3, { kernelSize: 2 }),
      adaptiveAvgPool2d(x3, 2),
    ])
      y.dispose();
    assert.deepEqual(live(), base, 'intermediates left behind outside tidy');
  });

  test('batchNorm refuses bad arguments with errors naming the op and the shapes', () => {
    const x = put(O.nd([4, 3, 2]), device);
    const c3 = put(O.nd([3]), device);
    const c2 = put(O.nd([2]), device);
    assertThrowsWith(
      () => batchNorm(x, c2, c2, null, null, { training: true }),
      ['batchNorm', 'runningMean', '[2]', '3 channels'],
    );
    assertThrowsWith(() => batchNorm(x, c3, c3, c2, null, { training: false }), ['batchNorm', 'weight', '[2]']);
    assertThrowsWith(
      () => batchNorm(put(O.nd([5]), device), null, null, null, null, { training: true }),
      ['batchNorm', '[5]'],
    );
    assertThrowsWith(() => batchNorm(x, null, null, null, null, { training: false }), ['batchNorm', 'evaluation mode']);
    assertThrowsWith(() => batchNorm(x, c3, null, null, null, { training: true }), ['batchNorm', 'together']);
    const one = put(O.nd([1, 3]), device);
    assertThrowsWith(
      () => batchNorm(one, null, null, null, null, { training: true }),
      ['batchNorm', 'more than 1 value', '[1, 3]'],
    );
  });
});
