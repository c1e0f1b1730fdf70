// batchNorm with its fused epilogue, y = relu(bn(x) + residual), on every backend: forward and the
// gradients of x, weight, bias and the residual against the float64 oracle (test/oracle/batchnorm.ts
// plus the mask and sum written here) on odd shapes, train and eval, each combination of relu and
// residual, a strided residual; finite-difference gradchecks; BatchNorm2d's fuse option; and the
// counter that proves the ResNet forward makes fewer dispatches (same outputs as the unfused chain).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BatchNorm2d,
  Generator,
  ResNet,
  batchNorm,
  getBackend,
  noGrad,
  tensor,
  tidy,
  type BasicBlock,
  type DeviceName,
  type Tensor,
} from '../../src/index.js';
import * as B from '../oracle/batchnorm.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, testRng } from '../helpers/random.js';

const put = (a: O.ND, device: DeviceName, requiresGrad = false): Tensor =>
  tensor(a.data, { shape: a.shape, device, requiresGrad });

/** The float64 fused forward: relu?(bn(x) + r?) with batch (stats null) or given statistics. */
function fusedRef(
  x: O.ND,
  w: O.ND,
  b: O.ND,
  r: O.ND | null,
  relu: boolean,
  eps: number,
  stats: { mean: number[]; variance: number[] } | null,
): O.ND {
  const y = stats ? B.normalize(x, stats.mean, stats.variance, w, b, eps) : B.batchNormTrain(x, w, b, eps);
  return O.mapND(y, (v, i) => {
    const s = v + (r ? r.data[i]! : 0);
    return relu ? Math.max(s, 0) : s;
  });
}

const ODD_SHAPES = [
  [3, 5, 7],
  [2, 3, 5, 3],
  [5, 2],
];

