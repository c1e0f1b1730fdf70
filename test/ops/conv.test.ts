// conv2d on every backend against the float64 direct-loop oracle (test/oracle/conv.ts): forward, input,
// weight and bias gradients over odd shapes and combinations of stride, padding, dilation and groups
// (depthwise included), with and without bias; the argument errors; and on the CPU larger cases that
// take the WebAssembly implicit-GEMM path (checked by its counters) up to the ResNet-50 stem.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { conv2d, type DType, type DeviceName, type Tensor } from '../../src/index.js';
import { cpuKernelCounters, cpuKernelInfo, cpuThreadsReady, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { TEST_DEVICES, forEachBackend, needsDTypes } from '../helpers/backends.js';
import { assertClose } from '../helpers/assert.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, testRng, type Rng } from '../helpers/random.js';
import * as OC from '../oracle/conv.js';
import type { ND } from '../oracle/ndarray.js';
import { assertIdentical, assertThrowsWith, expectTensor, fromND } from './util.js';

const defaults = setCpuKernelOptions({});

/** One convolution: input (n, c, h, w), weight (o, c/groups, kh, kw), parameters, bias or not. */
interface Case {
  x: [number, number, number, number];
  k: [number, number];
  o: number;
  p: OC.ConvParams;
  bias: boolean;
}

const P = (s: number | [number, number], p: number | [number, number], d: number | [number, number], g = 1) => {
  const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);
  return { stride: pair(s), padding: pair(p), dilation: pair(d), groups: g };
};

/** Small cases every backend runs (the WebGPU software adapter is slow). */
const SMALL: Case[] = [
  { x: [1, 1, 1, 1], k: [1, 1], o: 1, p: P(1, 0, 1), bias: false },
  { x: [2, 3, 7, 5], k: [3, 3], o: 4, p: P(1, 1, 1), bias: true },
  { x: [1, 4, 9, 8], k: [3, 2], o: 6, p: P([2, 3], [0, 1], [2, 1], 2), bias: true },
  { x: [2, 5, 6, 7], k: [3, 3], o: 5, p: P(1, 1, 1, 5), bias: false }, // depthwise
  { x: [1, 3, 5, 6], k: [2, 3], o: 6, p: P(2, [1, 0], 1, 3), bias: true }, // depthwise, multiplier 2
  { x: [2, 6, 5, 5], k: [1, 1], o: 3, p: P(1, 0, 1), bias: true }, // pointwise
  { x: [1, 2, 3, 4], k: [5, 4], o: 3, p: P(1, [1, 0], 1), bias: false }, // kernel = padded input
  { x: [3, 2, 8, 3], k: [3, 1], o: 2, p: P([3, 1], [2, 1], [3, 1]), bias: true },
];

/**
 * CPU cases above the fast-path threshold: each kernel runs on WASM (the implicit GEMM, depthwise loops,
 * or the GEMM for a 1x1 forward on large planes).
 */
const LARGE: Case[] = [
  { x: [2, 8, 17, 19], k: [3, 3], o: 16, p: P(1, 1, 1), bias: true },
  { x: [1, 12, 23, 21], k: [5, 5], o: 24, p: P(2, 2, 1, 3), bias: true },
  { x: [3, 8, 15, 16], k: [3, 3], o: 16, p: P(1, 2, 2), bias: false },
  { x: [2, 16, 32, 32], k: [3, 3], o: 16, p: P(1, 1, 1, 16), bias: true }, // depthwise (direct SIMD loops)
  { x: [3, 24, 33, 30], k: [3, 5], o: 24, p: P([2, 1], [1, 2], [2, 1], 24), bias: false }, // depthwise
  { x: [2, 12, 28, 28], k: [3, 3], o: 24, p: P(1, 1, 1, 12), bias: true }, // depthwise x2: implicit GEMM
  { x: [1, 3, 40, 37], k: [7, 7], o: 16, p: P(2, 3, 1), bias: true }, // a stem
  // one image, one tile: the units split output channels (forward) and input channels (gradients)
  { x: [1, 16, 9, 9], k: [3, 3], o: 64, p: P(1, 1, 1), bias: true },
  { x: [1, 24, 7, 8], k: [3, 2], o: 72, p: P(1, [1, 0], 1), bias: true },
  { x: [8, 32, 7, 7], k: [1, 1], o: 48, p: P(1, 0, 1), bias: true }, // 1x1 on small planes: implicit GEMM
  { x: [2, 20, 15, 16], k: [3, 3], o: 36, p: P([1, 2], [1, 0], [1, 2], 2), bias: false },
  // 11 channels per group (a partial row panel) and 143 positions (a partial column panel), with a bias
  { x: [2, 10, 13, 11], k: [3, 3], o: 22, p: P(1, 1, 1, 2), bias: true },
];

