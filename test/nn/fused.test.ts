// Tests of the fused row ops behind F.crossEntropy and F.layerNorm on every backend: wide rows and
// many rows (the multi-thread and multi-chunk kernel paths), strided and broadcast gradients, -inf
// logits, float16, the out-of-range target error, memory of the saved row statistics, and dispatch
// counters (a fixed handful per call, whatever the sizes). Values and gradients are checked against
// float64 formulas written here; finite differences of the small cases live in grad-ops.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, getBackend, noGrad, tensor, tidy, type DType, type DeviceName, type Tensor } from '../../src/index.js';
import * as O from '../oracle/ops.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend, needsDTypes } from '../helpers/backends.js';
import { randomIndices, randomND, testRng } from '../helpers/random.js';

const put = (a: O.ND, device: DeviceName, opts: { dtype?: DType; requiresGrad?: boolean } = {}): Tensor =>
  tensor(a.data, { shape: a.shape, device, dtype: opts.dtype ?? 'float32', requiresGrad: opts.requiresGrad ?? false });

/**
 * Per-row cross-entropy in float64, the smoothing term only when eps > 0 (as torch, and unlike the
 * oracle's formula, which gives 0 * inf = NaN for a -inf logit at eps 0).
 */
function refCrossEntropyRows(z: O.ND, t: O.ND, eps: number, ignore: number): O.ND {
  const [n, c] = z.shape as [number, number];
  const out = O.nd([n]);
  for (let r = 0; r < n; r++) {
    const y = t.data[r]!;
    if (y === ignore) continue;
    const row = z.data.subarray(r * c, r * c + c);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    const smooth = eps > 0 ? eps * (lse - row.reduce((s, v) => s + v, 0) / c) : 0;
    out.data[r] = (1 - eps) * (lse - row[y]!) + smooth;
  }
  return out;
}

/** d/dz of sum_r up[r] * loss[r] for per-row cross-entropy losses, in float64. */
function refCrossEntropyGrad(z: O.ND, t: O.ND, up: O.ND, eps: number, ignore: number): O.ND {
  const [n, c] = z.shape as [number, number];
  const g = O.nd([n, c]);
  for (let r = 0; r < n; r++) {
    const y = t.data[r]!;
    if (y === ignore) continue;
    const row = z.data.subarray(r * c, r * c + c);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    for (let j = 0; j < c; j++)
      g.data[r * c + j] = up.data[r]! * (Math.exp(row[j]! - lse) - eps / c - (j === y ? 1 - eps : 0));
  }
  return g;
}

/** Gradients (x, weight, bias) of sum(gy * layerNorm(x) over the last dim), in float64. */
function refLayerNormGrads(x: O.ND, w: O.ND, gy: O.ND, eps: number): [O.ND, O.ND, O.ND] {
  const [rows, d] = x.shape as [number, number];
  const gx = O.nd([rows, d]);
  const gw = O.nd([d]);
  const gb = O.nd([d]);
  for (let r = 0; r < rows; r++) {
    const xr = x.data.subarray(r * d, r * d + d);
    const mean = xr.reduce((s, v) => s + v, 0) / d;
    const rstd = 1 / Math.sqrt(xr.reduce((s, v) => s + (v - mean) ** 2, 0) / d + eps);
    const h = Array.from(xr, (v) => (v - mean) * rstd);
    const v = h.map((_, j) => gy.data[r * d + j]! * w.data[j]!);
    const ma = v.reduce((s, q) => s + q, 0) / d;
    const mb = v.reduce((s, q, j) => s + q * h[j]!, 0) / d;
    for (let j = 0; j < d; j++) {
      gx.data[r * d + j] = rstd * (v[j]! - ma - h[j]! * mb);
      gw.data[j] = gw.data[j]! + gy.data[r * d + j]! * h[j]!;
      gb.data[j] = gb.data[j]! + gy.data[r * d + j]!;
    }
  }
  return [gx, gw, gb];
}

/** Backend dispatches issued by `fn`. */
function dispatches(device: DeviceName, fn: () => void): number {
  const b = getBackend(device);
  const before = b.stats().dispatches;
  fn();
  return b.stats().dispatches - before;
}

