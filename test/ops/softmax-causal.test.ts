// The fused causal softmax (softmax with attrs.causal = diagonal offset) against a float64 oracle on every
// backend: offsets 0, Tk - Tq, negative (NaN rows), past Tk; odd Tq / Tk, batch dims, strided inputs, every
// element checked (masked keys exactly 0), float16 where the backend has it; the CPU's WASM row kernel
// (proved by its counter, several staging chunks); finite-difference gradients with exactly-zero masked
// gradients; scaledDotProductAttention's fused causal path against the old where(causalMask, att, -Inf)
// composition (forward and gradients, autocast included); no pipeline compiled per offset on WebGPU.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceName } from '../../src/backend/backend.js';
import type { DType } from '../../src/core/dtype.js';
import {
  F,
  arange,
  autocast,
  autocastDType,
  cast,
  getBackend,
  matmul,
  tensor,
  tidy,
  where,
  type Tensor,
} from '../../src/index.js';
import { cpuKernelCounters, cpuKernelInfo, cpuThreadsReady, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { setRowKernelOptions } from '../../src/backend/cpu/wasmrows.js';
import { assertClose } from '../helpers/assert.js';
import { TEST_DEVICES, dtypesOn, forEachBackend, needsDTypes } from '../helpers/backends.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';

/**
 * Float64 causal softmax over the last axis: row i of each (Tq, Tk) plane over keys j <= i + off, 0 at
 * the others; a row with no key, or whose kept keys give NaN (a NaN, +Inf or only -Inf), is NaN throughout.
 */
function refCausalSoftmax(x: O.ND, off: number): O.ND {
  const tk = x.shape[x.shape.length - 1]!;
  const tq = x.shape[x.shape.length - 2]!;
  const out = O.nd(x.shape);
  for (let r = 0; r < x.data.length / tk; r++) {
    const lim = Math.min(tk, Math.max(0, (r % tq) + off + 1));
    const row = Array.from(x.data.subarray(r * tk, r * tk + lim));
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    const bad = lim === 0 || !Number.isFinite(m) || row.some(Number.isNaN);
    for (let j = 0; j < tk; j++) out.data[r * tk + j] = bad ? NaN : j < lim ? e[j]! / s : 0;
  }
  return out;
}

/** Every masked key (j > i + off) of a non-NaN row is exactly 0. */
function assertMaskedZero(got: ArrayLike<number>, shape: readonly number[], off: number, what: string): void {
  const tk = shape[shape.length - 1]!;
  const tq = shape[shape.length - 2]!;
  for (let r = 0; r < got.length / tk; r++) {
    const lim = Math.min(tk, Math.max(0, (r % tq) + off + 1));
    if (lim === 0 || Number.isNaN(got[r * tk])) continue;
    for (let j = lim; j < tk; j++)
      assert.ok(got[r * tk + j] === 0, `${what}: row ${r} key ${j} is ${got[r * tk + j]}, not exactly 0`);
  }
}

/** A tensor of `a`'s values on `device` (a float32 leaf, or its float16 cast). */
function put(a: O.ND, device: DeviceName, dtype: DType = 'float32', requiresGrad = false): Tensor {
  const x = tensor(Float32Array.from(a.data), { shape: a.shape, device, dtype: 'float32', requiresGrad });
  return dtype === 'float32' ? x : x.cast(dtype);
}

/** The offsets tried for a (Tq, Tk) plane: top-left, bottom-right, negative (NaN rows), past Tk. */
const offsetsFor = (tq: number, tk: number): number[] => [...new Set([0, tk - tq, -1, -2, -tq - 3, tk + 3, 1])];

forEachBackend((device) => {
  test('causal softmax matches the float64 oracle (offsets, odd shapes, batch dims, special values)', async (t) => {
    const rng = testRng('softmax causal forward', t);
    for (const dtype of dtypesOn(device, ['float32', 'float16'] as const)) {
      for (const shape of [
        [5, 7],
        [3, 4, 9],
        [2, 2, 9, 4],
        [1, 1],
        [2, 3, 1, 6],
        [6, 1],
      ]) {
        const z = O.roundND(randomND(rng, shape, { low: -4, high: 4 }), dtype);
        const tk = shape[shape.length - 1]!;
        if (z.data.length > 3 * tk) {
          z.data[tk + 1] = -Infinity; // a -Inf score inside the kept keys of row 1 (when offset allows)
          z.data[2 * tk] = NaN; // row 2: NaN in its first key, kept by every offset >= -2: the row is NaN
        }
        const tq = shape[shape.length - 2]!;
        for (const off of offsetsFor(tq, tk)) {
          const got = await F.softmax(put(z, device, dtype), -1, { causal: off }).toArray();
          const what = `${dtype} causal softmax [${shape}] offset ${off}`;
          assertClose(got, refCausalSoftmax(z, off), {
            dtype,
            rtol: dtype === 'float16' ? 4e-3 : 2e-6,
            atol: dtype === 'float16' ? 1e-4 : 1e-7,
            what,
          });
          assertMaskedZero(got, shape, off, what);
        }
      }
    }
  });

  test('causal softmax reads strided inputs (batch dims permuted, keys along a strided axis)', async (t) => {
    const rng = testRng('softmax causal strided', t);
    const base = randomND(rng, [3, 2, 5, 6], { low: -3, high: 3 });
    const x = put(base, device);
    const cases: [Tensor, O.ND][] = [
      [x.transpose(0, 1), O.permute(base, [1, 0, 2, 3])], // (2, 3, 5, 6), batch strides swapped
      [x.transpose(-2, -1), O.permute(base, [0, 1, 3, 2])], // (3, 2, 6, 5): the keys are a strided axis
      [x.narrow(3, 1, 4), O.slice(base, 3, 1, 5)], // (3, 2, 5, 4): rows with a gap between them
    ];
    for (const [xt, ref] of cases) {
      for (const off of [0, 2, -1]) {
        const got = await F.softmax(xt, -1, { causal: off }).toArray();
        const what = `causal softmax of a view [${xt.shape}] offset ${off}`;
        assertClose(got, refCausalSoftmax(ref, off), { dtype: 'float32', rtol: 2e-6, atol: 1e-7, what });
        assertMaskedZero(got, xt.shape, off, what);
      }
    }
  });

  test('causal softmax gradients match finite differences; masked keys get exactly zero gradient', async (t) => {
    const rng = testRng('softmax causal grad', t);
    for (const [shape, off] of [
      [[2, 3, 5], 0],
      [[4, 7], 3], // Tk - Tq
      [[2, 5, 4], 1],
      [[3, 3], -1], // row 0 is NaN: left out below
    ] as [number[], number][]) {
      const z = randomND(rng, shape, { low: -2, high: 2 });
      const up = randomND(rng, shape);
      const x = put(z, device, 'float32', true);
      tidy(() => F.softmax(x, -1, { causal: off }).mul(put(up, device)).sum().backward());
      const gx = await x.grad!.toArray();
      assertMaskedZero(gx, shape, off, `gradient [${shape}] offset ${off}`);
      const tk = shape[shape.length - 1]!;
      const tq = shape[shape.length - 2]!;
      // a row with no key is NaN, its gradient too; the others are checked (their NaN-free oracle rows)
      const live = (i: number): boolean => (Math.floor(i / tk) % tq) + off + 1 > 0;
      for (let i = 0; i < gx.length; i++) if (!live(i)) assert.ok(Number.isNaN(gx[i]), 'an all-masked row: NaN');
      assertGradClose(
        [Float64Array.from(gx, (g, i) => (live(i) ? g : 0))],
        ([a]) => O.mapND(refCausalSoftmax(a!, off), (y, i) => (live(i) ? y : 0)),
        [z],
        up,
        { what: `softmax causal grad [${shape}] offset ${off}` },
      );
      x.dispose();
    }
  });

  test('causal softmax validates its attributes', () => {
    const x = put(O.nd([3, 4], 0), device);
    assert.throws(() => F.softmax(x, 0, { causal: 0 }), /softmax.*last axis/);
    assert.throws(() => F.softmax(put(O.nd([4], 0), device), -1, { causal: 0 }), /softmax.*last axis/);
    assert.throws(() => F.softmax(x, -1, { causal: 0.5 }), /softmax.*integer/);
    x.dispose();
  });

  /** The scaledDotProductAttention of before the fused softmax: where(causalMask, att, -Inf), then softmax. */
  function oldAttention(q: Tensor, k: Tensor, v: Tensor, offset: number, mask: Tensor | null): Tensor {
    return tidy(() => {
      const ac = autocastDType();
      const [qc, kc, vc] = [q, k, v].map((a) => (ac ? cast(a, ac) : a)) as [Tensor, Tensor, Tensor];
      const [tq, tk] = [q.shape[q.ndim - 2]!, k.shape[k.ndim - 2]!];
      let att = matmul(qc.mul(1 / Math.sqrt(q.shape[q.ndim - 1]!)), kc.transpose(-2, -1));
      if (ac) att = cast(att, 'float32');
      // offset 0: the old code's causalMask; else the old KV-cache mask (key j <= offset + i)
      const j =
        offset === 0
          ? F.causalMask(tq, device, tk)
          : arange(0, tk, 1, { device })
              .reshape([1, tk])
              .le(arange(offset, offset + tq, 1, { device }).reshape([tq, 1]));
      att = where(j, att, -Infinity);
      if (mask) att = where(mask, att, -Infinity);
      att = att.softmax(-1);
      return matmul(ac ? cast(att, ac) : att, vc);
    });
  }

  test('scaledDotProductAttention causal equals the where-mask composition (values and gradients)', async (t) => {
    const rng = testRng('sdpa fused causal', t);
    for (const [tq, tk, offset, withMask] of [
      [6, 6, 0, false],
      [5, 9, 0, false], // top-left, as torch's is_causal
      [5, 9, 4, false], // causalOffset = Tk - Tq
      [7, 7, 0, true], // an explicit bool mask as well
      [3, 8, 5, true],
    ] as [number, number, number, boolean][]) {
      const [B, nh, hs] = [2, 2, 4];
      const qa = randomND(rng, [B, nh, tq, hs]);
      const ka = randomND(rng, [B, nh, tk, hs]);
      const va = randomND(rng, [B, nh, tk, hs]);
      const mask = withMask
        ? tensor(
            Uint8Array.from({ length: tq * tk }, (_, p) => (p % tk === 0 || (p * 7) % 3 !== 0 ? 1 : 0)),
            { shape: [tq, tk], device, dtype: 'bool' },
          )
        : null;
      const run = async (fused: boolean): Promise<Float32Array[]> => {
        const [q, k, v] = [qa, ka, va].map((a) => put(a, device, 'float32', true)) as [Tensor, Tensor, Tensor];
        const y = fused
          ? F.scaledDotProductAttention(q, k, v, { causal: true, causalOffset: offset, mask })
          : oldAttention(q, k, v, offset, mask);
        const up = put(
          O.nd(
            y.shape,
            Float64Array.from({ length: y.size }, (_, i) => Math.sin(i)),
          ),
          device,
        );
        tidy(() => y.mul(up).sum().backward());
        const out = [await y.toArray(), ...(await Promise.all([q, k, v].map((a) => a.grad!.toArray())))];
        [q, k, v, y, up].forEach((a) => a.dispose());
        return out.map((a) => Float32Array.from(a));
      };
      const [fused, old] = [await run(true), await run(false)];
      ['output', 'q grad', 'k grad', 'v grad'].forEach((what, i) =>
        assertClose(fused[i]!, old[i]!, {
          dtype: 'float32',
          rtol: 1e-5,
          atol: 1e-6,
          what: `sdpa ${what} Tq ${tq} Tk ${tk} offset ${offset} mask ${withMask}`,
        }),
      );
      mask?.dispose();
    }
  });

  test(
    'scaledDotProductAttention causal under autocast equals the composition',
    needsDTypes(device, ['float16']),
    async (t) => {
      const rng = testRng('sdpa fused causal autocast', t);
      const [q, k, v] = [0, 1, 2].map(() => put(randomND(rng, [2, 2, 7, 8]), device)) as [Tensor, Tensor, Tensor];
      const fused = autocast('float16', () => F.scaledDotProductAttention(q, k, v, { causal: true }));
      const old = autocast('float16', () => oldAttention(q, k, v, 0, null));
      assert.equal(fused.dtype, 'float16');
      assert.equal(old.dtype, 'float16');
      assertClose(await fused.toArray(), await old.toArray(), {
        // on WebGPU the fused side is the flash attention kernel (f32 math, one f16 rounding) while the
        // composition rounds the scores and probabilities to f16 between kernels: ~2 f16 ulps apart
        dtype: 'float16',
        rtol: 2e-3,
        atol: 5e-4,
        what: 'autocast sdpa',
      });
      [q, k, v, fused, old].forEach((a) => a.dispose());
    },
  );

  if (device === 'webgpu') {
    test('the causal softmax compiles no pipeline per offset (the offset is a uniform)', async (t) => {
      const rng = testRng('softmax causal pipelines', t);
      const x = put(randomND(rng, [2, 3, 8, 8]), device);
      const stats = () => getBackend(device).stats().compiles;
      await F.softmax(x, -1).toArray(); // the plain softmax of this shape: its pipeline
      const before = stats();
      for (const off of [0, 3, -2, 20]) await F.softmax(x, -1, { causal: off }).toArray();
      assert.equal(stats() - before, 0, 'no pipeline compiled for the causal offsets');
      x.dispose();
    });
  }
});

// CPU only: not in the float16 pass (TEST_DEVICES is WebGPU there)
describe('cpu WASM causal softmax rows', { skip: !TEST_DEVICES.includes('cpu') }, () => {
  test('long rows take the WASM row kernel at the default threshold, over several staging chunks', async (t) => {
    const rng = testRng('softmax causal wasm', t);
    const prev = setCpuKernelOptions({ threads: false }); // the single-threaded staging (pooled: below)
    t.after(() => setCpuKernelOptions(prev));
    for (const [shape, offs] of [
      [
        [2, 3, 130, 257],
        [0, 127, -1],
      ], // 200k elements, one chunk
      [
        [2, 3, 129, 1025],
        [0, 896, -3, 2000],
      ], // 255 rows a chunk: chunks start mid-plane
    ] as [number[], number[]][]) {
      const z = O.roundND(randomND(rng, shape, { low: -6, high: 6 }), 'float32');
      const x = put(z, 'cpu');
      for (const off of offs) {
        const before = cpuKernelCounters().rowsWasm;
        const got = await F.softmax(x, -1, { causal: off }).toArray();
        assert.equal(cpuKernelCounters().rowsWasm - before, 1, 'ran on the WASM row kernel');
        const what = `wasm causal softmax [${shape}] offset ${off}`;
        assertClose(got, refCausalSoftmax(z, off), { dtype: 'float32', rtol: 1e-5, atol: 1e-7, what });
        assertMaskedZero(got, shape, off, what);
      }
      x.dispose();
    }
  });

  test('rows split over the worker pool: the oracle, and the same bits as one thread', async (t) => {
    const rng = testRng('softmax causal wasm pooled', t);
    const ready = await cpuThreadsReady();
    assert.equal(ready, cpuKernelInfo().threads > 1);
    // 1.6M elements: 1023 rows per 4 MiB pooled chunk, so chunks start mid-plane (130 queries a plane)
    const shape = [3, 4, 130, 1025];
    const z = O.roundND(randomND(rng, shape, { low: -6, high: 6 }), 'float32');
    const x = put(z, 'cpu');
    for (const off of [0, 895, -2]) {
      const got: Float32Array[] = [];
      for (const threads of [true, false]) {
        const prev = setCpuKernelOptions({ threads });
        const before = cpuKernelCounters();
        try {
          got.push(Float32Array.from(await F.softmax(x, -1, { causal: off }).toArray()));
        } finally {
          setCpuKernelOptions(prev);
        }
        const now = cpuKernelCounters();
        assert.equal(now.rowsWasm - before.rowsWasm, 1, 'ran on the WASM row kernel');
        assert.equal(now.rowsThreaded - before.rowsThreaded, threads && ready ? 1 : 0, 'split over the pool');
      }
      const what = `pooled causal softmax [${shape}] offset ${off}`;
      assertClose(got[0]!, refCausalSoftmax(z, off), { dtype: 'float32', rtol: 1e-5, atol: 1e-7, what });
      assertMaskedZero(got[0]!, shape, off, what);
      assert.ok(
        got[0]!.every((v, i) => Object.is(v, got[1]![i])),
        `${what}: pooled and single-threaded bits differ`,
      );
    }
    x.dispose();
  });

  describe('small rows with the threshold lowered (vector tails, NaN rows)', () => {
    // set when this suite runs (not when it is declared), so the suites above keep the JS loops
    let defaults: ReturnType<typeof setRowKernelOptions> | null = null;
    before(() => (defaults = setRowKernelOptions({ minElements: 1 })));
    after(() => defaults && setRowKernelOptions(defaults));
    test('odd widths and offsets match the oracle on the WASM kernel', async (t) => {
      const rng = testRng('softmax causal wasm small', t);
      for (const shape of [
        [3, 5, 7],
        [9, 13],
        [2, 4, 1],
        [1, 6],
      ]) {
        const z = O.roundND(randomND(rng, shape, { low: -5, high: 5 }), 'float32');
        const tk = shape[shape.length - 1]!;
        if (z.data.length > 3 * tk && tk > 2) {
          z.data[tk + 1] = -Infinity;
          z.data[2 * tk] = NaN;
        }
        const tq = shape[shape.length - 2]!;
        for (const off of offsetsFor(tq, tk)) {
          const before = cpuKernelCounters().rowsWasm;
          const got = await F.softmax(put(z, 'cpu'), -1, { causal: off }).toArray();
          assert.equal(cpuKernelCounters().rowsWasm - before, 1, 'ran on the WASM row kernel');
          const what = `wasm causal softmax [${shape}] offset ${off}`;
          assertClose(got, refCausalSoftmax(z, off), { dtype: 'float32', rtol: 1e-5, atol: 1e-7, what });
          assertMaskedZero(got, shape, off, what);
        }
      }
    });
  });
});