/** A random small case: odd sizes, any stride/padding/dilation, groups dividing both channel counts. */
function randomCase(rng: Rng): Case {
  const g = rng.int(1, 4);
  const c = g * rng.int(1, 4);
  const o = g * rng.int(1, 4);
  const k: [number, number] = [rng.int(1, 4), rng.int(1, 4)];
  const d: [number, number] = [rng.int(1, 3), rng.int(1, 3)];
  const pad: [number, number] = [rng.int(0, 3), rng.int(0, 3)];
  const size = (i: 0 | 1) => Math.max(1, d[i] * (k[i] - 1) + 1 - 2 * pad[i]) + rng.int(0, 6);
  return {
    x: [rng.int(1, 4), c, size(0), size(1)],
    k,
    o,
    p: P([rng.int(1, 4), rng.int(1, 4)], pad, d, g),
    bias: rng.bool(),
  };
}

const describeCase = (c: Case): string =>
  `x [${c.x}] w [${c.o}, ${c.x[1] / c.p.groups}, ${c.k}] stride ${c.p.stride} pad ${c.p.padding} dil ${c.p.dilation} groups ${c.p.groups}${c.bias ? ' +bias' : ''}`;

/** Forward and all gradients of one case against the oracle. */
async function checkCase(device: DeviceName, rng: Rng, c: Case, dtype: DType = 'float32'): Promise<void> {
  const what = describeCase(c);
  const wShape = [c.o, c.x[1] / c.p.groups, ...c.k];
  const x = randomND(rng, c.x);
  const w = randomND(rng, wShape);
  const b = c.bias ? randomND(rng, [c.o]) : null;
  const X = fromND(x, dtype, device).requiresGrad_();
  const W = fromND(w, dtype, device).requiresGrad_();
  const B = b ? fromND(b, dtype, device).requiresGrad_() : null;
  const Y = conv2d(X, W, B, c.p);
  const y = OC.conv2d(x, w, b, c.p);
  const taps = wShape[1]! * c.k[0] * c.k[1];
  await expectTensor(Y, y, dtype, { what: `forward ${what}`, terms: taps + 1 });
  const gy = randomND(rng, y.shape);
  const GY = fromND(gy, dtype, device);
  Y.backward(GY);
  const [, , oh, ow] = y.shape as [number, number, number, number];
  const close = async (t: Tensor | null, want: ND, terms: number, name: string) => {
    assert.ok(t, `${what}: no ${name} gradient`);
    assertClose(await t.toArray(), want, { dtype, terms, what: `${name} gradient of ${what}` });
  };
  await close(X.grad, OC.conv2dGradInput(gy, w, c.x, c.p), (c.o / c.p.groups) * c.k[0] * c.k[1], 'input');
  await close(W.grad, OC.conv2dGradWeight(x, gy, wShape, c.p), c.x[0] * oh * ow, 'weight');
  if (B) await close(B.grad, OC.conv2dGradBias(gy), c.x[0] * oh * ow, 'bias');
  for (const t of [X, W, B, Y, GY]) t?.dispose();
}