forEachBackend((device) => {
  test('crossEntropy on wide rows: -inf logits, ignored and smoothed positions, per-row upstream', async (t) => {
    const rng = testRng(`fused crossEntropy wide ${device}`, t);
    for (const [eps, withInf] of [
      [0.1, false],
      [0, true],
    ] as const) {
      const z = randomND(rng, [7, 1000], { low: -4, high: 4 });
      const tg = randomIndices(rng, [7], 1000);
      tg.data[2] = -100;
      if (withInf)
        for (const i of [5, 1003, 6999]) z.data[i] = tg.data[Math.floor(i / 1000)] === i % 1000 ? 0 : -Infinity;
      const up = randomND(rng, [7]);
      const Z = put(z, device, { requiresGrad: true });
      const loss = F.crossEntropy(Z, put(tg, device, { dtype: 'int32' }), { labelSmoothing: eps, reduction: 'none' });
      const want = refCrossEntropyRows(z, tg, eps, -100);
      assertClose(await loss.toArray(), want, { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: `loss eps ${eps}` });
      loss.backward(put(up, device));
      assertClose(await Z.grad!.toArray(), refCrossEntropyGrad(z, tg, up, eps, -100), {
        dtype: 'float32',
        atol: 1e-6,
        what: `dlogits eps ${eps}`,
      });
      loss.dispose();
      Z.dispose();
    }
  });

  test('layerNorm on many rows with a strided upstream gradient (column sums over several chunks)', async (t) => {
    const rng = testRng(`fused layerNorm many rows ${device}`, t);
    const [rows, d] = [600, 40];
    const x = randomND(rng, [rows, d], { low: -3, high: 3 });
    const w = randomND(rng, [d], { low: 0.5, high: 1.5 });
    const b = randomND(rng, [d]);
    const u = randomND(rng, [d, rows]); // the upstream of y^T, so y's gradient is a transposed view
    const [X, W, B] = [x, w, b].map((a) => put(a, device, { requiresGrad: true })) as [Tensor, Tensor, Tensor];
    const y = F.layerNorm(X, d, W, B);
    assertClose(await y.toArray(), O.layerNorm(x, 1, { weight: w, bias: b }), {
      dtype: 'float32',
      rtol: 1e-5,
      atol: 1e-5,
      what: 'layerNorm forward',
    });
    tidy(() => y.transpose().mul(put(u, device)).sum().backward());
    const [gx, gw, gb] = refLayerNormGrads(x, w, O.transpose(u), 1e-5);
    assertClose(await X.grad!.toArray(), gx, { dtype: 'float32', rtol: 1e-4, atol: 1e-5, what: 'gx' });
    assertClose(await W.grad!.toArray(), gw, { dtype: 'float32', rtol: 1e-4, atol: 1e-4, terms: 20, what: 'gw' });
    assertClose(await B.grad!.toArray(), gb, { dtype: 'float32', rtol: 1e-4, atol: 1e-4, terms: 20, what: 'gb' });
    for (const v of [X, W, B, y]) v.dispose();
  });

  test(
    'crossEntropy and layerNorm in float16 match the float32 results',
    needsDTypes(device, ['float16']),
    async (t) => {
      const rng = testRng(`fused float16 ${device}`, t);
      const z = O.roundND(randomND(rng, [5, 30], { low: -3, high: 3 }), 'float16');
      const tg = randomIndices(rng, [5], 30);
      let ref: ArrayLike<number> = [];
      for (const dtype of ['float32', 'float16'] as const) {
        const Z = put(z, device, { dtype, requiresGrad: true });
        const loss = F.crossEntropy(Z, put(tg, device, { dtype: 'int32' }), { labelSmoothing: 0.1 });
        const y = F.layerNorm(Z, 30);
        assert.equal(loss.dtype, dtype);
        assert.equal(y.dtype, dtype);
        tidy(() => loss.add(y.mul(y.detach()).sum().mul(0.01)).backward());
        const tol = { dtype: 'float16', rtol: 2e-2, atol: 2e-3 } as const;
        assertClose(await loss.toArray(), [O.crossEntropy(z, tg, { labelSmoothing: 0.1 }).data[0]!], {
          ...tol,
          what: `loss ${dtype}`,
        });
        const grad = await Z.grad!.toArray();
        if (dtype === 'float32') ref = grad;
        else assertClose(grad, ref, { ...tol, what: 'float16 gradient' });
        for (const v of [Z, loss, y]) v.dispose();
      }
    },
  );

  test('float16 layerNorm with weight and bias: forward and the three gradients vs the float64 oracle', async (t) => {
    if (needsDTypes(device, ['float16']).skip) return t.skip(needsDTypes(device, ['float16']).skip);
    const rng = testRng(`fused layerNorm f16 ${device}`, t);
    const [rows, d] = [300, 24]; // enough rows for the column sums of dweight / dbias to take several chunks
    const f16 = (a: O.ND) => O.roundND(a, 'float16'); // the oracle sees the values the tensors hold
    const x = f16(randomND(rng, [rows, d], { low: -3, high: 3 }));
    const w = f16(randomND(rng, [d], { low: 0.5, high: 1.5 }));
    const b = f16(randomND(rng, [d]));
    const u = f16(randomND(rng, [rows, d]));
    const [X, W, B] = [x, w, b].map((a) => put(a, device, { dtype: 'float16', requiresGrad: true })) as [
      Tensor,
      Tensor,
      Tensor,
    ];
    const y = F.layerNorm(X, d, W, B);
    assert.equal(y.dtype, 'float16');
    const tol = { dtype: 'float16' } as const;
    assertClose(await y.toArray(), O.layerNorm(x, 1, { weight: w, bias: b }), { ...tol, what: 'f16 layerNorm' });
    y.backward(put(u, device, { dtype: 'float16' }));
    const [gx, gw, gb] = refLayerNormGrads(x, w, u, 1e-5);
    for (const g of [X.grad!, W.grad!, B.grad!]) assert.equal(g.dtype, 'float16');
    assertClose(await X.grad!.toArray(), gx, { ...tol, terms: d, what: 'f16 gx' });
    assertClose(await W.grad!.toArray(), gw, { ...tol, terms: rows, what: 'f16 gw' });
    assertClose(await B.grad!.toArray(), gb, { ...tol, terms: rows, what: 'f16 gb' });
    for (const v of [X, W, B, y]) v.dispose();
  });

  test('crossEntropy: a target outside [0, C) that is not ignoreIndex is an error naming it', async () => {
    const logits = tensor([[1, 2, 3], [3, 1, 0]], { device }); // prettier-ignore
    const run = async (): Promise<void> => {
      const l = F.crossEntropy(logits, tensor([0, 7], { dtype: 'int32', device }));
      await l.toArray();
    };
    await assert.rejects(run, /crossEntropy.*target 7 at position \[1\] is out of range for 3 classes/);
    // the backend is usable afterwards, and ignoreIndex itself is not an error
    const ok = F.crossEntropy(logits, tensor([0, -1], { dtype: 'int32', device }), { ignoreIndex: -1 });
    assert.ok(Math.abs((await ok.item()) - (Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 1)) < 1e-5);
  });

  test('the saved row statistics are freed with the graph, and not kept at all without grad', () => {
    const be = getBackend(device);
    const x = tensor(
      Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)),
      { shape: [4, 6], device, requiresGrad: true },
    );
    const tg = tensor([0, 1, 2, 3], { dtype: 'int32', device });
    const base = be.stats().liveBuffers;
    noGrad(() => tidy(() => F.crossEntropy(x, tg).add(F.layerNorm(x, 6).sum()))).dispose();
    assert.equal(be.stats().liveBuffers, base, 'no-grad calls leave nothing behind');
    const loss = tidy(() => F.crossEntropy(x, tg).add(F.layerNorm(x, 6).sum()));
    loss.dispose(); // dropping the graph unused frees what it saved
    assert.equal(be.stats().liveBuffers, base, 'a dropped graph frees its saved statistics');
    tidy(() => F.crossEntropy(x, tg).add(F.layerNorm(x, 6).sum()).backward());
    x.grad!.dispose();
    x.grad = null;
    assert.equal(be.stats().liveBuffers, base, 'backward frees the saved statistics');
  });

  test('dispatches per call are a fixed handful, whatever the sizes', () => {
    const counts: number[][] = [];
    for (const [n, c] of [
      [8, 50],
      [64, 700],
    ] as const) {
      const z = tensor(
        Float32Array.from({ length: n * c }, (_, i) => Math.cos(i)),
        { shape: [n, c], device, requiresGrad: true },
      );
      const tg = tensor(
        Int32Array.from({ length: n }, (_, i) => (i * 7) % c),
        { shape: [n], device, dtype: 'int32' },
      );
      const w = tensor(
        Float32Array.from({ length: c }, (_, i) => 1 + i / c),
        { shape: [c], device, requiresGrad: true },
      );
      const b = tensor(new Float32Array(c), { shape: [c], device, requiresGrad: true });
      for (let step = 0; step < 2; step++) {
        // step 0 creates the leaf gradients, step 1 accumulates into them (the training steady state)
        tidy(() => {
          let loss!: Tensor;
          const ceF = dispatches(device, () => (loss = F.crossEntropy(z, tg)));
          const ceB = dispatches(device, () => loss.backward());
          let y!: Tensor;
          const lnF = dispatches(device, () => (y = F.layerNorm(z, c, w, b)));
          const s = y.sum();
          const lnB = dispatches(device, () => s.backward());
          counts.push([ceF, ceB, lnF, lnB]);
          // crossEntropy 'mean': the fused kernel, then sum / count (sum, ne, sum, cast, div)
          assert.ok(ceF <= 6, `crossEntropy forward: ${ceF} dispatches`);
          // ones for the root, div's gradient, the fused logits gradient, the accumulation into z.grad
          assert.ok(ceB <= 4, `crossEntropy backward: ${ceB} dispatches`);
          assert.equal(lnF, 1, 'layerNorm forward is one kernel');
          // sum's ones, two kernels (the chunked column sums add one pass on WebGPU), one accumulation per leaf
          assert.ok(lnB <= 7, `layerNorm backward: ${lnB} dispatches`);
        });
      }
      for (const v of [z, tg, w, b]) v.dispose();
    }
    // the same counts for both sizes (but the WebGPU column sums' second pass when the rows are many)
    const [small0, small1, big0, big1] = counts as [number[], number[], number[], number[]];
    for (const [a, b] of [
      [small0, big0],
      [small1, big1],
    ] as const) {
      assert.deepEqual(a.slice(0, 3), b.slice(0, 3), `counts ${a.join(' ')} vs ${b.join(' ')}`);
      assert.ok(b[3]! - a[3]! <= (device === 'webgpu' ? 1 : 0), `layerNorm backward ${a[3]} vs ${b[3]}`);
    }
  });
});
