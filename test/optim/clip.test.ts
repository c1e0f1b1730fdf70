// Gradient clipping against float64 norms computed here: L2, L1, L3 and infinity norms, the clipping
// and the not-clipping cases, skipped null gradients, clipping by value, and no host reads; on every
// backend (the default device is set per backend).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clipGradNorm_, clipGradValue_ } from '../../src/optim/index.js';
import { Tensor, getBackend, tensor } from '../../src/tensor/index.js';
import { assertClose } from '../helpers/assert.js';
import { testRng, type Rng } from '../helpers/random.js';
import { f32Normals, param, values } from './reference.js';
import { forEachBackendAsDefault, needsDTypes } from '../helpers/backends.js';

const SHAPES = [[4, 5], [7], [2, 3, 2]];

function setup(rng: Rng, std: number): { params: Tensor[]; grads: Float64Array[] } {
  const params = SHAPES.map((s) => param(new Float64Array(s.reduce((a, b) => a * b, 1)), s));
  const grads = params.map((p) => f32Normals(rng, p.size, std));
  params.forEach((p, i) => (p.grad = tensor(Float32Array.from(grads[i]!), { shape: p.shape })));
  return { params, grads };
}

/** The float64 total norm of all gradients seen as one vector. */
function refNorm(grads: readonly Float64Array[], p: number): number {
  const all = grads.flatMap((g) => Array.from(g, Math.abs));
  if (p === Infinity) return Math.max(...all);
  return all.reduce((s, x) => s + x ** p, 0) ** (1 / p);
}

forEachBackendAsDefault((device) => {
  for (const normType of [2, 1, 3, Infinity]) {
    for (const clipping of [true, false]) {
      test(`clipGradNorm_ p=${normType} ${clipping ? 'clips' : 'leaves small gradients alone'}`, async (t) => {
        const { params, grads } = setup(testRng(`clip ${normType} ${clipping}`, t), 1);
        const total = refNorm(grads, normType);
        const maxNorm = clipping ? total / 3 : total * 2;
        const norm = clipGradNorm_(params, maxNorm, normType);
        assert.ok(norm instanceof Tensor, 'returns a tensor, not a promise or a number');
        assert.deepEqual(norm.shape, [], 'the norm is a 0-d tensor');
        assertClose(await norm.toArray(), [total], { dtype: 'float32', what: `total norm p=${normType}` });
        const coef = Math.min(1, maxNorm / (total + 1e-6));
        for (const [i, p] of params.entries()) {
          assertClose(
            await values(p.grad!),
            grads[i]!.map((g) => g * coef),
            { dtype: 'float32', what: `clipped grad ${i}` },
          );
        }
        if (clipping)
          assertClose([refNorm(await Promise.all(params.map((p) => values(p.grad!))), normType)], [maxNorm], {
            dtype: 'float32',
            rtol: 1e-5,
            what: 'norm after clipping',
          });
      });
    }
  }

  test('clipGradNorm_ skips parameters without gradients and handles none at all', async (t) => {
    const { params, grads } = setup(testRng('clip null grads', t), 2);
    params[1]!.grad!.dispose();
    params[1]!.grad = null;
    const kept = [grads[0]!, grads[2]!];
    const total = refNorm(kept, 2);
    const norm = clipGradNorm_(params, 1);
    assertClose(await norm.toArray(), [total], { dtype: 'float32', what: 'norm over the set gradients' });
    assertClose(
      await values(params[2]!.grad!),
      grads[2]!.map((g) => g / (total + 1e-6)),
      { dtype: 'float32', what: 'clipped' },
    );
    assert.equal(params[1]!.grad, null);
    const none = clipGradNorm_([param([1, 2], [2])], 1);
    assert.deepEqual(Array.from(await none.toArray()), [0]);
  });

  test('clipGradNorm_ with a single tensor and float16 gradients', async (t) => {
    if (needsDTypes(device, ['float16']).skip) return t.skip(needsDTypes(device, ['float16']).skip);
    const rng = testRng('clip f16', t);
    const p = tensor(new Float32Array(6), { shape: [6], dtype: 'float16', requiresGrad: true });
    const g = f32Normals(rng, 6, 100);
    p.grad = tensor(Float32Array.from(g), { shape: [6], dtype: 'float16' });
    const g16 = await values(p.grad);
    const total = refNorm([g16], 2);
    const norm = clipGradNorm_(p, 10);
    assert.equal(norm.dtype, 'float32');
    assertClose(await norm.toArray(), [total], {
      dtype: 'float32',
      rtol: 1e-5,
      what: 'norm of float16 grads (accumulated in float32)',
    });
    assertClose(
      await values(p.grad),
      g16.map((x) => (x * 10) / (total + 1e-6)),
      { dtype: 'float16', what: 'clipped float16 grads' },
    );
  });

  test('clipGradNorm_ and clipGradValue_ do not read from the device', () => {
    const { params } = setup(testRng('clip no sync', undefined), 1);
    const backend = getBackend(device);
    const before = backend.stats().bytesDownloaded;
    const norm = clipGradNorm_(params, 0.5);
    clipGradValue_(params, 0.1);
    assert.equal(backend.stats().bytesDownloaded, before, 'no bytes were read back');
    norm.dispose();
  });

  test('clipGradValue_ clamps every element in place', async (t) => {
    const { params, grads } = setup(testRng('clip value', t), 1);
    const bufs = params.map((p) => p.grad);
    clipGradValue_(params, 0.5);
    for (const [i, p] of params.entries()) {
      assert.equal(p.grad, bufs[i], 'same gradient tensor');
      assertClose(
        await values(p.grad!),
        grads[i]!.map((g) => Math.min(0.5, Math.max(-0.5, g))),
        { dtype: 'float32', what: `grad ${i}` },
      );
    }
  });

  test('clipping rejects invalid arguments', () => {
    const p = param([1], [1]);
    assert.throws(() => clipGradNorm_(p, -1), /invalid maxNorm -1/);
    assert.throws(() => clipGradNorm_(p, 1, 0), /invalid normType 0/);
    assert.throws(() => clipGradValue_(p, NaN), /invalid clipValue NaN/);
  });
});
