// Autograd semantics: accumulation, shared subexpressions and diamonds, explicit/implicit gradients,
// retainGraph, noGrad/enableGrad/detach, hooks, retainGrad, requiresGrad propagation, the in-place
// version checks, and disposing user handles after the forward pass. Expected gradients come from
// central differences of the float64 oracle (or, where the gradient is a plain input, from that input).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AutogradError,
  TensorloomError,
  enableGrad,
  isGradEnabled,
  keep,
  noGrad,
  tidy,
  type DeviceName,
  type Tensor,
} from '../../src/index.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { testRng, testSeed } from '../helpers/random.js';
import { GRAD_TOL, fromND, thrown, uniform } from './util.js';

const gradOpts = { ...GRAD_TOL, seed: 0 };

async function grads(xs: readonly Tensor[]): Promise<Float32Array[]> {
  return Promise.all(
    xs.map(async (x, i) => {
      assert.ok(x.grad, `input ${i} has no gradient`);
      return (await x.grad.toArray()) as Float32Array;
    }),
  );
}

function disposeAll(...ts: (Tensor | null | undefined)[]): void {
  for (const t of ts) t?.dispose();
}

forEachBackend((device: DeviceName) => {
  gradOpts.seed = testSeed();

  test('gradients accumulate across two backward calls (grad doubles)', async (t) => {
    const rng = testRng('sem accumulate', t);
    const w = uniform(rng, [3, 4]);
    const x = fromND(uniform(rng, [3, 4]), device, { requiresGrad: true });
    const W = fromND(w, device);
    for (let i = 0; i < 2; i++) {
      const loss = tidy(() => x.mul(W).sum());
      loss.backward();
      loss.dispose();
    }
    // d/dx sum(x * w) = w, twice
    assertClose(await x.grad!.toArray(), O.mul(w, 2), { dtype: 'float32', what: 'accumulated gradient' });
    disposeAll(x, W);
  });

  test('the same tensor used twice (x * x) and a diamond graph', async (t) => {
    const rng = testRng('sem diamond', t);
    const xv = uniform(rng, [2, 3]);
    const x = fromND(xv, device, { requiresGrad: true });
    // x*x
    const y1 = tidy(() => x.mul(x));
    const up1 = uniform(rng, [2, 3]);
    const g1 = fromND(up1, device);
    y1.backward(g1);
    assertGradClose(await grads([x]), (xs) => O.mul(xs[0]!, xs[0]!), [xv], up1, { ...gradOpts, what: 'x * x' });
    x.grad!.dispose();
    x.grad = null;
    // diamond: a = exp(x) feeds two branches of different depth that meet again, plus x itself
    const f = (X: Tensor): Tensor => {
      const a = X.exp();
      const b = a.mul(2).sin();
      const c = a.mul(a.tanh());
      return b.add(c).add(X).mul(a);
    };
    const ref = (xs: O.ND[]): O.ND => {
      const a = O.unary('exp', xs[0]!);
      const b = O.unary('sin', O.mul(a, 2));
      const c = O.mul(a, O.unary('tanh', a));
      return O.mul(O.add(O.add(b, c), xs[0]!), a);
    };
    const y2 = tidy(() => f(x));
    const up2 = uniform(rng, [2, 3]);
    const g2 = fromND(up2, device);
    y2.backward(g2);
    assertGradClose(await grads([x]), ref, [xv], up2, { ...gradOpts, what: 'diamond' });
    disposeAll(x, y1, g1, y2, g2);
  });

  test('backward with an explicit gradient, and with a one-element non-scalar root', async (t) => {
    const rng = testRng('sem explicit', t);
    const xv = uniform(rng, [3, 4]);
    const x = fromND(xv, device, { requiresGrad: true });
    const y = tidy(() => x.tanh());
    const up = uniform(rng, [3, 4]);
    const g = fromND(up, device);
    y.backward(g);
    assertGradClose(await grads([x]), (xs) => O.unary('tanh', xs[0]!), [xv], up, {
      ...gradOpts,
      what: 'explicit gradient',
    });
    // the caller's gradient tensor is neither consumed nor modified
    assert.equal(g.disposed, false);
    assert.deepEqual(Array.from(await g.toArray()), Array.from(up.data).map(Math.fround));
    disposeAll(y, g);
    // a [1, 1] root takes the implicit gradient 1
    x.grad!.dispose();
    x.grad = null;
    const z = tidy(() => x.sum([0, 1], true));
    assert.deepEqual(z.shape, [1, 1]);
    z.backward();
    assertClose(await x.grad!.toArray(), O.nd([3, 4], 1), {
      dtype: 'float32',
      what: 'implicit gradient of a [1, 1] root',
    });
    disposeAll(z, x);
  });

  test('backward on a leaf with an explicit gradient sets its grad', async (t) => {
    const rng = testRng('sem leaf root', t);
    const up = uniform(rng, [2, 2]);
    const x = fromND(uniform(rng, [2, 2]), device, { requiresGrad: true });
    const g = fromND(up, device);
    x.backward(g);
    assertClose(await x.grad!.toArray(), up, { dtype: 'float32', what: 'leaf root gradient' });
    disposeAll(x, g);
  });

  test('implicit backward on a non-scalar throws; a gradient of the wrong shape throws', () => {
    const x = fromND(O.nd([3, 4], 0.5), device, { requiresGrad: true });
    const y = tidy(() => x.exp());
    const e = thrown(() => y.backward(), 'implicit backward on [3, 4]');
    assert.ok(e instanceof AutogradError, `expected AutogradError, got ${e.name}`);
    assert.match(e.message, /\[3, 4\]/);
    assert.match(e.message, /gradient/);
    const bad = fromND(O.nd([4, 3], 1), device);
    const e2 = thrown(() => y.backward(bad), 'backward with a [4, 3] gradient for a [3, 4] tensor');
    assert.ok(e2 instanceof AutogradError);
    assert.match(e2.message, /\[4, 3\]/);
    assert.match(e2.message, /\[3, 4\]/);
    assert.equal(x.grad, null, 'a refused backward leaves no gradient');
    disposeAll(x, y, bad);
  });

  for (const [label, build] of [
    ['exp (saves its output)', (x: Tensor) => x.exp().sum()],
    ['mul (saves its inputs)', (x: Tensor) => x.mul(x).sum()],
    ['sqrt then mul', (x: Tensor) => x.sqrt().mul(x).sum()],
  ] as [string, (x: Tensor) => Tensor][]) {
    test(`backward twice without retainGraph throws mentioning retainGraph; with it, works: ${label}`, async (t) => {
      const rng = testRng(`sem retain ${label}`, t);
      const xv = uniform(rng, [2, 3], 0.5, 2);
      const x = fromND(xv, device, { requiresGrad: true });
      const y = tidy(() => build(x));
      y.backward();
      const once = Float64Array.from(await x.grad!.toArray());
      const e = thrown(() => y.backward(), 'second backward');
      assert.ok(e instanceof AutogradError, `expected AutogradError, got ${e.name}: ${e.message}`);
      assert.match(e.message, /retainGraph/, `the message should say how to fix it: ${e.message}`);
      disposeAll(y, x);

      const x2 = fromND(xv, device, { requiresGrad: true });
      const y2 = tidy(() => build(x2));
      y2.backward(undefined, { retainGraph: true });
      y2.backward(undefined, { retainGraph: true });
      y2.backward(); // the last pass may free the graph
      assertClose(await x2.grad!.toArray(), O.mul(O.nd(x2.shape, once), 3), {
        dtype: 'float32',
        what: 'three accumulated passes',
      });
      disposeAll(y2, x2);
    });
  }

  test('noGrad records no graph; enableGrad inside it does; the mode is restored after a throw', () => {
    const x = fromND(O.nd([2, 2], 0.5), device, { requiresGrad: true });
    const y = noGrad(() => x.exp().mul(2).sum());
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    assert.equal(y.isLeaf, true);
    const z = noGrad(() => enableGrad(() => x.exp()));
    assert.equal(z.requiresGrad, true);
    assert.ok(z.gradFn);
    assert.equal(isGradEnabled(), true);
    assert.throws(() =>
      noGrad(() => {
        throw new Error('boom');
      }),
    );
    assert.equal(isGradEnabled(), true, 'noGrad must restore the mode after a throw');
    disposeAll(x, y, z);
  });

  test('detach: no grad, same storage, and gradient does not flow through it', async (t) => {
    const rng = testRng('sem detach', t);
    const xv = uniform(rng, [2, 3]);
    const x = fromND(xv, device, { requiresGrad: true });
    const d = x.detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.isLeaf, true);
    // shares storage: an in-place write through the detached handle shows in x
    noGrad(() => d.add_(1));
    assertClose(await x.toArray(), O.add(xv, 1), { dtype: 'float32', what: 'x after writing through detach()' });
    noGrad(() => d.sub_(1));
    // y = x * detach(x): dy/dx = detach(x) only
    const y = tidy(() => x.mul(x.detach()).sum());
    y.backward();
    assertClose(await x.grad!.toArray(), xv, {
      dtype: 'float32',
      rtol: 1e-6,
      atol: 1e-6,
      what: 'gradient through x * detach(x)',
    });
    disposeAll(x, d, y);
  });

  test('registerHook on a leaf can scale the gradient and observe it', async (t) => {
    const rng = testRng('sem leaf hook', t);
    const w = uniform(rng, [3]);
    const x = fromND(uniform(rng, [3]), device, { requiresGrad: true });
    const W = fromND(w, device);
    const seen: { grad: Tensor | null; calls: number } = { grad: null, calls: 0 };
    x.registerHook((g) => {
      seen.calls++;
      seen.grad = keep(g.clone());
    });
    x.registerHook((g) => g.mul(3));
    const y = tidy(() => x.mul(W).sum());
    y.backward();
    assert.equal(seen.calls, 1);
    assertClose(await seen.grad!.toArray(), w, { dtype: 'float32', what: 'gradient seen by the first hook' });
    assertClose(await x.grad!.toArray(), O.mul(w, 3), { dtype: 'float32', what: 'gradient scaled by the second hook' });
    disposeAll(x, W, y, seen.grad);
  });

  test('registerHook on a non-leaf replaces the gradient flowing upstream', async (t) => {
    const rng = testRng('sem nonleaf hook', t);
    const xv = uniform(rng, [2, 3]);
    const x = fromND(xv, device, { requiresGrad: true });
    const h = x.exp();
    h.registerHook((g) => g.mul(10));
    const y = h.mul(2).sum();
    y.backward();
    // d/dx sum(2 exp(x)) = 2 exp(x), times 10 by the hook
    assertClose(await x.grad!.toArray(), O.mul(O.unary('exp', xv), 20), {
      dtype: 'float32',
      what: 'gradient through the hook',
    });
    const c = fromND(O.nd([2], 1), device);
    const e = thrown(() => c.registerHook(() => undefined), 'registerHook on a tensor without grad');
    assert.ok(e instanceof TensorloomError);
    assert.match(e.message, /require/);
    disposeAll(x, h, y, c);
  });

  test('retainGrad stores the gradient of a non-leaf; without it a non-leaf has none', async (t) => {
    const rng = testRng('sem retainGrad', t);
    const xv = uniform(rng, [2, 3]);
    const x = fromND(xv, device, { requiresGrad: true });
    const h = x.mul(3);
    const k = h.sin();
    h.retainGrad();
    const up = uniform(rng, [2, 3]);
    const g = fromND(up, device);
    k.backward(g);
    assert.ok(h.grad, 'retained gradient');
    assert.equal(k.grad, null, 'a non-leaf without retainGrad keeps no gradient');
    // d/dh sum(up * sin(h)) = up * cos(h)
    assertClose(await h.grad.toArray(), O.mul(up, O.unary('cos', O.mul(xv, 3))), {
      dtype: 'float32',
      rtol: 1e-5,
      atol: 1e-6,
      what: 'retained gradient',
    });
    // a leaf's retainGrad is a no-op (it keeps its grad anyway)
    x.retainGrad();
    assertGradClose(await grads([x]), (xs) => O.unary('sin', O.mul(xs[0]!, 3)), [xv], up, {
      ...gradOpts,
      what: 'leaf gradient',
    });
    disposeAll(x, h, k, g);
  });

  test('requiresGrad propagation rules', () => {
    const a = fromND(O.nd([2, 3], 0.5), device, { requiresGrad: true });
    const b = fromND(O.nd([2, 3], 2), device);
    const ids = fromND(O.nd([2], 1), device, { dtype: 'int32' });
    assert.equal(b.requiresGrad, false, 'tensors do not require grad by default');
    assert.equal(a.isLeaf, true);
    const checks: [string, Tensor, boolean][] = [
      ['op of a grad input', a.exp(), true],
      ['op of no-grad inputs', b.exp(), false],
      ['mixed inputs', a.add(b), true],
      ['scalar operand', a.mul(2), true],
      ['view of a grad input', a.reshape([3, 2]), true],
      ['transpose of a grad input', a.transpose(), true],
      ['comparison (not differentiable)', a.gt(b), false],
      ['argmax (not differentiable)', a.argmax(1), false],
      ['sign (not differentiable)', a.sign(), false],
      ['floor (not differentiable)', a.floor(), false],
      ['gather with an index of a grad input', a.gather(1, fromND(O.nd([2, 1], 0), device, { dtype: 'int32' })), true],
      ['indexSelect of a no-grad input', b.indexSelect(0, ids), false],
      ['detach', a.detach(), false],
      ['clone', a.clone(), true],
    ];
    for (const [what, t, want] of checks) {
      assert.equal(t.requiresGrad, want, `${what}: requiresGrad`);
      assert.equal(t.isLeaf, !want, `${what}: isLeaf`);
      assert.equal(t.gradFn === null, !want, `${what}: gradFn`);
    }
    // requiresGrad_ on a leaf toggles, on a non-leaf throws
    b.requiresGrad_();
    assert.equal(b.requiresGrad, true);
    b.requiresGrad_(false);
    assert.equal(b.requiresGrad, false);
    const e = thrown(() => checks[0]![1].requiresGrad_(false), 'requiresGrad_ on a non-leaf');
    assert.ok(e instanceof TensorloomError);
    assert.match(e.message, /leaf/);
    disposeAll(a, b, ids, ...checks.map((c) => c[1]));
  });

  test('a cast to an integer dtype carries no gradient (truncation is piecewise constant)', async (t) => {
    const rng = testRng('sem int cast', t);
    // values away from integers, so the finite differences of trunc are exactly 0
    const xv = O.mapND(uniform(rng, [2, 3], -3, 3), (v) => Math.fround(Math.trunc(v) + (v < 0 ? -0.5 : 0.5)));
    const wv = uniform(rng, [2, 3]);
    const x = fromND(xv, device, { requiresGrad: true });
    const w = fromND(wv, device);
    const loss = tidy(() => x.cast('int32').cast('float32').mul(2).add(x.mul(w)).sum());
    loss.backward();
    // reference: sum(2 * trunc(x) + x * w), whose gradient is w
    const ref = (xs: O.ND[]): O.ND => O.sum(O.add(O.mul(O.mapND(xs[0]!, Math.trunc), 2), O.mul(xs[0]!, wv)));
    assertGradClose(await grads([x]), ref, [xv], O.scalar(1), { ...gradOpts, what: 'gradient through an int32 cast' });
    const asInt = x.cast('int32');
    assert.equal(asInt.requiresGrad, false, 'an int32 tensor should not require grad (as in PyTorch)');
    disposeAll(x, w, asInt, loss);
  });

  for (const [label, build] of [
    [
      'a saved output (exp), modified by add_',
      (x: Tensor) => {
        const a = x.mul(1);
        const b = a.exp();
        noGrad(() => b.add_(1));
        return b.sum();
      },
    ],
    [
      'a saved input (mul), modified by mul_',
      (x: Tensor) => {
        const a = x.mul(1);
        const c = a.mul(a.sin());
        noGrad(() => a.mul_(2));
        return c.sum();
      },
    ],
    [
      'a saved tensor modified through a view of its storage',
      (x: Tensor) => {
        const a = x.mul(1);
        const b = a.sqrt();
        noGrad(() => b.reshape([-1]).slice(0, 0, 2).fill_(7));
        return b.sum();
      },
    ],
    [
      'a saved leaf (mul saves x), modified by copy_',
      (x: Tensor) => {
        const y = x.mul(x);
        noGrad(() => x.copy_(x.detach().mul(0.5)));
        return y.sum();
      },
    ],
  ] as [string, (x: Tensor) => Tensor][]) {
    test(`in-place modification of a saved tensor makes backward throw: ${label}`, () => {
      const x = fromND(O.nd([2, 3], 0.7), device, { requiresGrad: true });
      const loss = tidy(() => build(x));
      const e = thrown(() => loss.backward(), 'backward after an in-place write');
      assert.ok(e instanceof AutogradError, `expected AutogradError, got ${e.name}: ${e.message}`);
      assert.match(e.message, /in-place/);
      assert.match(e.message, /version/);
      disposeAll(loss, x);
    });
  }

  test('in-place writes to tensors that are not saved do not break backward', async () => {
    const x = fromND(O.nd([2, 3], 0.7), device, { requiresGrad: true });
    const a = x.add(1); // add saves nothing
    const loss = a.sum();
    noGrad(() => a.mul_(5));
    loss.backward();
    assertClose(await x.grad!.toArray(), O.nd([2, 3], 1), { dtype: 'float32', what: 'gradient of sum(x + 1)' });
    disposeAll(x, a, loss);
  });

  test('an in-place op on a tensor that requires grad while recording throws a clear error', async () => {
    const x = fromND(O.nd([2, 3], 0.5), device, { requiresGrad: true });
    const y = x.exp();
    const plain = fromND(O.nd([2, 3], 1), device);
    for (const [what, fn] of [
      ['add_ on a leaf', () => x.add_(1)],
      ['mul_ on a non-leaf', () => y.mul_(2)],
      ['exp_ on a leaf', () => x.exp_()],
      ['fill_ on a leaf', () => x.fill_(0)],
      ['zero_ on a view of a leaf', () => x.reshape([6]).zero_()],
      ['add_ of a grad tensor into a plain one', () => plain.add_(x)],
      ['copy_ from a grad tensor', () => plain.copy_(x)],
    ] as [string, () => unknown][]) {
      const e = thrown(fn, what);
      assert.ok(e instanceof AutogradError, `${what}: expected AutogradError, got ${e.name}: ${e.message}`);
      assert.match(e.message, /in-place/, what);
      assert.match(e.message, /noGrad/, `${what}: the message should name the fix`);
    }
    // nothing was written
    assertClose(await x.toArray(), O.nd([2, 3], 0.5), { dtype: 'float32', what: 'x after refused in-place ops' });
    assertClose(await plain.toArray(), O.nd([2, 3], 1), { dtype: 'float32', what: 'plain after refused in-place ops' });
    assert.equal(x.version, 0);
    // under noGrad the same write is allowed and bumps the version
    noGrad(() => x.add_(1));
    assert.equal(x.version, 1);
    assertClose(await x.toArray(), O.nd([2, 3], 1.5), { dtype: 'float32', what: 'x after noGrad add_' });
    disposeAll(x, y, plain);
  });

  test('disposing user handles after forward does not break backward and gives the same gradient', async (t) => {
    const rng = testRng('sem dispose after save', t);
    const xv = uniform(rng, [3, 4]);
    const wv = uniform(rng, [4, 2]);
    const ref = (xs: O.ND[]): O.ND => {
      const h = O.unary('tanh', O.matmul(xs[0]!, xs[1]!));
      return O.sum(O.mul(O.unary('exp', h), h));
    };
    const run = async (disposeEarly: boolean): Promise<Float32Array[]> => {
      const x = fromND(xv, device, { requiresGrad: true });
      const w = fromND(wv, device, { requiresGrad: true });
      const m = x.matmul(w); // saves x and w
      const h = m.tanh(); // saves its output
      const e = h.exp(); // saves its output
      const p = e.mul(h); // saves e and h
      const loss = p.sum();
      if (disposeEarly) for (const t of [m, h, e, p]) t.dispose();
      loss.backward();
      const out = (await grads([x, w])).map((g) => Float32Array.from(g));
      disposeAll(x, w, loss, m, h, e, p);
      return out;
    };
    const kept = await run(false);
    const disposed = await run(true);
    assert.deepEqual(disposed, kept, 'gradients with and without disposing the intermediates');
    assertGradClose(disposed, ref, [xv, wv], O.scalar(1), { ...gradOpts, what: 'dispose-after-save gradient' });
  });

  test('backward after the leaf itself was disposed says so', () => {
    const x = fromND(O.nd([2], 1), device, { requiresGrad: true });
    const y = tidy(() => x.exp().sum());
    x.dispose();
    const e = thrown(() => y.backward(), 'backward into a disposed leaf');
    assert.ok(e instanceof TensorloomError);
    assert.match(e.message, /disposed/);
    y.dispose();
  });
});
