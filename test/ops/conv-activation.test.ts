// conv2d with its fused ReLU epilogue (F.conv2d(..., { activation: 'relu' })) on every backend: the
// forward against relu of the float64 oracle (test/oracle/conv.ts) and the gradients against the
// oracle's conv gradients of the masked upstream gradient, over the CPU's three paths (direct loops,
// the 1x1 GEMM, the WASM implicit GEMM, also staged a chunk at a time) and a WebGPU split-K shape; a
// finite-difference gradcheck; the dispatch saved against conv2d then relu; Conv2d's option.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuKernelCounters, cpuKernelInfo, cpuThreadsReady, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { contiguousStrides } from '../../src/core/shape.js';
import type { TensorSpec } from '../../src/backend/backend.js';
import type { KernelContext } from '../../src/backend/webgpu/kernel.js';
import { conv2d as conv2dKernel } from '../../src/backend/webgpu/kernels/conv.js';
import {
  Conv2d,
  F,
  Generator,
  OpError,
  getBackend,
  tensor,
  tidy,
  type DeviceName,
  type Tensor,
} from '../../src/index.js';
import * as O from '../oracle/ops.js';
import * as OC from '../oracle/conv.js';
import { assertClose } from '../helpers/assert.js';
import { TEST_DEVICES, forEachBackend } from '../helpers/backends.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, testRng, type Rng } from '../helpers/random.js';

const put = (a: O.ND, device: DeviceName, requiresGrad = false): Tensor =>
  tensor(a.data, { shape: a.shape, device, requiresGrad });

interface Case {
  x: number[];
  w: number[];
  p: OC.ConvParams;
  bias: boolean;
}
const P = (stride: number, padding: number, groups = 1): OC.ConvParams => ({
  stride: [stride, stride],
  padding: [padding, padding],
  dilation: [1, 1],
  groups,
});

const CASES: Case[] = [
  { x: [2, 3, 5, 4], w: [4, 3, 3, 3], p: P(1, 1), bias: true }, // small: direct loops on the CPU
  { x: [1, 64, 2, 2], w: [8, 64, 3, 3], p: P(1, 1), bias: true }, // few outputs, long K: split-K on WebGPU
  { x: [2, 6, 7, 5], w: [6, 2, 2, 3], p: P(2, 1, 3), bias: false }, // grouped, strided
];
/** Large enough for the CPU's fast paths: the WASM implicit GEMM and (1x1) the GEMM. */
const LARGE: Case[] = [
  { x: [2, 8, 16, 15], w: [16, 8, 3, 3], p: P(1, 1), bias: true },
  { x: [2, 32, 17, 16], w: [40, 32, 1, 1], p: P(1, 0), bias: true },
];

/** Runs one case: forward and the x, w, bias gradients against the oracle. */
async function checkCase(device: DeviceName, rng: Rng, c: Case): Promise<void> {
  const x = randomND(rng, c.x, { low: -1, high: 1 });
  const w = randomND(rng, c.w, { low: -0.5, high: 0.5 });
  const b = c.bias ? randomND(rng, [c.w[0]!], { low: -0.5, high: 0.5 }) : null;
  const [X, W] = [put(x, device, true), put(w, device, true)];
  const B = b ? put(b, device, true) : null;
  const y = F.conv2d(X, W, B, { ...c.p, activation: 'relu' });
  const what = `${device} conv2d relu x [${c.x.join(', ')}] w [${c.w.join(', ')}]`;
  const want = O.mapND(OC.conv2d(x, w, b, c.p), (v) => Math.max(v, 0));
  const k = c.w[1]! * c.w[2]! * c.w[3]!;
  const got = await y.toArray();
  assertClose(got, want, { dtype: 'float32', atol: 1e-5, terms: k, what, shape: y.shape });
  const up = randomND(rng, want.shape);
  y.backward(put(up, device));
  // the masked upstream gradient (mask from the output just checked), through the oracle's conv gradients
  const g = O.mapND(up, (v, i) => (got[i]! > 0 ? v : 0));
  const tol = { dtype: 'float32' as const, atol: 1e-5, rtol: 1e-4 };
  const gx = OC.conv2dGradInput(g, w, c.x, c.p);
  assertClose(await X.grad!.toArray(), gx, { ...tol, terms: c.w[0]! * c.w[2]! * c.w[3]!, what: `${what} dx` });
  const pts = c.x[0]! * want.shape[2]! * want.shape[3]!;
  assertClose(await W.grad!.toArray(), OC.conv2dGradWeight(x, g, c.w, c.p), { ...tol, terms: pts, what: `${what} dw` });
  if (B) assertClose(await B.grad!.toArray(), OC.conv2dGradBias(g), { ...tol, terms: pts, what: `${what} db` });
  for (const t of [X, W, B, y]) t?.dispose();
}

