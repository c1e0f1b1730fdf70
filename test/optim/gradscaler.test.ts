// GradScaler: PyTorch's dynamic loss-scaling schedule (hand-computed here), exact unscaling (powers of two),
// the on-device found-inf flag for inf, -inf and NaN, a skipped step that leaves parameters and optimizer
// state untouched, state-dict round trips and clear errors for misuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, GradScaler, SGD } from '../../src/optim/index.js';
import { noGrad, tensor, type Tensor } from '../../src/tensor/index.js';
import '../../src/autograd/index.js';
import { forEachBackendAsDefault, needsDTypes } from '../helpers/backends.js';

/** A float32 parameter of `n` elements. */
function param(values: number[]): Tensor {
  return tensor(Float32Array.from(values), { requiresGrad: true });
}

/** Backpropagates scaler.scale(sum(p * c)), so p.grad = c * scale. */
function backwardScaled(scaler: GradScaler, p: Tensor, c: number[]): void {
  const loss = p.mul(tensor(Float32Array.from(c))).sum();
  scaler.scale(loss).backward();
}

/** One scaler iteration over an SGD parameter whose gradient is finite, or poisoned with `bad`. */
async function iteration(scaler: GradScaler, bad?: number): Promise<boolean> {
  const p = param([1, 2]);
  const opt = new SGD([p], { lr: 0.1 });
  backwardScaled(scaler, p, [0.5, -0.25]);
  if (bad !== undefined) noGrad(() => p.grad!.narrow(0, 1, 1).fill_(bad));
  const stepped = await scaler.step(opt);
  scaler.update();
  return stepped;
}

