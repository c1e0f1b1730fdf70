// Memory behaviour of autograd and scopes, measured with two independent counters: liveTensors()
// (tensor handles, saved-for-backward ones included) and the backend's liveBuffers/liveBytes. Nothing
// here relies on garbage collection: every expectation must hold right after the call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keep, noGrad, tidy, type DeviceName, type Tensor } from '../../src/index.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend } from '../helpers/backends.js';
import { testRng } from '../helpers/random.js';
import { assertMem, fromND, mem, uniform } from './util.js';

/** A small MLP-like loss over parameters w1 (4, 8), b1 (8), w2 (8, 3) and a fixed input x (5, 4). */
function loss(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor): Tensor {
  const h = x.matmul(w1).add(b1).gelu();
  const logits = h.matmul(w2);
  return logits.logSoftmax(-1).select(1, 0).mean().neg().add(h.mul(h).mean());
}

forEachBackend((device: DeviceName) => {
  const params = (seed: string, t: { diagnostic(m: string): void }): Tensor[] => {
    const rng = testRng(seed, t);
    return [
      fromND(uniform(rng, [5, 4]), device),
      fromND(uniform(rng, [4, 8]), device, { requiresGrad: true }),
      fromND(uniform(rng, [8]), device, { requiresGrad: true }),
      fromND(uniform(rng, [8, 3]), device, { requiresGrad: true }),
    ];
  };

  test('tidy(forward + backward) then disposing the grads returns every counter to its start', (t) => {
    const ps = params('mem tidy step', t);
    const [x, w1, b1, w2] = ps as [Tensor, Tensor, Tensor, Tensor];
    const base = mem(device);
    tidy(() => {
      loss(x, w1, b1, w2).backward();
    });
    // only the three gradients (one handle and one buffer each) survive the step
    const after = mem(device);
    assert.equal(after.tensors, base.tensors + 3, 'live tensors after the step: the 3 grads');
    assert.equal(after.buffers, base.buffers + 3, 'live buffers after the step: the 3 grads');
    assert.ok(w1.grad && b1.grad && w2.grad);
    assert.equal(x.grad, null, 'no gradient for an input that does not require grad');
    for (const p of [w1, b1, w2]) {
      p.grad!.dispose();
      p.grad = null;
    }
    assertMem(device, base, 'after disposing the grads');
    for (const p of ps) p.dispose();
  });

  test('steady state: grads accumulate in place and are zeroed in place, with no new live buffers', async (t) => {
    const ps = params('mem steady', t);
    const [x, w1, b1, w2] = ps as [Tensor, Tensor, Tensor, Tensor];
    const step = (): void =>
      tidy(() => {
        loss(x, w1, b1, w2).backward();
      });
    step();
    const first = await Promise.all([w1, b1, w2].map(async (p) => O.nd(p.shape, await p.grad!.toArray())));
    const gradHandles = [w1.grad, b1.grad, w2.grad];
    const s1 = mem(device);
    step();
    assert.deepEqual(mem(device), s1, 'the second step creates no new live tensors or buffers');
    step();
    assert.deepEqual(mem(device), s1, 'the third step creates no new live tensors or buffers');
    assert.deepEqual([w1.grad, b1.grad, w2.grad], gradHandles, 'the same gradient tensors are reused');
    // three identical steps accumulate to three times the first gradient
    for (const [i, p] of [w1, b1, w2].entries()) {
      assertClose(await p.grad!.toArray(), O.mul(first[i]!, 3), {
        dtype: 'float32',
        rtol: 1e-5,
        atol: 1e-6,
        what: `accumulated grad ${i}`,
      });
    }
    noGrad(() => {
      for (const p of [w1, b1, w2]) p.grad!.zero_();
    });
    assert.deepEqual(mem(device), s1, 'zeroing in place allocates nothing');
    step();
    assert.deepEqual(mem(device), s1, 'a step after zeroing allocates nothing that stays');
    for (const [i, p] of [w1, b1, w2].entries()) {
      assertClose(await p.grad!.toArray(), first[i]!, {
        dtype: 'float32',
        rtol: 1e-5,
        atol: 1e-6,
        what: `grad ${i} after zero_ and one step`,
      });
    }
    for (const p of ps) p.dispose();
  });

  test('an abandoned graph (forward without backward) frees its saved tensors at once', (t) => {
    const ps = params('mem abandoned', t);
    const [x, w1, b1, w2] = ps as [Tensor, Tensor, Tensor, Tensor];
    const base = mem(device);
    const out = tidy(() => loss(x, w1, b1, w2));
    const held = mem(device);
    assert.ok(held.buffers > base.buffers + 1, 'the graph holds saved intermediates while the output lives');
    out.dispose();
    assertMem(device, base, 'after disposing the output of an abandoned graph');

    // without tidy: every handle disposed by hand, output last and first
    for (const outputFirst of [true, false]) {
      const m = x.matmul(w1);
      const h = m.add(b1);
      const g = h.tanh();
      const p = g.mul(h);
      const l = p.sum();
      const order = outputFirst ? [l, p, g, h, m] : [m, h, g, p, l];
      for (const t2 of order) t2.dispose();
      assertMem(device, base, `after disposing every handle (output ${outputFirst ? 'first' : 'last'})`);
    }
    for (const p of ps) p.dispose();
  });

  test('backward without retainGraph frees the saved tensors; with retainGraph they stay until the output goes', (t) => {
    const rng = testRng('mem saved freed', t);
    const xv = uniform(rng, [32, 32]);
    const elemBytes = 32 * 32 * 4;
    for (const retain of [false, true]) {
      const x = fromND(xv, device, { requiresGrad: true });
      const base = mem(device);
      // three tanh: each saves its own output (3 buffers of 4 KiB); sum saves nothing
      const y = tidy(() => x.tanh().tanh().tanh().sum());
      const before = mem(device);
      assert.equal(before.tensors, base.tensors + 1 + 3, 'output + 3 saved handles');
      assert.equal(before.buffers, base.buffers + 1 + 3, 'output + 3 saved buffers');
      assert.ok(before.bytes >= base.bytes + 3 * elemBytes, 'saved bytes are held');
      y.backward(undefined, { retainGraph: retain });
      const after = mem(device);
      if (!retain) {
        assert.equal(after.tensors, base.tensors + 1 + 1, 'output + grad: the saved handles are gone');
        assert.equal(after.buffers, base.buffers + 1 + 1, 'output + grad buffers');
        assert.ok(after.bytes < before.bytes, `live bytes drop after backward (${before.bytes} -> ${after.bytes})`);
      } else {
        assert.equal(after.tensors, base.tensors + 1 + 3 + 1, 'retained: output + saved + grad');
        assert.equal(after.buffers, base.buffers + 1 + 3 + 1, 'retained: output + saved + grad buffers');
      }
      y.dispose();
      x.grad!.dispose();
      x.grad = null;
      assertMem(device, base, `after disposing output and grad (retainGraph ${retain})`);
      x.dispose();
    }
  });

  test('tidy: returned tensors survive (arrays, objects, Maps); nested tidy moves results to the parent', async () => {
    const base = mem(device);
    const a = fromND(O.nd([4], 1), device);
    let inner: Tensor | undefined;
    const res = tidy(() => {
      const tmp = a.add(1);
      inner = tidy(() => tmp.mul(2).add(1)); // survives the inner scope...
      assert.equal(inner.disposed, false);
      const kept = tidy(() => tmp.mul(3));
      return { list: [kept, tmp.exp()], map: new Map([['k', tmp.neg()]]) };
    });
    assert.ok(inner);
    assert.equal(inner.disposed, true, '...and is freed with the parent scope that did not return it');
    const survivors = [...res.list, res.map.get('k')!];
    for (const s of survivors) assert.equal(s.disposed, false);
    assertClose(await survivors[0]!.toArray(), O.nd([4], 6), { dtype: 'float32', what: 'nested tidy result' });
    assertClose(await survivors[2]!.toArray(), O.nd([4], -2), { dtype: 'float32', what: 'Map value' });
    const now = mem(device);
    assert.equal(now.tensors, base.tensors + 1 + 3, 'a plus the three returned tensors');
    assert.equal(now.buffers, base.buffers + 1 + 3);
    for (const s of survivors) s.dispose();
    a.dispose();
    assertMem(device, base, 'after disposing the survivors');
  });

  test('keep() survives every enclosing scope', () => {
    const base = mem(device);
    const a = fromND(O.nd([3], 2), device);
    let k: Tensor | undefined;
    tidy(() => {
      tidy(() => {
        k = keep(a.mul(a));
        a.add(1);
      });
      a.sub(1);
    });
    assert.ok(k);
    assert.equal(k.disposed, false);
    const now = mem(device);
    assert.equal(now.tensors, base.tensors + 2, 'a and the kept tensor');
    assert.equal(now.buffers, base.buffers + 2);
    k.dispose();
    a.dispose();
    assertMem(device, base, 'after disposing the kept tensor');
  });

  test('tidy rethrows the error and frees what the scope created; async functions are refused', () => {
    const a = fromND(O.nd([8], 1), device, { requiresGrad: true });
    const base = mem(device);
    const boom = new Error('boom');
    assert.throws(
      () =>
        tidy(() => {
          const b = a.exp().mul(a); // with graph nodes and saved tensors
          tidy(() => b.add(1));
          b.sum();
          throw boom;
        }),
      (e) => e === boom,
    );
    assertMem(device, base, 'after a throwing tidy');
    // an op that throws mid-scope also frees the scope
    assert.throws(() =>
      tidy(() => {
        a.exp();
        return a.reshape([3, 3]);
      }),
    );
    assertMem(device, base, 'after a tidy whose op threw');
    a.dispose();
  });

  test('tidy refuses an async function and frees what it created before its first await', async () => {
    const a = fromND(O.nd([8], 1), device);
    const base = mem(device);
    let pending: Promise<unknown> | undefined;
    assert.throws(
      () =>
        tidy((() => {
          pending = (async () => {
            a.exp(); // created synchronously, inside the scope
            await Promise.resolve();
          })();
          return pending;
        }) as unknown as () => number),
      /synchronous|Promise/,
    );
    await pending;
    assertMem(device, base, 'after tidy refused an async function');
    a.dispose();
  });

  test('views keep storage alive after the base handle is disposed; dispose is idempotent', async () => {
    const base = mem(device);
    const x = fromND(
      O.fromNested([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      device,
    );
    const v = x.transpose();
    x.dispose();
    x.dispose();
    assert.equal(mem(device).buffers, base.buffers + 1, 'the storage lives on through the view');
    assert.deepEqual(Array.from(await v.toArray()), [1, 4, 2, 5, 3, 6]);
    v.dispose();
    assertMem(device, base, 'after disposing the view');
  });
});