forEachBackend((device) => {
  test('conv2d relu: forward and gradients match the oracle (direct, grouped, split-K shapes)', async (t) => {
    const rng = testRng(`conv2d relu ${device}`, t);
    for (const c of [...CASES, ...LARGE]) await checkCase(device, rng, c);
  });

  test('conv2d relu gradients match finite differences of the float64 forward', async (t) => {
    const rng = testRng(`conv2d relu gradcheck ${device}`, t);
    const p = P(2, 1, 2);
    const x = randomND(rng, [2, 4, 5, 4]);
    const w = randomND(rng, [4, 2, 3, 2], { low: -0.7, high: 0.7 });
    const b = randomND(rng, [4]);
    const up = randomND(rng, [2, 4, 3, 3]);
    const [X, W, B] = [put(x, device, true), put(w, device, true), put(b, device, true)];
    const y = F.conv2d(X, W, B, { ...p, activation: 'relu' });
    y.backward(put(up, device));
    const got = await Promise.all([X, W, B].map((u) => u.grad!.toArray()));
    const f = ([xa, wa, ba]: O.ND[]) => O.mapND(OC.conv2d(xa!, wa!, ba!, p), (v) => Math.max(v, 0));
    assertGradClose(got, f, [x, w, b], up, { rtol: 1e-3, atol: 1e-4, what: 'conv2d relu' });
    for (const u of [X, W, B, y]) u.dispose();
  });

  test('counter: the fused relu saves the separate relu dispatch (also with split-K)', async () => {
    const backend = getBackend(device);
    for (const c of [CASES[0]!, CASES[1]!, LARGE[0]!]) {
      const x = tensor(
        Array.from({ length: c.x.reduce((a, v) => a * v) }, (_, i) => Math.sin(i)),
        { shape: c.x, device },
      );
      const w = tensor(
        Array.from({ length: c.w.reduce((a, v) => a * v) }, (_, i) => Math.cos(i * 0.3)),
        {
          shape: c.w,
          device,
        },
      );
      const count = (f: () => Tensor): [number, Tensor] => {
        const d0 = backend.stats().dispatches;
        const y = f();
        return [backend.stats().dispatches - d0, y];
      };
      for (const warm of [F.conv2d(x, w, null, { ...c.p, activation: 'relu' }), F.conv2d(x, w, null, c.p)])
        warm.dispose();
      const [fused, a] = count(() => F.conv2d(x, w, null, { ...c.p, activation: 'relu' }));
      const [plain, b] = count(() => tidy(() => F.conv2d(x, w, null, c.p).relu()));
      assert.equal(fused, plain - 1, `x [${c.x.join(', ')}]: fused ${fused}, conv2d then relu ${plain}`);
      assertClose(await a.toArray(), await b.toArray(), { dtype: 'float32', atol: 0, rtol: 0, what: 'same values' });
      for (const u of [x, w, a, b]) u.dispose();
    }
  });

  test("Conv2d's activation option, and a bad activation is refused", async () => {
    const m = new Conv2d(3, 4, 3, { padding: 1, activation: 'relu', device, generator: new Generator(2) });
    const plain = new Conv2d(3, 4, 3, { padding: 1, device, generator: new Generator(2) });
    const x = tensor(
      Array.from({ length: 2 * 3 * 4 * 4 }, (_, i) => Math.sin(i * 0.9)),
      { shape: [2, 3, 4, 4], device },
    );
    const [y, z] = [m.forward(x), tidy(() => plain.forward(x).relu())];
    assertClose(await y.toArray(), await z.toArray(), { dtype: 'float32', atol: 0, rtol: 0, what: 'Conv2d relu' });
    assert.ok((await y.toArray()).some((v) => v === 0));
    assert.throws(
      () => F.conv2d(x, m.weight, null, { activation: 'gelu' as 'relu' }),
      (e: unknown) => e instanceof OpError && /conv2d/.test(e.message) && /activation/.test(e.message),
    );
    for (const u of [x, y, z]) u.dispose();
    m.dispose();
    plain.dispose();
  });
});