forEachBackendAsDefault((device) => {
  test('defaults are PyTorch GradScaler defaults: scale 2^16, growth 2, backoff 0.5, interval 2000', () => {
    assert.deepEqual(new GradScaler().stateDict(), {
      scale: 65536,
      growthFactor: 2,
      backoffFactor: 0.5,
      growthInterval: 2000,
      growthTracker: 0,
    });
  });

  test('the scale grows after growthInterval finite steps and backs off on inf, restarting the count', async () => {
    const scaler = new GradScaler({ initScale: 8, growthFactor: 4, backoffFactor: 0.25, growthInterval: 3 });
    // hand-computed: 8 -F-> 8 -F-> 8 -F-> 32 (3 finite) -F-> 32 -inf-> 8 (count restarts) -F-> 8 -F-> 8 -F-> 32 -NaN-> 8
    const plan: (number | undefined)[] = [undefined, undefined, undefined, undefined, Infinity];
    plan.push(undefined, undefined, undefined, NaN);
    const expected = [8, 8, 32, 32, 8, 8, 8, 32, 8];
    const seen: number[] = [];
    for (const bad of plan) {
      const stepped = await iteration(scaler, bad);
      assert.equal(stepped, bad === undefined, `stepped iff the grads were finite (bad=${bad})`);
      seen.push(scaler.scaleFactor);
    }
    assert.deepEqual(seen, expected);
  });

  test('scale multiplies the loss and unscale_ divides the gradients exactly (powers of two)', async () => {
    const scaler = new GradScaler({ initScale: 2 ** 10 });
    const c = [0.1, -3.7, 1e-6, 12345.678];
    const p = param([1, 1, 1, 1]);
    const loss = p.mul(tensor(Float32Array.from(c))).sum();
    const scaled = scaler.scale(loss);
    assert.equal(await scaled.item(), (await loss.item()) * 2 ** 10, 'times a power of two: exact');
    scaled.backward();
    assert.deepEqual(Array.from(await p.grad!.toArray()), Array.from(Float32Array.from(c, (v) => v * 2 ** 10)));
    const flag = scaler.unscale_([p]);
    assert.deepEqual(Array.from(await p.grad!.toArray()), Array.from(Float32Array.from(c)), 'exactly the unscaled c');
    assert.equal(await flag.item(), 0, 'no inf found');
  });

  test(
    'a float16 loss is scaled in float32, so 3 * 2^16 does not overflow float16',
    needsDTypes(device, ['float16']),
    async () => {
      const scaled = new GradScaler().scale(tensor(Float32Array.of(3)).cast('float16').reshape([]));
      assert.equal(scaled.dtype, 'float32');
      assert.equal(await scaled.item(), 3 * 65536);
    },
  );

  test('the found-inf flag is 1 for inf, -inf and NaN in any gradient, 0 otherwise', async () => {
    for (const bad of [Infinity, -Infinity, NaN, undefined]) {
      const scaler = new GradScaler();
      const a = param([1, 2, 3]);
      const b = param([4]);
      backwardScaled(scaler, a, [1, 2, 3]);
      backwardScaled(scaler, b, [5]);
      if (bad !== undefined) noGrad(() => a.grad!.narrow(0, 2, 1).fill_(bad));
      const flag = scaler.unscale_([a, b]);
      assert.equal(flag.dtype, 'float32');
      assert.deepEqual(flag.shape, []);
      assert.equal(await flag.item(), bad === undefined ? 0 : 1, `bad=${bad}`);
    }
  });

  test('a skipped step leaves parameters and AdamW state unchanged; the next finite step updates again', async () => {
    const scaler = new GradScaler({ initScale: 2 ** 8 });
    const p = param([0.5, -1, 2]);
    const opt = new AdamW([p], { lr: 0.1 });
    const snapshot = async () => ({
      p: Array.from(await p.toArray()),
      step: opt.stepCount,
      state: await Promise.all(
        Object.values(opt.stateDict().state[0]?.tensors ?? {}).map(async (t) => Array.from(await t.toArray())),
      ),
    });
    backwardScaled(scaler, p, [1, 2, 3]);
    assert.equal(await scaler.step(opt), true);
    scaler.update();
    opt.zeroGrad();
    const before = await snapshot();
    assert.equal(before.step, 1);

    backwardScaled(scaler, p, [1, 2, 3]);
    noGrad(() => p.grad!.narrow(0, 0, 1).fill_(Infinity));
    assert.equal(await scaler.step(opt), false, 'inf grads skip the step');
    scaler.update();
    opt.zeroGrad();
    assert.deepEqual(await snapshot(), before, 'parameters, step count and moments untouched');
    assert.equal(scaler.scaleFactor, 2 ** 7, 'the scale halved');

    backwardScaled(scaler, p, [1, 2, 3]);
    assert.equal(await scaler.step(opt), true);
    scaler.update();
    const after = await snapshot();
    assert.equal(after.step, 2);
    assert.notDeepEqual(after.p, before.p);
  });

  test('step takes a found value the caller already read (no read of its own)', async () => {
    const scaler = new GradScaler();
    const p = param([1]);
    const opt = new SGD([p], { lr: 1 });
    backwardScaled(scaler, p, [2]);
    scaler.unscale_(opt);
    // the flag is 0 on the device; the caller's value 1 (as if it had read an overflow) decides
    assert.equal(await scaler.step(opt, 1), false);
    scaler.update();
    assert.deepEqual(Array.from(await p.toArray()), [1], 'not updated');
    assert.equal(scaler.scaleFactor, 2 ** 15);
  });

  test('stateDict / loadStateDict round trip continues the same schedule', async () => {
    const opts = { initScale: 16, growthInterval: 3 };
    const a = new GradScaler(opts);
    await iteration(a);
    await iteration(a);
    const sd = a.stateDict();
    assert.deepEqual(sd, { scale: 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3, growthTracker: 2 });
    const b = new GradScaler(opts);
    b.loadStateDict(JSON.parse(JSON.stringify(sd)) as typeof sd);
    assert.deepEqual(b.stateDict(), sd);
    await iteration(a);
    await iteration(b);
    assert.equal(a.scaleFactor, 32, 'the third finite step grows it');
    assert.equal(b.scaleFactor, 32, 'so does the restored one');
    assert.throws(() => new GradScaler({ growthInterval: 5 }).loadStateDict(sd), /growthInterval 3, this scaler 5/);
    assert.throws(() => b.loadStateDict({ ...sd, scale: -1 }), /loadStateDict: the scale must be a finite number > 0/);
  });

  test('bad options and out-of-order calls are clear errors', async () => {
    assert.throws(() => new GradScaler({ initScale: 0 }), /initScale must be a finite number > 0, got 0/);
    assert.throws(() => new GradScaler({ growthFactor: 1 }), /growthFactor must be a finite number > 1, got 1/);
    assert.throws(() => new GradScaler({ backoffFactor: 1.5 }), /backoffFactor must be in \(0, 1\), got 1.5/);
    assert.throws(() => new GradScaler({ growthInterval: 0.5 }), /growthInterval must be an integer >= 1, got 0.5/);
    const scaler = new GradScaler();
    assert.throws(() => scaler.update(), /no step\(\) since the last update/);
    const p = param([1]);
    backwardScaled(scaler, p, [1]);
    scaler.unscale_([p]);
    assert.throws(() => scaler.unscale_([p]), /already called since the last update/);
    await scaler.step(new SGD([p], { lr: 1 }));
    await assert.rejects(scaler.step(new SGD([p], { lr: 1 })), /already called since the last update/);
    scaler.update();
  });
});
