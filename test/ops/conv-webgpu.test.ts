// GPU-specific properties of the WebGPU conv kernels (src/backend/webgpu/kernels/conv*.ts). On every run
// (pure host code): the tile and split-K rule for several problem sizes, the dispatch counts, and the
// grid folding of large problems. On the WebGPU backend: agreement with the CPU backend within relative
// 1e-5 on well-conditioned (positive) data and with the float64 oracle, split-K and a fused bias
// included, and a steady state of forward + backward that creates no buffer and compiles nothing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { contiguousStrides } from '../../src/core/shape.js';
import type { TensorSpec } from '../../src/backend/backend.js';
import type { KernelContext } from '../../src/backend/webgpu/kernel.js';
import {
  conv2d as conv2dKernel,
  conv2dBackwardInput as conv2dBackwardInputKernel,
  conv2dBackwardWeight as conv2dBackwardWeightKernel,
} from '../../src/backend/webgpu/kernels/conv.js';
import { CONV_TILES, MIN_GROUPS, S, convPlan } from '../../src/backend/webgpu/kernels/conv-gemm.js';
import { OpError, conv2d, getBackend, type DeviceName, type Tensor } from '../../src/index.js';
import type { Conv2dAttrs } from '../../src/ops/opcodes.js';
import { forEachBackend } from '../helpers/backends.js';
import { assertClose } from '../helpers/assert.js';
import { randomND, testRng } from '../helpers/random.js';
import * as OC from '../oracle/conv.js';
import type { ND } from '../oracle/ndarray.js';
import { assertThrowsWith, fromND } from './util.js';

/** WebGPU's default limits (every adapter offers at least these). */
const LIMITS: KernelContext['limits'] = {
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
};

/** A kernel context that records dispatches only (nothing is bound or run). */
function fakeContext(limits = LIMITS): KernelContext & { scratchBytes: number[] } {
  const scratchBytes: number[] = [];
  return {
    limits,
    f16: false,
    scratch: (bytes) => {
      scratchBytes.push(bytes);
      return { bytes };
    },
    checks: { buffer: { bytes: 16 }, code: () => 1 },
    scratchBytes,
  };
}

const spec = (shape: number[]): TensorSpec => ({
  buffer: { bytes: 4 * shape.reduce((a, b) => a * b, 1) },
  dtype: 'float32',
  shape,
  strides: contiguousStrides(shape),
  offset: 0,
});

const attrs = (s: number, p: number, g = 1): Conv2dAttrs => ({
  stride: [s, s],
  padding: [p, p],
  dilation: [1, 1],
  groups: g,
});