forEachBackend((device) => {
  test('fused relu/residual: output and gradients of x, weight, bias and residual match the oracle', async (t) => {
    const rng = testRng(`batchNorm fused ${device}`, t);
    const eps = 1e-3;
    for (const shape of ODD_SHAPES)
      for (const training of [true, false])
        for (const relu of [false, true])
          for (const residual of [false, true]) {
            const c = shape[1]!;
            const x = randomND(rng, shape, { low: -2, high: 3 });
            const w = randomND(rng, [c], { low: 0.5, high: 1.5 });
            const b = randomND(rng, [c]);
            const r = residual ? randomND(rng, shape) : null;
            const rm = randomND(rng, [c], { low: -0.5, high: 0.5 });
            const rv = randomND(rng, [c], { low: 0.5, high: 2 });
            const stats = training ? null : { mean: [...rm.data], variance: [...rv.data] };
            const [X, W, Bt] = [put(x, device, true), put(w, device, true), put(b, device, true)];
            const R = r ? put(r, device, true) : null;
            const [RM, RV] = [put(rm, device), put(rv, device)];
            const y = batchNorm(X, RM, RV, W, Bt, { training, eps, relu, residual: R });
            const what = `[${shape.join(', ')}] training=${training} relu=${relu} residual=${residual}`;
            const want = fusedRef(x, w, b, r, relu, eps, stats);
            assertClose(await y.toArray(), want, { dtype: 'float32', atol: 1e-5, what });
            const up = randomND(rng, shape);
            y.backward(put(up, device));
            // the masked upstream gradient, then the plain batch-norm gradients; the residual gets it as is
            const g = O.mapND(up, (v, i) => (!relu || want.data[i]! > 0 ? v : 0));
            const [gx, gw, gb] = B.batchNormGrads(x, w, g, eps, stats);
            const n = x.data.length / c;
            const tol = { dtype: 'float32' as const, rtol: 1e-4, atol: 1e-5 };
            assertClose(await X.grad!.toArray(), gx, { ...tol, what: `${what} dx` });
            assertClose(await W.grad!.toArray(), gw, { ...tol, terms: n, what: `${what} dweight` });
            assertClose(await Bt.grad!.toArray(), gb, { ...tol, terms: n, what: `${what} dbias` });
            if (R) assertClose(await R.grad!.toArray(), g, { ...tol, what: `${what} dresidual` });
            for (const u of [X, W, Bt, R, RM, RV, y]) u?.dispose();
          }
  });

  test('a strided residual (a transposed view) is read through its strides', async (t) => {
    const rng = testRng(`batchNorm fused strided ${device}`, t);
    const x = randomND(rng, [3, 4, 5], { low: -1, high: 2 });
    const rt = randomND(rng, [3, 5, 4]); // the residual is rt transposed to (3, 4, 5)
    const r = O.transpose(rt, 1, 2);
    const y = tidy(() => {
      const R = put(rt, device).transpose(1, 2);
      return batchNorm(put(x, device), null, null, null, null, { training: true, residual: R, relu: true });
    });
    assertClose(await y.toArray(), fusedRef(x, O.nd([4], 1), O.nd([4], 0), r, true, 1e-5, null), {
      dtype: 'float32',
      atol: 1e-5,
      what: 'strided residual',
    });
    y.dispose();
  });

  test('fused gradients match finite differences of the float64 forward (train and eval)', async (t) => {
    const rng = testRng(`batchNorm fused gradcheck ${device}`, t);
    const x = randomND(rng, [3, 2, 3], { low: -2, high: 2 });
    const w = randomND(rng, [2], { low: 0.5, high: 1.5 });
    const b = randomND(rng, [2]);
    const r = randomND(rng, [3, 2, 3]);
    const up = randomND(rng, [3, 2, 3]);
    const stats = { mean: [0.3, -0.2], variance: [0.8, 1.7] };
    for (const training of [true, false]) {
      const P = [x, w, b, r].map((a) => put(a, device, true));
      const y = batchNorm(
        P[0]!,
        put(O.nd([2], stats.mean), device),
        put(O.nd([2], stats.variance), device),
        P[1]!,
        P[2]!,
        {
          training,
          eps: 0.01,
          relu: true,
          residual: P[3]!,
        },
      );
      y.backward(put(up, device));
      const ref = ([a, wa, ba, ra]: O.ND[]) => fusedRef(a!, wa!, ba!, ra!, true, 0.01, training ? null : stats);
      const got = await Promise.all(P.map((p) => p.grad!.toArray()));
      assertGradClose(got, ref, [x, w, b, r], up, {
        rtol: 1e-3,
        atol: 1e-4,
        what: `fused batchNorm training=${training}`,
      });
    }
  });

  test('BatchNorm2d fuse option equals the unfused chain and updates the running statistics once', async () => {
    const x = tensor(
      Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => Math.sin(i * 0.7) * 2),
      { shape: [2, 3, 4, 5], device },
    );
    const r = tensor(
      Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => Math.cos(i * 1.3)),
      { shape: [2, 3, 4, 5], device },
    );
    const [a, b] = [new BatchNorm2d(3, { device }), new BatchNorm2d(3, { device })];
    noGrad(() => {
      a.weight!.copy_(tensor([0.5, 1.5, -1], { device }));
      b.weight!.copy_(tensor([0.5, 1.5, -1], { device }));
    });
    const fused = a.forward(x, { residual: r, relu: true });
    const plain = tidy(() => b.forward(x).add(r).relu());
    assertClose(await fused.toArray(), await plain.toArray(), {
      dtype: 'float32',
      atol: 1e-6,
      what: 'BatchNorm2d fused',
    });
    assertClose(await a.running_var!.toArray(), await b.running_var!.toArray(), {
      dtype: 'float32',
      what: 'running var',
    });
    assert.deepEqual(await a.num_batches_tracked!.toArray(), await b.num_batches_tracked!.toArray());
    for (const u of [x, r, fused, plain]) u.dispose();
  });

  test('counter: a ResNet forward makes 1 + 3 * blocks fewer dispatches than the unfused chain, same logits', async () => {
    const cfg = { widths: [4, 8], blocks: [2, 1], numClasses: 5, inChannels: 3 };
    const net = new ResNet(cfg, { device, generator: new Generator(5) });
    const ref = new ResNet(cfg, { device, generator: new Generator(5) }); // same parameters
    const x = tensor(
      Array.from({ length: 2 * 3 * 8 * 8 }, (_, i) => Math.sin(i * 0.37)),
      { shape: [2, 3, 8, 8], device },
    );
    const backend = getBackend(device);
    // the unfused forward, written out with the same modules: conv, bn, relu and add as separate ops
    const unfused = (m: ResNet) =>
      tidy(() => {
        let h = m.bn1.forward(m.conv1.forward(x)).relu();
        for (const stage of m.layers)
          for (const blk of stage.children() as BasicBlock[]) {
            const o = blk.bn2.forward(blk.conv2.forward(blk.bn1.forward(blk.conv1.forward(h)).relu()));
            h = o.add(blk.downsample ? blk.downsample.forward(h) : h).relu();
          }
        return m.fc.forward(m.avgpool.forward(h).flatten(1));
      });
    for (const training of [true, false]) {
      net.train(training);
      ref.train(training);
      for (const warm of [net.forward(x), unfused(ref)]) warm.dispose(); // one-time work out of the count
      const d0 = backend.stats().dispatches;
      const y = net.forward(x);
      const d1 = backend.stats().dispatches;
      const z = unfused(ref);
      const d2 = backend.stats().dispatches;
      // the stem saves its relu; each block its bn1 relu and bn2's add and relu
      const blocks = cfg.blocks.reduce((s, v) => s + v, 0);
      assert.equal(d1 - d0, d2 - d1 - (1 + 3 * blocks), `training=${training}: fused ${d1 - d0}, unfused ${d2 - d1}`);
      assertClose(await y.toArray(), await z.toArray(), {
        dtype: 'float32',
        atol: 1e-5,
        what: `logits training=${training}`,
      });
      y.dispose();
      z.dispose();
    }
    x.dispose();
  });
});