forEachBackend((device) => {
  describe('conv2d', () => {
    test('forward and gradients vs the float64 oracle: fixed odd cases', async (t) => {
      const rng = testRng('conv2d fixed', t);
      for (const c of SMALL) await checkCase(device, rng, c);
    });

    test('forward and gradients vs the float64 oracle: random strides, paddings, dilations, groups', async (t) => {
      const rng = testRng('conv2d random', t);
      for (let i = 0; i < (device === 'cpu' ? 12 : 4); i++) await checkCase(device, rng, randomCase(rng));
    });

    test('float16 forward and gradients vs the float64 oracle (a fused bias and a split K included)', async (t) => {
      if (needsDTypes(device, ['float16']).skip) return t.skip(needsDTypes(device, ['float16']).skip);
      const rng = testRng('conv2d f16', t);
      // on WebGPU the last one splits K = 576 over a float32 scratch and adds the bias in a second pass
      const splitK: Case = { x: [1, 64, 2, 2], k: [3, 3], o: 8, p: P(1, 1, 1), bias: true };
      for (const c of [SMALL[1]!, SMALL[2]!, SMALL[4]!, splitK]) await checkCase(device, rng, c, 'float16');
    });

    test('gradients match finite differences of the float64 oracle (tiny cases)', async (t) => {
      const rng = testRng('conv2d gradcheck', t);
      const cases: Case[] = [
        { x: [2, 2, 4, 3], k: [2, 2], o: 3, p: P([2, 1], [1, 0], [1, 2]), bias: true },
        { x: [1, 3, 4, 4], k: [3, 3], o: 3, p: P(1, 1, 1, 3), bias: true }, // depthwise
      ];
      for (const c of cases) {
        const inputs = [randomND(rng, c.x), randomND(rng, [c.o, c.x[1] / c.p.groups, ...c.k]), randomND(rng, [c.o])];
        const leaves = inputs.map((a) => fromND(a, 'float32', device).requiresGrad_());
        const y = conv2d(leaves[0]!, leaves[1]!, leaves[2], c.p);
        const up = randomND(rng, y.shape);
        const g = fromND(up, 'float32', device);
        y.backward(g);
        const grads = await Promise.all(leaves.map((l) => l.grad!.toArray()));
        assertGradClose(grads, (xs) => OC.conv2d(xs[0]!, xs[1]!, xs[2]!, c.p), inputs, up, {
          what: describeCase(c),
        });
        for (const u of [...leaves, y, g]) u.dispose();
      }
    });

    test('argument errors name the op, the shapes and the offending value', () => {
      const z = (shape: number[]) => fromND(randomND(testRng('conv2d errors'), shape), 'float32', device);
      const x = z([1, 4, 5, 5]);
      assertThrowsWith(() => conv2d(z([4, 5, 5]), z([2, 4, 3, 3])), ['conv2d', '(N, C, H, W)', '[4, 5, 5]']);
      assertThrowsWith(() => conv2d(x, z([2, 3, 3, 3])), ['conv2d', 'weight [2, 3, 3, 3]', '3 input channels', '4']);
      assertThrowsWith(() => conv2d(x, z([6, 2, 3, 3]), null, { groups: 4 }), ['groups=4', 'must divide', '6']);
      assertThrowsWith(() => conv2d(x, z([2, 4, 7, 3])), ['conv2d', 'larger than the padded input', '5']);
      assertThrowsWith(() => conv2d(x, z([2, 4, 3, 3]), null, { dilation: 3 }), ['dilated extent 7']);
      assertThrowsWith(() => conv2d(x, z([2, 4, 3, 3]), null, { stride: 0 }), ['stride', '>= 1', '0']);
      assertThrowsWith(() => conv2d(x, z([2, 4, 3, 3]), null, { padding: [1, -1] }), ['padding', '-1']);
      assertThrowsWith(() => conv2d(x, z([2, 4, 3, 3]), null, { groups: 0 }), ['groups', '0']);
      assertThrowsWith(() => conv2d(x, z([2, 4, 3, 3]), z([3])), ['bias', '[2]', '[3]']);
      assertThrowsWith(() => conv2d(x.cast('int32'), z([2, 4, 3, 3]).cast('int32')), ['conv2d', 'float', 'int32']);
    });

    test('non-contiguous operands give the same result', async (t) => {
      const rng = testRng('conv2d strided', t);
      const x = randomND(rng, [2, 3, 6, 5]);
      const w = randomND(rng, [4, 3, 3, 3]);
      const p = P(1, 1, 1);
      // views holding x and w: transposed back from a contiguous transposed copy
      const X = fromND(x, 'float32', device).transpose(2, 3).contiguous().transpose(2, 3);
      const W = fromND(w, 'float32', device).permute([1, 0, 2, 3]).contiguous().permute([1, 0, 2, 3]);
      assert.equal(X.isContiguous || W.isContiguous, false);
      await expectTensor(conv2d(X, W, null, p), OC.conv2d(x, w, null, p), 'float32', { what: 'views', terms: 27 });
    });
  });
});