describe('webgpu conv2d planning (host side)', () => {
  test('tile and split-K choice by problem size', () => {
    const tile = (m: number, n: number, k: number, g = 1) => {
      const p = convPlan([{ m, n, k }], g, m * n * g, LIMITS);
      return `${p.tiles[0]!.bm}x${p.tiles[0]!.bn}/${p.splits}`;
    };
    // ResNet-50 stem at batch 8: forward (M = 64 channels), input grad (M = 3 channels), weight grad (K = 8*112*112)
    assert.equal(tile(64, 8 * 112 * 112, 3 * 49), '64x64/1', 'stem forward: 64 rows, plenty of columns');
    assert.equal(tile(3, 8 * 112 * 112, 64 * 16), '4x256/1', 'stem input grad (a stride phase): 3 rows, 4-row tile');
    assert.equal(tile(1, 8 * 56 * 56, 9, 64), '1x256/1', 'depthwise forward: one row per group');
    assert.equal(tile(1, 9, 8 * 56 * 56, 64), '16x16/3', 'depthwise weight grad: 9 columns, K split 192 / 64 ways');
    assert.equal(tile(64, 3 * 49, 8 * 112 * 112), '64x64/64', 'stem weight grad: 3 tiles, K split 64 ways');
    assert.equal(tile(256, 32 * 56 * 56, 64 * 9), '128x128/1', 'a large layer takes the largest tile');
    // a deep layer at batch 1: 7x7 outputs, K = 512*9: few tiles, so split-K
    assert.equal(tile(512, 49, 512 * 9), '32x32/6', 'deep layer: narrow N, split K');
    assert.equal(tile(4, 10, 27), '16x16/1', 'a tiny problem: the smallest tile, K too short to split');
  });

  test('every plan fits the adapter limits, covers K exactly once and fills the GPU when it can', () => {
    const rng = testRng('conv plan invariants');
    const tight = { ...LIMITS, maxComputeWorkgroupStorageSize: 8192 };
    for (let i = 0; i < 300; i++) {
      const m = rng.int(1, 600);
      const n = rng.int(1, 20000);
      const k = rng.int(0, 30000);
      const g = rng.int(1, 5);
      for (const limits of [LIMITS, tight]) {
        const plan = convPlan([{ m, n, k }], g, m * n * g, limits);
        const p = { tile: plan.tiles[0]!, tiles: plan.counts[0]!, chunk: plan.chunks[0]!, splits: plan.splits };
        const what = `M ${m} N ${n} K ${k} groups ${g} storage ${limits.maxComputeWorkgroupStorageSize}`;
        assert.ok(CONV_TILES.includes(p.tile), `${what}: a listed tile`);
        assert.ok(4 * p.tile.bk * (p.tile.bm + p.tile.bn + 4) <= limits.maxComputeWorkgroupStorageSize, what);
        assert.equal(p.tiles, Math.ceil(m / p.tile.bm) * Math.ceil(n / p.tile.bn) * g, `${what}: tile count`);
        assert.equal(p.chunk % p.tile.bk, 0, `${what}: chunks are whole K slices`);
        assert.ok(p.splits * p.chunk >= k && (p.splits - 1) * p.chunk < Math.max(k, 1), `${what}: chunks cover K`);
        if (p.tiles < MIN_GROUPS && k >= 512 && 8 * m * n * g <= 64 * 2 ** 20) {
          assert.ok(p.splits >= 2, `${what}: too few tiles, so K is split`);
        }
        if (p.splits > 1) {
          assert.ok(p.tiles < MIN_GROUPS, `${what}: split-K only when the tiles are too few`);
          assert.ok(p.chunk >= 256, `${what}: chunks stay long`);
        }
      }
    }
  });

  test('an adapter below the WebGPU minimum limits gets an OpError naming conv2d and the limit', () => {
    const small = { ...LIMITS, maxComputeInvocationsPerWorkgroup: 128 };
    assertThrowsWith(() => convPlan([{ m: 64, n: 64, k: 64 }], 1, 4096, small), ['conv2d', 'allows 128']);
    assert.throws(() => convPlan([{ m: 64, n: 64, k: 64 }], 1, 4096, small), OpError);
  });

  test('dispatch counts: one per op, two with split-K; the scratch holds one output per K chunk', () => {
    // x (2, 8, 16, 16), w (16, 8, 3, 3), pad 1: y (2, 16, 16, 16)
    const a = attrs(1, 1);
    const [x, w, b, y] = [spec([2, 8, 16, 16]), spec([16, 8, 3, 3]), spec([16]), spec([2, 16, 16, 16])];
    const ctx = fakeContext();
    assert.equal(conv2dKernel([x, w, b], y, a, ctx).length, 1, 'forward with bias: 1 dispatch');
    assert.equal(conv2dBackwardInputKernel([y, w], x, { ...a, inputSize: [16, 16] }, ctx).length, 1, 'input grad');
    assert.equal(ctx.scratchBytes.length, 0, 'no scratch without split-K');
    // weight grad: M 16, N 72, K 512 -> five 16x16 tiles, K split in 2
    const gw = conv2dBackwardWeightKernel([x, y], w, { ...a, kernelSize: [3, 3] }, ctx);
    assert.equal(gw.length, 2, 'weight grad: GEMM partials + their sum');
    assert.deepEqual(ctx.scratchBytes, [2 * 16 * 8 * 9 * 4], 'two partial weight gradients');
    // forward with few outputs and a long K: split-K, the bias added by the second dispatch
    const [x2, w2, b2, y2] = [spec([1, 64, 2, 2]), spec([8, 64, 3, 3]), spec([8]), spec([1, 8, 2, 2])];
    const f = conv2dKernel([x2, w2, b2], y2, a, ctx);
    assert.equal(f.length, 2, 'split-K forward: 2 dispatches');
    assert.equal(f[1]!.buffers.length, 3, 'the finishing dispatch binds the partials, the bias and y');
    assert.equal(conv2dKernel([spec([0, 8, 16, 16]), w, b], spec([0, 16, 16, 16]), a, ctx).length, 0, 'empty');
    // input grad with stride (2, 3) of a 5x2 input: 2 x 2 stride phases (W = 2 has only two column phases)
    const s23 = { ...attrs(1, 0), stride: [2, 3] as [number, number], inputSize: [5, 2] as [number, number] };
    const [gy3, w3, gx3] = [spec([1, 2, 3, 1]), spec([2, 3, 1, 1]), spec([1, 3, 5, 2])];
    const phases = conv2dBackwardInputKernel([gy3, w3], gx3, s23, ctx);
    assert.equal(phases.length, 4, 'one dispatch per stride phase');
    // a 1x1 kernel reaches only phase (0, 0); the other phases have no taps (K = 0) but must still write zeros
    assert.deepEqual(
      phases.map((d) => d.uniforms![S.K]),
      [2, 0, 0, 0],
      'taps per phase: O * (taps along h) * (taps along w)',
    );
    // stride-2 input grad whose phases have one tile each and K of 256 to 1024: split-K over all phases
    const a4 = { ...attrs(2, 1), inputSize: [4, 4] as [number, number] };
    const split = conv2dBackwardInputKernel([spec([1, 256, 2, 2]), spec([256, 8, 3, 3])], spec([1, 8, 4, 4]), a4, ctx);
    assert.equal(split.length, 5, 'four phase GEMMs and one finish');
    assert.deepEqual(
      split.slice(0, 4).map((d) => d.uniforms![S.K]),
      [256, 512, 512, 1024],
      'K of the phases with 1x1, 1x2, 2x1 and 2x2 taps (256 output channels)',
    );
    assert.deepEqual(
      [...split[4]!.uniforms!.slice(0, 2)],
      [128, 4],
      'the finish adds 4 partials of each of 128 elements',
    );
    assert.equal(ctx.scratchBytes.at(-1), 4 * 128 * 4, 'the phases share one scratch of 4 partial outputs');
  });

  test('large problems fold their workgroups into a 2-D grid within 65535 per dimension', () => {
    const ctx = fakeContext();
    // input grad of the stem at batch 2048, stride phase (0, 0): 3 rows x 2048*112*112 columns, 4x256 tiles
    const a = { ...attrs(2, 3), inputSize: [224, 224] as [number, number] };
    const [gy, w, gx] = [spec([2048, 64, 112, 112]), spec([64, 3, 7, 7]), spec([2048, 3, 224, 224])];
    const ds = conv2dBackwardInputKernel([gy, w], gx, a, ctx);
    assert.equal(ds.length, 4, 'stride 2: one dispatch per stride phase');
    const d = ds[0]!;
    const groups = d.uniforms![S.GROUPS]!;
    assert.equal(groups, Math.ceil((2048 * 112 * 112) / 256), 'one workgroup per 4x256 tile');
    const [gxw, gyw, gz] = d.workgroups;
    assert.ok(gxw <= 65535 && gyw <= 65535 && gz === 1, `grid ${d.workgroups.join('x')} within the limit`);
    assert.ok(gxw * gyw >= groups && (gyw - 1) * gxw < groups, 'the grid covers every tile, without a spare row');
  });
});

