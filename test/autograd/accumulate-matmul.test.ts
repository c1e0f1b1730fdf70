// Weight gradients accumulate in place: once a parameter has a .grad buffer, backward adds each matmul
// weight gradient into it with one matmul kernel whose residual is the grad itself (grad += x @ y), with
// no (k, n) temporary and no standalone add, reaching the leaf directly or through a lone transpose view
// (a Linear's weight^T). Values against a float64 oracle written here; the fast path is proven by
// counting the kernels backward runs, the fallbacks (hooks, no grad yet, shared views, autocast) too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, embedding, getBackend, noGrad, tensor, tidy, type DeviceName, type Tensor } from '../../src/index.js';
import { autocast } from '../../src/nn/index.js';
import { cpuKernelCounters, cpuKernelInfo } from '../../src/backend/cpu/index.js';
import { matmulAccumulate_ } from '../../src/tensor/linalg.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend, needsDTypes } from '../helpers/backends.js';
import { testRng, type Rng } from '../helpers/random.js';

/** A row-major float64 matrix. */
interface Mat {
  r: number;
  c: number;
  d: Float64Array;
}

const mat = (r: number, c: number, d = new Float64Array(r * c)): Mat => ({ r, c, d });
const rand = (rng: Rng, r: number, c: number): Mat =>
  mat(
    r,
    c,
    Float64Array.from({ length: r * c }, () => rng.uniform(-1, 1)),
  );

function mm(a: Mat, b: Mat): Mat {
  assert.equal(a.c, b.r, 'oracle shapes');
  const o = mat(a.r, b.c);
  for (let i = 0; i < a.r; i++)
    for (let p = 0; p < a.c; p++) {
      const x = a.d[i * a.c + p]!;
      for (let j = 0; j < b.c; j++) o.d[i * b.c + j] = o.d[i * b.c + j]! + x * b.d[p * b.c + j]!;
    }
  return o;
}

function tr(a: Mat): Mat {
  const o = mat(a.c, a.r);
  for (let i = 0; i < a.r; i++) for (let j = 0; j < a.c; j++) o.d[j * a.r + i] = a.d[i * a.c + j]!;
  return o;
}

function add(...xs: Mat[]): Mat {
  const o = mat(xs[0]!.r, xs[0]!.c);
  for (const x of xs) for (let i = 0; i < o.d.length; i++) o.d[i] = o.d[i]! + x.d[i]!;
  return o;
}

const scale = (a: Mat, s: number): Mat =>
  mat(
    a.r,
    a.c,
    a.d.map((v) => v * s),
  );

/** Device tensor of a matrix (optionally reshaped), float32. */
function dev(m: Mat, device: DeviceName, opts: { shape?: number[]; requiresGrad?: boolean } = {}): Tensor {
  return tensor(Float32Array.from(m.d), {
    shape: opts.shape ?? [m.r, m.c],
    device,
    requiresGrad: opts.requiresGrad ?? false,
  });
}

/** Runs `fn` and counts the kernels it ran: plain adds whose output is 2-D, and in-place accumulating matmuls. */
function countKernels(device: DeviceName, fn: () => void): { adds2d: number; accumulates: number } {
  const backend = getBackend(device);
  const run = backend.run.bind(backend);
  const seen = { adds2d: 0, accumulates: 0 };
  backend.run = (op, inputs, out, attrs, aux) => {
    if (op === 'add' && out.shape.length === 2) seen.adds2d++;
    if (op === 'matmul' && inputs.some((i) => 'buffer' in i && i.buffer === out.buffer)) seen.accumulates++;
    return run(op, inputs, out, attrs, aux);
  };
  try {
    fn();
  } finally {
    backend.run = run;
  }
  return seen;
}

async function expectGrad(p: Tensor, want: Mat, what: string, rtol = 2e-4): Promise<void> {
  assert.ok(p.grad, `${what}: has a grad`);
  assertClose(await p.grad.toArray(), want.d, { dtype: 'float32', rtol, atol: 2e-4, what });
}