// The fast-path tests below are CPU-only, and CI's float16 pass (TL_TEST_WEBGPU=f16) tests WebGPU alone
const cpuRun = TEST_DEVICES.includes('cpu') ? {} : { skip: 'the cpu is not tested in this run' };

describe('conv2d [cpu] fast paths', cpuRun, () => {
  test('larger cases take the WASM implicit GEMM (or GEMM for 1x1) and match the oracle', async (t) => {
    const rng = testRng('conv2d cpu large', t);
    const wasm = cpuKernelInfo().wasm !== null;
    await cpuThreadsReady();
    // work splits depend on the thread count, and images are staged in chunks when memory is short:
    // threaded, single-threaded, and single-threaded with a chunk budget of about one image
    const settings = [{ threads: true }, { threads: false }, { threads: false, chunkFloats: 1 << 14 }];
    try {
      for (const opts of settings) {
        setCpuKernelOptions(opts);
        for (const c of LARGE) {
          const before = cpuKernelCounters();
          await checkCase('cpu', rng, c);
          const now = cpuKernelCounters();
          const what = `${describeCase(c)} ${JSON.stringify(opts)}`;
          if (wasm) assert.equal(now.convWasm - before.convWasm, 3, `${what}: three WASM conv kernels ran`);
        }
      }
    } finally {
      setCpuKernelOptions(defaults);
    }
    const before = cpuKernelCounters();
    await checkCase('cpu', rng, { x: [2, 32, 17, 16], k: [1, 1], o: 40, p: P(1, 0, 1), bias: true });
    assert.equal(cpuKernelCounters().convGemm - before.convGemm, 1, '1x1 stride-1 forward ran as a GEMM');
  });

  test('results do not depend on the thread count (bit for bit)', async (t) => {
    // with two threads the units split finer (output and input channel blocks) than with one
    const rng = testRng('conv2d cpu threads', t);
    await cpuThreadsReady();
    const x = fromND(randomND(rng, [3, 32, 20, 18]), 'float32', 'cpu');
    const w = fromND(randomND(rng, [128, 32, 3, 3]), 'float32', 'cpu');
    const run = async (threads: boolean) => {
      setCpuKernelOptions({ threads });
      try {
        const X = x.detach().requiresGrad_();
        const W = w.detach().requiresGrad_();
        const y = conv2d(X, W, null, { padding: 1, stride: [1, 2] });
        y.backward(y.detach());
        return await Promise.all([y, X.grad!, W.grad!].map((r) => r.toArray()));
      } finally {
        setCpuKernelOptions(defaults);
      }
    };
    const a = await run(true);
    const b = await run(false);
    ['output', 'input gradient', 'weight gradient'].forEach((what, i) => assertIdentical(a[i]!, b[i]!, what));
  });

  test('an empty batch gives an empty output and zero weight and bias gradients', async () => {
    const X = fromND(randomND(testRng('conv2d empty'), [0, 3, 5, 5]), 'float32', 'cpu').requiresGrad_();
    const W = fromND(randomND(testRng('conv2d empty w'), [4, 3, 3, 3]), 'float32', 'cpu').requiresGrad_();
    const B = fromND(randomND(testRng('conv2d empty b'), [4]), 'float32', 'cpu').requiresGrad_();
    const y = conv2d(X, W, B, { padding: 1 });
    assert.deepEqual(y.shape, [0, 4, 5, 5]);
    y.sum().backward();
    assert.deepEqual([...(await W.grad!.toArray())], new Array<number>(108).fill(0));
    assert.deepEqual([...(await B.grad!.toArray())], [0, 0, 0, 0]);
  });

  test('float16 runs the direct loops', async (t) => {
    await checkCase('cpu', testRng('conv2d cpu f16', t), SMALL[2]!, 'float16');
  });

  test('ResNet-50 stem (1, 3, 224, 224) -> (1, 64, 112, 112), 7x7 stride 2 padding 3, sampled vs the oracle', async (t) => {
    const rng = testRng('conv2d stem', t);
    const threads = await cpuThreadsReady();
    const x = randomND(rng, [1, 3, 224, 224]);
    const w = randomND(rng, [64, 3, 7, 7], { low: -0.1, high: 0.1 });
    const b = randomND(rng, [64]);
    const p = P(2, 3, 1);
    const before = cpuKernelCounters();
    const Y = conv2d(fromND(x, 'float32', 'cpu'), fromND(w, 'float32', 'cpu'), fromND(b, 'float32', 'cpu'), p);
    assert.deepEqual(Y.shape, [1, 64, 112, 112]);
    const got = await Y.toArray();
    const now = cpuKernelCounters();
    if (cpuKernelInfo().wasm) assert.equal(now.convWasm - before.convWasm, 1, 'the stem ran on the WASM path');
    if (threads && cpuKernelInfo().threads > 1) assert.equal(now.convThreaded - before.convThreaded, 1, 'threaded');
    const at: number[][] = [
      [0, 0, 0, 0],
      [0, 63, 111, 111],
      [0, 5, 0, 111],
      [0, 17, 111, 0],
    ];
    for (let i = 0; i < 1500; i++) at.push([0, rng.int(0, 64), rng.int(0, 112), rng.int(0, 112)]);
    const want = at.map((q) => OC.conv2dAt(x, w, b, p, q));
    const have = at.map(([, o, i, j]) => got[(o! * 112 + i!) * 112 + j!]!);
    assertClose(have, want, { dtype: 'float32', terms: 148, what: 'stem samples' });
  });

  test('a stem-sized forward staged in chunks of images matches image by image (bit for bit)', async (t) => {
    // three stem images stage in two chunks (the forward keeps its staged input and output near 8 MiB)
    const rng = testRng('conv2d stem chunks', t);
    await cpuThreadsReady();
    const x = fromND(randomND(rng, [3, 3, 224, 224]), 'float32', 'cpu');
    const w = fromND(randomND(rng, [64, 3, 7, 7], { low: -0.1, high: 0.1 }), 'float32', 'cpu');
    const b = fromND(randomND(rng, [64]), 'float32', 'cpu');
    const p = P(2, 3, 1);
    const all = await conv2d(x, w, b, p).toArray();
    const per = 64 * 112 * 112;
    for (let n = 0; n < 3; n++) {
      const one = await conv2d(x.narrow(0, n, 1), w, b, p).toArray();
      assertIdentical(all.subarray(n * per, (n + 1) * per), one, `image ${n}`);
    }
  });
});