const cpuRun = TEST_DEVICES.includes('cpu') ? {} : { skip: 'the cpu is not tested in this run' };

describe('conv2d relu [cpu] fast paths', cpuRun, () => {
  test('the WASM implicit GEMM (threaded, single, staged in chunks) and the 1x1 GEMM clamp their output', async (t) => {
    const rng = testRng('conv2d relu cpu large', t);
    const wasm = cpuKernelInfo().wasm !== null;
    await cpuThreadsReady();
    const settings = [{ threads: true }, { threads: false }, { threads: false, chunkFloats: 1 << 14 }];
    const defaults = setCpuKernelOptions({});
    try {
      for (const opts of settings) {
        setCpuKernelOptions(opts);
        const before = cpuKernelCounters();
        await checkCase('cpu', rng, LARGE[0]!);
        if (wasm) assert.ok(cpuKernelCounters().convWasm - before.convWasm >= 1, `${JSON.stringify(opts)}: WASM ran`);
      }
    } finally {
      setCpuKernelOptions(defaults);
    }
    const before = cpuKernelCounters();
    await checkCase('cpu', rng, LARGE[1]!);
    assert.equal(cpuKernelCounters().convGemm - before.convGemm, 1, '1x1 stride-1 forward ran as a GEMM');
  });
});

describe('conv2d relu [webgpu host side]', () => {
  // the WGSL the WebGPU kernel would run, built without a device: where the clamp goes
  const limits: KernelContext['limits'] = {
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupsPerDimension: 65535,
    maxComputeWorkgroupStorageSize: 16384,
    maxStorageBufferBindingSize: 128 * 1024 * 1024,
  };
  const ctx: KernelContext = {
    limits,
    f16: false,
    scratch: (bytes) => ({ bytes }),
    checks: { buffer: { bytes: 16 }, code: () => 1 },
  };
  const spec = (shape: number[]): TensorSpec => ({
    buffer: { bytes: 4 * shape.reduce((a, b) => a * b, 1) },
    dtype: 'float32',
    shape,
    strides: contiguousStrides(shape),
    offset: 0,
  });
  const attrs = (relu: boolean) => ({
    stride: [1, 1] as [number, number],
    padding: [1, 1] as [number, number],
    dilation: [1, 1] as [number, number],
    groups: 1,
    ...(relu ? { activation: 'relu' as const } : {}),
  });

  test('one GEMM dispatch clamps in its store; with split-K only the finishing pass clamps', () => {
    const one = conv2dKernel(
      [spec([2, 8, 16, 16]), spec([16, 8, 3, 3]), spec([16])],
      spec([2, 16, 16, 16]),
      attrs(true),
      ctx,
    );
    assert.equal(one.length, 1);
    assert.match(one[0]!.program.code(), /max\(c0_0 \+ bv, 0\.0\)/);
    const plain = conv2dKernel([spec([2, 8, 16, 16]), spec([16, 8, 3, 3])], spec([2, 16, 16, 16]), attrs(false), ctx);
    assert.doesNotMatch(plain[0]!.program.code(), /max\(c0_0/);
    const split = conv2dKernel(
      [spec([1, 64, 2, 2]), spec([8, 64, 3, 3]), spec([8])],
      spec([1, 8, 2, 2]),
      attrs(true),
      ctx,
    );
    assert.equal(split.length, 2, 'split-K: GEMM partials + finishing pass');
    assert.doesNotMatch(split[0]!.program.code(), /max\(c0_0/, 'the partials are not clamped');
    assert.match(split[1]!.program.code(), /max\(s, 0\.0\)/, 'the finishing pass clamps the sum');
  });
});