forEachBackend((device) => {
  test('Linear (bias, no bias), direct, tied head + embedding, shared and batched weights accumulate in place', async (t) => {
    const rng = testRng('matmul accumulate model', t);
    const [B, T, D, H, D2, E, V] = [2, 4, 4, 5, 7, 6, 9];
    const R = B * T;
    const X = rand(rng, R, D);
    const ids = Array.from({ length: R }, () => rng.int(0, V));
    const M = {
      W1: rand(rng, H, D),
      b1: rand(rng, 1, H),
      W2: rand(rng, D2, H),
      Wd: rand(rng, D2, E),
      Wt: rand(rng, V, E),
      Ws: rand(rng, E, E),
    };
    const G1 = rand(rng, R, V);
    const G2 = rand(rng, R, E);
    const G3 = rand(rng, R, E);

    // float64 oracle of loss = sum(logits * G1) + sum(z Ws * G2) + sum(z Ws^T * G3)
    const bRow = mat(
      R,
      H,
      Float64Array.from({ length: R * H }, (_, i) => M.b1.d[i % H]!),
    );
    const h1 = add(mm(X, tr(M.W1)), bRow);
    const h2 = mm(h1, tr(M.W2));
    const h3 = mm(h2, M.Wd);
    const emb = mat(
      R,
      E,
      Float64Array.from({ length: R * E }, (_, i) => M.Wt.d[ids[Math.floor(i / E)]! * E + (i % E)]!),
    );
    const z = add(h3, emb);
    const gz = add(mm(G1, M.Wt), mm(G2, tr(M.Ws)), mm(G3, M.Ws));
    const gWt = add(mm(tr(G1), z));
    for (let r = 0; r < R; r++)
      for (let j = 0; j < E; j++) gWt.d[ids[r]! * E + j] = gWt.d[ids[r]! * E + j]! + gz.d[r * E + j]!;
    const gh2 = mm(gz, tr(M.Wd));
    const gh1 = mm(gh2, M.W2);
    const gb1 = mat(1, H);
    for (let r = 0; r < R; r++) for (let j = 0; j < H; j++) gb1.d[j] = gb1.d[j]! + gh1.d[r * H + j]!;
    const want: Record<keyof typeof M, Mat> = {
      W1: mm(tr(gh1), X),
      b1: gb1,
      W2: mm(tr(gh2), h1),
      Wd: mm(tr(h2), gz),
      Wt: gWt,
      Ws: add(mm(tr(z), G2), mm(tr(G3), z)),
    };

    const x = dev(X, device, { shape: [B, T, D] });
    const idT = tensor(Int32Array.from(ids), { shape: [B, T], device });
    const g1 = dev(G1, device, { shape: [B, T, V] });
    const g2 = dev(G2, device, { shape: [B, T, E] });
    const g3 = dev(G3, device, { shape: [B, T, E] });
    const P = {
      W1: dev(M.W1, device, { requiresGrad: true }),
      b1: dev(M.b1, device, { shape: [H], requiresGrad: true }),
      W2: dev(M.W2, device, { requiresGrad: true }),
      Wd: dev(M.Wd, device, { requiresGrad: true }),
      Wt: dev(M.Wt, device, { requiresGrad: true }),
      Ws: dev(M.Ws, device, { requiresGrad: true }),
    };
    const step = (opts: { retainGraph?: boolean; twice?: boolean } = {}) =>
      tidy(() => {
        const a = F.linear(F.linear(x, P.W1, P.b1), P.W2); // (B, T, D2): batched input, folded rows
        const zz = a.matmul(P.Wd).add(embedding(idT, P.Wt)); // a weight used directly; the tied table
        const logits = F.linear(zz, P.Wt); // the tied head: Wt^T
        const loss = logits.mul(g1).sum().add(zz.matmul(P.Ws).mul(g2).sum()).add(F.linear(zz, P.Ws).mul(g3).sum());
        loss.backward(undefined, { retainGraph: opts.retainGraph ?? false });
        if (opts.twice) loss.backward();
      });
    const check = async (k: number, what: string) => {
      for (const name of Object.keys(P) as (keyof typeof P)[])
        await expectGrad(P[name], scale(want[name], k), `${what}: ${name}.grad`);
    };

    step(); // no grads yet: every gradient is built (the fallback)
    await check(1, 'first step (fresh grads)');
    const zero = () => noGrad(() => Object.values(P).forEach((p) => p.grad!.zero_()));
    zero();
    const steady = countKernels(device, () => step());
    await check(1, 'steady step (grads zeroed in place)');
    // W1, W2 (Linear: through weight^T), Wd (direct), Wt (tied head), Ws twice: six in-place products
    assert.equal(steady.accumulates, 6, 'every weight gradient accumulated by an in-place matmul');
    assert.equal(steady.adds2d, 0, 'no standalone 2-D add: weight gradients and the embedding need none');
    step(); // no zeroing: true accumulation
    await check(2, 'two steps accumulated');
    zero();
    step({ retainGraph: true, twice: true }); // the retired transpose views keep their saved tensors
    await check(2, 'one graph, backward twice (retainGraph)');
    for (const v of [x, idT, g1, g2, g3, ...Object.values(P)]) {
      v.grad?.dispose();
      v.dispose();
    }
  });

  test('a transposed first operand (P^T @ Q) accumulates into P and Q in place', async (t) => {
    const rng = testRng('matmul accumulate transposed a', t);
    const [Pm, Qm, G] = [rand(rng, 6, 5), rand(rng, 6, 7), rand(rng, 5, 7)];
    const p = dev(Pm, device, { requiresGrad: true });
    const q = dev(Qm, device, { requiresGrad: true });
    const g = dev(G, device);
    const step = () => tidy(() => p.transpose().matmul(q).mul(g).sum().backward());
    step();
    noGrad(() => [p, q].forEach((v) => v.grad!.zero_()));
    const seen = countKernels(device, step);
    assert.deepEqual(seen, { adds2d: 0, accumulates: 2 });
    step();
    await expectGrad(p, scale(mm(Qm, tr(G)), 2), 'P.grad');
    await expectGrad(q, scale(mm(Pm, G), 2), 'Q.grad');
    for (const v of [p, q, g]) {
      v.grad?.dispose();
      v.dispose();
    }
  });

  test('fallbacks: a hooked leaf, a transpose view with two consumers, a leaf without grad', async (t) => {
    const rng = testRng('matmul accumulate fallbacks', t);
    const [X, W, G] = [rand(rng, 8, 5), rand(rng, 3, 5), rand(rng, 8, 3)];
    const x = dev(X, device);
    const g = dev(G, device);
    const gW = mm(tr(G), X); // d sum(x W^T * g) / dW
    // a hook must see the whole gradient: the product is built and goes through it
    const hooked = dev(W, device, { requiresGrad: true });
    hooked.registerHook((gr) => gr.mul(2));
    const stepH = () => tidy(() => F.linear(x, hooked).mul(g).sum().backward());
    stepH();
    const h = countKernels(device, stepH);
    assert.deepEqual(h, { adds2d: 1, accumulates: 0 }, 'hooked leaf: materialized, added');
    await expectGrad(hooked, scale(gW, 4), 'hooked.grad');
    // one transpose view feeding two products: its gradients are summed first, as before
    const shared = dev(W, device, { requiresGrad: true });
    const stepS = () =>
      tidy(() => {
        const wT = shared.transpose();
        x.matmul(wT).mul(g).add(x.matmul(wT)).sum().backward();
      });
    const gOnes = mm(tr(add(G, mat(8, 3, new Float64Array(24).fill(1)))), X);
    const fresh = countKernels(device, stepS); // no grad yet: built, never accumulated
    assert.equal(fresh.accumulates, 0, 'a leaf without grad takes the built gradient');
    await expectGrad(shared, gOnes, 'shared.grad (fresh)');
    const s = countKernels(device, stepS);
    assert.equal(s.accumulates, 0, 'a shared view is not bypassed');
    await expectGrad(shared, scale(gOnes, 2), 'shared.grad');
    for (const v of [x, g, hooked, shared]) {
      v.grad?.dispose();
      v.dispose();
    }
  });

  test('autocast float16 products reach float32 weights through a cast: materialized, values right', async (t) => {
    if (needsDTypes(device, ['float16']).skip) return t.skip('no float16');
    const rng = testRng('matmul accumulate autocast', t);
    const [X, W, G] = [rand(rng, 8, 5), rand(rng, 3, 5), rand(rng, 8, 3)];
    const x = dev(X, device);
    const w = dev(W, device, { requiresGrad: true });
    const g = dev(G, device);
    const step = () =>
      tidy(() =>
        autocast('float16', () => F.linear(x, w))
          .cast('float32')
          .mul(g)
          .sum()
          .backward(),
      );
    step();
    const seen = countKernels(device, step);
    assert.equal(seen.accumulates, 0, 'the float16 product is not accumulated into the float32 grad');
    await expectGrad(w, scale(mm(tr(G), X), 2), 'w.grad (autocast)', 2e-2);
    for (const v of [x, w, g]) {
      v.grad?.dispose();
      v.dispose();
    }
  });

  test('matmulAccumulate_ adds x @ y into the target in place (float16 too), and names its shapes', async (t) => {
    const rng = testRng('matmulAccumulate_', t);
    for (const dtype of ['float32', 'float16'] as const) {
      if (needsDTypes(device, [dtype]).skip) continue;
      // sizes around the GEMV / WASM / JS thresholds
      for (const [m, k, n] of [
        [1, 7, 5],
        [3, 4, 9],
        [33, 40, 37],
        [64, 48, 72],
        [64, 300, 200], // K past one WASM K block; the column split once the pool is up
      ] as const) {
        const [C, A, B] = [rand(rng, m, n), rand(rng, m, k), rand(rng, k, n)];
        const c = dev(C, device);
        const cc = c.cast(dtype);
        const a = dev(A, device).cast(dtype);
        const b = dev(B, device).cast(dtype);
        const before = cpuKernelCounters().matmulAccumulated;
        noGrad(() => matmulAccumulate_(cc, a, b));
        if (device === 'cpu' && dtype === 'float32' && m >= 64 && cpuKernelInfo().wasm)
          assert.equal(cpuKernelCounters().matmulAccumulated - before, 1, 'the WASM GEMM accumulated in place');
        const tol = dtype === 'float16' ? 2e-2 : 2e-5;
        assertClose(await cc.toArray(), add(C, mm(A, B)).d, {
          dtype,
          rtol: tol,
          atol: tol,
          terms: k,
          what: `${dtype} ${m}x${k}x${n}`,
        });
        for (const v of new Set([c, cc, a, b])) v.dispose();
      }
    }
    const c = dev(mat(2, 3), device);
    const a = dev(mat(2, 4), device);
    assert.throws(
      () => matmulAccumulate_(c, a, dev(mat(5, 3), device)),
      /matmulAccumulate_.*\[2, 3\] \+= \[2, 4\] @ \[5, 3\]/,
    );
    assert.throws(
      () => matmulAccumulate_(c, c.slice(1, 0, 2), dev(mat(2, 3), device).slice(0, 0, 2)),
      /matmulAccumulate_/,
    );
  });
});