/** Checks `got` (WebGPU) against the CPU backend's result within relative 1e-5, and both against the oracle. */
async function agree(gpu: Tensor | null, cpu: Tensor | null, want: ND, terms: number, what: string): Promise<void> {
  assert.ok(gpu && cpu, `${what}: missing`);
  const [g, c] = [await gpu.toArray(), await cpu.toArray()];
  assertClose(g, c, { dtype: 'float32', rtol: 1e-5, atol: 0, shape: want.shape, what: `${what}: webgpu vs cpu` });
  assertClose(g, want, { dtype: 'float32', terms, what: `${what}: webgpu vs the float64 oracle` });
}

forEachBackend((device: DeviceName) => {
  if (device !== 'webgpu') return; // GPU-specific; the shared conv suite covers every backend
  describe('webgpu conv2d', () => {
    test('agrees with the cpu backend within relative 1e-5 on positive data (split-K and bias included)', async (t) => {
      const rng = testRng('webgpu conv vs cpu', t);
      const cases: { x: number[]; w: number[]; p: Conv2dAttrs; bias: boolean }[] = [
        // moderate: forward 32 x 800 x 144, input grad 16 x 800 x 288, weight grad 32 x 144 x 800 (split-K)
        { x: [2, 16, 20, 20], w: [32, 16, 3, 3], p: attrs(1, 1), bias: true },
        // stride 2 (strided input-grad gather), groups, dilation
        {
          x: [2, 6, 11, 9],
          w: [9, 2, 3, 2],
          p: { stride: [2, 2], padding: [1, 2], dilation: [2, 1], groups: 3 },
          bias: true,
        },
        // input-grad stride phases without taps (1x1, stride 2), and with stride and dilation sharing a factor
        { x: [2, 4, 7, 6], w: [6, 4, 1, 1], p: attrs(2, 0), bias: false },
        {
          x: [1, 4, 10, 9],
          w: [4, 2, 3, 3],
          p: { stride: [2, 3], padding: [2, 1], dilation: [2, 2], groups: 2 },
          bias: false,
        },
        // the short tiles: depthwise (1-row GEMMs: 1x256), and 4 output / 3 input channels over 51200
        // positions (enough 4x256 tiles for the forward and the input grad)
        { x: [2, 8, 12, 12], w: [8, 1, 3, 3], p: attrs(1, 1, 8), bias: true },
        { x: [2, 3, 160, 160], w: [4, 3, 3, 3], p: attrs(1, 1), bias: false },
        // input grad: 4 stride phases with K = 256..1024 and one tile each, split 4 ways into one scratch
        { x: [1, 8, 4, 4], w: [256, 8, 3, 3], p: attrs(2, 1), bias: false },
        // 2x2 outputs, K = 576: the forward splits K and adds the bias in the second dispatch
        { x: [1, 64, 2, 2], w: [8, 64, 3, 3], p: attrs(1, 1), bias: true },
      ];
      for (const c of cases) {
        const what = `x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}`;
        const x = randomND(rng, c.x, { low: 0.5, high: 1.5 });
        const w = randomND(rng, c.w, { low: 0.5, high: 1.5 });
        const b = c.bias ? randomND(rng, [c.w[0]!], { low: 0.5, high: 1.5 }) : null;
        const y = OC.conv2d(x, w, b, c.p);
        const gy = randomND(rng, y.shape, { low: 0.5, high: 1.5 });
        const run = (dev: DeviceName) => {
          const X = fromND(x, 'float32', dev).requiresGrad_();
          const W = fromND(w, 'float32', dev).requiresGrad_();
          const Y = conv2d(X, W, b ? fromND(b, 'float32', dev) : null, c.p);
          Y.backward(fromND(gy, 'float32', dev));
          return { X, W, Y };
        };
        const [g, cp] = [run('webgpu'), run('cpu')];
        const [, cg, kh, kw] = c.w as [number, number, number, number];
        const [n, o, oh, ow] = y.shape as [number, number, number, number];
        await agree(g.Y, cp.Y, y, cg * kh * kw + 1, `forward ${what}`);
        const gx = OC.conv2dGradInput(gy, w, c.x, c.p);
        await agree(g.X.grad, cp.X.grad, gx, (o / c.p.groups) * kh * kw, `input grad ${what}`);
        const gw = OC.conv2dGradWeight(x, gy, c.w, c.p);
        await agree(g.W.grad, cp.W.grad, gw, n * oh * ow, `weight grad ${what}`);
      }
    });

    test('steady-state forward + backward creates no buffer and compiles nothing after the first step', async () => {
      const rng = testRng('webgpu conv steady state');
      const backend = getBackend('webgpu');
      const p = attrs(1, 1);
      const X = fromND(randomND(rng, [2, 8, 16, 16]), 'float32', 'webgpu').requiresGrad_();
      const W = fromND(randomND(rng, [16, 8, 3, 3]), 'float32', 'webgpu').requiresGrad_();
      const B = fromND(randomND(rng, [16]), 'float32', 'webgpu').requiresGrad_();
      const GY = fromND(randomND(rng, [2, 16, 16, 16]), 'float32', 'webgpu');
      const step = async () => {
        for (const t of [X, W, B]) {
          t.grad?.dispose();
          t.grad = null;
        }
        const Y = conv2d(X, W, B, p);
        Y.backward(GY);
        Y.dispose();
        await backend.sync();
      };
      await step(); // compiles the pipelines, fills the pool
      await step();
      const before = backend.stats();
      await step();
      const after = backend.stats();
      assert.equal(after.compiles - before.compiles, 0, 'no pipeline compiled in steady state');
      assert.equal(after.buffersCreated - before.buffersCreated, 0, 'no GPU buffer created (scratch from the pool)');
      assert.equal(after.liveBuffers - before.liveBuffers, 0, 'the step leaves no buffer behind');
      // forward 1 + input grad 1 + weight grad 2 (K = 512 splits in two) + the bias grad's reduction(s)
      const d = after.dispatches - before.dispatches;
      assert.ok(d >= 4 && d <= 8, `a handful of dispatches per step, got ${d}`);
      // the conv kernels' own dispatches: forward, input grad, weight grad (its K = 512 splits in two)
      backend.setProfiling(true);
      await step();
      const profile = await backend.takeProfile();
      backend.setProfiling(false);
      const count = (prefix: string) =>
        profile.kernels.filter((k) => k.name.includes(prefix)).reduce((s, k) => s + k.count, 0);
      assert.equal(count('conv2d.gemm'), 3, 'one GEMM dispatch per conv op');
      assert.equal(count('conv2d.splitk'), 1, 'one split-K finish (the weight grad)');
      const g = await W.grad!.toArray();
      assert.ok(
        g.every((v) => Number.isFinite(v)),
        'the weight gradient is finite',
      );
    });
  });
});
