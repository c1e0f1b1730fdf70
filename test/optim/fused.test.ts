// The fused Adam/AdamW path on every backend: parameters, gradients and moments packed into flat
// buffers, one adamw kernel per parameter group, checked element by element against the float64
// reference, through state-dict round trips and fallbacks, and by counters (dispatches, buffers).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceName, TensorSpec } from '../../src/backend/backend.js';
import { adamw as cpuAdamw } from '../../src/backend/cpu/adamw.js';
import { CpuBuffer } from '../../src/backend/cpu/buffer.js';
import { cpuKernelCounters, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import type { AdamWAttrs } from '../../src/ops/opcodes.js';
import '../../src/autograd/index.js';
import { Adam, AdamW, clipGradNorm_, type AdamOptions, type Optimizer } from '../../src/optim/index.js';
import { packGroup } from '../../src/optim/packed.js';
import { getBackend, noGrad, tensor, tidy, type Tensor } from '../../src/tensor/index.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend } from '../helpers/backends.js';
import { testRng, type Rng } from '../helpers/random.js';
import { adamRefStep, f32Normals, refParam, values, type AdamHyper, type RefParam } from './reference.js';

/** A float32 leaf parameter on `device`. */
function leaf(device: DeviceName, v: ArrayLike<number>, shape: readonly number[]): Tensor {
  return tensor(Float32Array.from(v), { shape, device, requiresGrad: true });
}

/** Backward of Σ_i sum(p_i · c_i): leaves c_i in p_i.grad (accumulated in place into existing grads). */
function backwardWith(device: DeviceName, params: readonly Tensor[], cs: readonly Float64Array[]): void {
  tidy(() => {
    let loss = params[0]!.mul(tensor(Float32Array.from(cs[0]!), { shape: params[0]!.shape, device })).sum();
    for (let i = 1; i < params.length; i++)
      loss = loss.add(params[i]!.mul(tensor(Float32Array.from(cs[i]!), { shape: params[i]!.shape, device })).sum());
    loss.backward();
  });
}

const DECAY_SHAPES = [
  [3, 4],
  [2, 1, 3],
  [5, 2],
];
const PLAIN_SHAPES = [[5], [4]];

/**
 * Two groups (decayed matrices, undecayed vectors) stepped by the fused path for `steps` steps with
 * gradients from backward, against the reference; every step must be exactly one kernel per group.
 */
async function checkFused(device: DeviceName, rng: Rng, h: AdamHyper, steps: number): Promise<void> {
  const shapes = [...DECAY_SHAPES, ...PLAIN_SHAPES];
  const init = shapes.map((s) =>
    f32Normals(
      rng,
      s.reduce((a, b) => a * b, 1),
    ),
  );
  const params = init.map((v, i) => leaf(device, v, shapes[i]!));
  const refs = init.map((v) => refParam(v));
  const nd = DECAY_SHAPES.length;
  const opts: Partial<AdamOptions> = {
    lr: h.lr,
    betas: [h.beta1, h.beta2],
    eps: h.eps,
    amsgrad: h.amsgrad,
    maximize: h.maximize,
  };
  const groups = [
    { params: params.slice(0, nd), weightDecay: h.weightDecay },
    { params: params.slice(nd), weightDecay: 0 },
  ];
  const opt: Optimizer = h.decoupled ? new AdamW(groups, opts) : new Adam(groups, opts);
  const backend = getBackend(device);
  for (let step = 1; step <= steps; step++) {
    const cs = refs.map((r) => f32Normals(rng, r.theta.length));
    backwardWith(device, params, cs);
    refs.forEach((r, i) => adamRefStep(r, cs[i]!, i < nd ? h : { ...h, weightDecay: 0 }));
    const before = backend.stats().dispatches;
    opt.step();
    // the first step also moves the gradients into their buffer and sets up the moments
    if (step > 1) assert.equal(backend.stats().dispatches - before, 2, `step ${step}: one adamw kernel per group`);
    opt.zeroGrad();
    const sd = opt.stateDict();
    const names = h.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq'] : ['expAvg', 'expAvgSq'];
    for (let i = 0; i < params.length; i++) {
      const at = `param ${i} [${shapes[i]!.join(', ')}] after step ${step}`;
      assertClose(await values(params[i]!), refs[i]!.theta, { dtype: 'float32', what: at, shape: shapes[i]! });
      assert.equal(sd.state[i]!.step, step);
      assert.deepEqual(Object.keys(sd.state[i]!.tensors).sort(), [...names].sort());
      for (const name of names) {
        const mine = await values(sd.state[i]!.tensors[name]!);
        assertClose(mine, refs[i]!.state[name]!, { dtype: 'float32', what: `${at}, ${name}`, shape: shapes[i]! });
      }
    }
  }
  opt.dispose();
  for (const p of params) p.dispose();
}

const BASE: AdamHyper = {
  lr: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.1,
  amsgrad: false,
  maximize: false,
  decoupled: true,
};

forEachBackend((device) => {
  test('fused AdamW with a decay and a no-decay group matches the float64 reference', async (t) => {
    await checkFused(device, testRng('fused adamw', t), BASE, 6);
  });

  test('fused Adam with L2 decay, AMSGrad and maximize matches the float64 reference', async (t) => {
    const h = { ...BASE, decoupled: false, amsgrad: true, maximize: true, beta2: 0.95, lr: 0.05 };
    await checkFused(device, testRng('fused adam amsgrad', t), h, 5);
  });

  test('one step is one adamw dispatch per group for 30 parameters; steady state creates no buffer', () => {
    const rng = testRng('fused counters', undefined);
    const params = Array.from({ length: 30 }, (_, i) => {
      const shape = i % 2 ? [(i % 5) + 1, 9] : [(i % 5) + 1];
      return leaf(
        device,
        f32Normals(
          rng,
          shape.reduce((a, b) => a * b, 1),
        ),
        shape,
      );
    });
    const opt = new AdamW([
      { params: params.filter((p) => p.ndim === 2) },
      { params: params.filter((p) => p.ndim === 1), weightDecay: 0 },
    ]);
    const storages = new Set(params.filter((p) => p.ndim === 2).map((p) => p.storage));
    assert.equal(storages.size, 1, 'the constructor packs a group into one buffer');
    const backend = getBackend(device);
    const cs = params.map((p) => f32Normals(rng, p.size));
    const train = (): Record<string, number> => {
      const d: Record<string, number> = {};
      const count = (k: string, f: () => void) => {
        const a = backend.stats().dispatches;
        f();
        d[k] = backend.stats().dispatches - a;
      };
      backwardWith(device, params, cs);
      count('clip', () => tidy(() => void clipGradNorm_(params, 1)));
      count('step', () => opt.step());
      count('zeroGrad', () => opt.zeroGrad());
      return d;
    };
    train();
    train();
    const before = backend.stats();
    const d = train();
    const after = backend.stats();
    assert.equal(d.step, 2, 'two groups: two adamw dispatches');
    assert.equal(d.zeroGrad, 2, 'one fill per gradient buffer');
    assert.ok(d.clip! <= 12, `clipping costs a few kernels per buffer, got ${d.clip}`);
    assert.equal(new Set(params.map((p) => p.grad!.storage)).size, 2, 'gradients are packed per group');
    assert.equal(after.liveBuffers - before.liveBuffers, 0, 'no buffer left behind');
    if (device === 'webgpu') assert.equal(after.buffersCreated - before.buffersCreated, 0, 'no buffer created');
    opt.dispose();
  });

  test('a stateDict round trip of the fused optimizer continues identically', async (t) => {
    const rng = testRng('fused state dict', t);
    const shapes = [[4, 3], [3], [2, 2]];
    const init = shapes.map((s) =>
      f32Normals(
        rng,
        s.reduce((a, b) => a * b, 1),
      ),
    );
    const make = (ps: Tensor[], lr: number) =>
      new AdamW([{ params: ps.slice(0, 2) }, { params: ps.slice(2), weightDecay: 0 }], { lr, amsgrad: true });
    const a = init.map((v, i) => leaf(device, v, shapes[i]!));
    const b = init.map((v, i) => leaf(device, v, shapes[i]!));
    const optA = make(a, 0.05);
    const optB = make(b, 0.5);
    const grads = (k: number) => shapes.map((_s, i) => f32Normals(testRng(`g${k}.${i}`, undefined), init[i]!.length));
    for (let k = 0; k < 3; k++) {
      backwardWith(device, a, grads(k));
      optA.step();
      optA.zeroGrad();
    }
    noGrad(() => b.forEach((p, i) => p.copy_(a[i]!)));
    optB.loadStateDict(optA.stateDict()); // before B's first step: B adopts the loaded state on it
    for (let k = 3; k < 6; k++) {
      for (const [ps, opt] of [
        [a, optA],
        [b, optB],
      ] as const) {
        backwardWith(device, ps, grads(k));
        const d0 = getBackend(device).stats().dispatches;
        opt.step();
        if (k > 3) assert.equal(getBackend(device).stats().dispatches - d0, 2, 'the fused path runs after loading');
        opt.zeroGrad();
      }
    }
    for (let i = 0; i < a.length; i++) assert.deepEqual(await values(b[i]!), await values(a[i]!), `param ${i}`);
    assert.equal(optB.stepCount, 6);
    optA.dispose();
    optB.dispose();
  });

  test('a step where a gradient is missing takes the per-parameter path and stays exact', async (t) => {
    const rng = testRng('fused fallback', t);
    const shapes = [[3, 2], [4]];
    const init = shapes.map((s) =>
      f32Normals(
        rng,
        s.reduce((a, b) => a * b, 1),
      ),
    );
    const params = init.map((v, i) => leaf(device, v, shapes[i]!));
    const refs: RefParam[] = init.map((v) => refParam(v));
    const opt = new AdamW(params, { lr: 0.02, weightDecay: 0.1 });
    for (let step = 1; step <= 4; step++) {
      const cs = refs.map((r) => f32Normals(rng, r.theta.length));
      const skip = step === 2; // param 1 gets no gradient: it keeps its value, state and step count
      backwardWith(device, skip ? params.slice(0, 1) : params, cs);
      if (skip) {
        params[1]!.grad?.dispose();
        params[1]!.grad = null;
      }
      refs.forEach((r, i) => {
        if (!(skip && i === 1)) adamRefStep(r, cs[i]!, { ...BASE, lr: 0.02 });
      });
      opt.step();
      opt.zeroGrad();
      for (let i = 0; i < params.length; i++)
        assertClose(await values(params[i]!), refs[i]!.theta, { dtype: 'float32', what: `param ${i} step ${step}` });
    }
    opt.dispose();
  });
});

test('packGroup splits a group into chunks of at most maxChunk elements and keeps every value', async () => {
  const sizes = [3, 4, 10, 2, 2, 1];
  const ps = sizes.map((n, i) =>
    leaf(
      'cpu',
      Array.from({ length: n }, (_, k) => i * 100 + k),
      [n],
    ),
  );
  const pg = packGroup(ps, 6)!;
  assert.deepEqual(
    pg.chunks.map((c) => c.members.map((p) => p.size)),
    [[3], [4], [10], [2, 2, 1]],
    'greedy chunks; a parameter larger than the limit has its own',
  );
  for (let i = 0; i < ps.length; i++) {
    assert.deepEqual(
      Array.from(await ps[i]!.toArray()),
      Array.from({ length: sizes[i]! }, (_, k) => i * 100 + k),
    );
    assert.ok(ps[i]!.isLeaf && ps[i]!.requiresGrad, 'still a leaf that requires grad');
  }
  assert.equal(packGroup(ps, 6)!.chunks[3]!.params.storage, ps[3]!.storage, 'packed tensors are not moved again');
});

describe('cpu: the WASM SIMD adamw kernel', () => {
  test('fused AdamW and Adam (L2, AMSGrad, maximize) on the WASM kernel match the float64 reference', async (t) => {
    const prev = setCpuKernelOptions({ adamwMin: 1 });
    try {
      const before = cpuKernelCounters().adamwWasm;
      await checkFused('cpu', testRng('fused adamw wasm', t), BASE, 6);
      const h = { ...BASE, decoupled: false, amsgrad: true, maximize: true, beta2: 0.95, lr: 0.05 };
      await checkFused('cpu', testRng('fused adam amsgrad wasm', t), h, 5);
      assert.ok(cpuKernelCounters().adamwWasm - before >= 2 * 9, 'the WASM kernel ran every step of both groups');
    } finally {
      setCpuKernelOptions(prev);
    }
  });

  /** One adamw kernel call on copies of p, g, m, v, vmax (at element offset `off`); returns p, m, v, vmax. */
  function runKernel(data: readonly Float32Array[], off: number, n: number, a: AdamWAttrs): Float32Array[] {
    const copies = data.map((d) => d.slice());
    const spec = (d: Float32Array): TensorSpec => ({
      buffer: new CpuBuffer(d.byteLength, d.buffer as ArrayBuffer),
      dtype: 'float32',
      shape: [n],
      strides: [1],
      offset: off,
    });
    const [p, g, m, v, x] = copies.map(spec);
    cpuAdamw([g!, m!, v!, x!], p!, a);
    return [copies[0]!, copies[2]!, copies[3]!, copies[4]!];
  }

  test('matches the float64 JS kernel within float32 rounding on random data and odd lengths', (t) => {
    const rng = testRng('adamw wasm vs js', t);
    for (const n of [1, 3, 5, 7, 64, 1023, (1 << 16) + 5, 3 * (1 << 16) + 2]) {
      for (const amsgrad of [false, true]) {
        const off = n % 3;
        const len = n + off + 2;
        const normals = (scale: number): Float32Array => Float32Array.from({ length: len }, () => scale * rng.normal());
        const v = normals(1e-3).map(Math.abs);
        const x = v.map((e) => e * (rng.bool() ? 2 : 0.5));
        const data = [normals(1), normals(1), normals(0.1), v, x];
        const a: AdamWAttrs = { ...BASE, amsgrad, maximize: amsgrad, decoupled: !amsgrad, step: 3 };
        const prev = setCpuKernelOptions({ wasm: false });
        const js = runKernel(data, off, n, a);
        setCpuKernelOptions({ wasm: true, adamwMin: 1 });
        const before = cpuKernelCounters().adamwWasm;
        const wasm = runKernel(data, off, n, a);
        assert.equal(cpuKernelCounters().adamwWasm - before, 1, 'the WASM kernel ran');
        setCpuKernelOptions(prev);
        const names = ['p', 'm', 'v', 'vmax'];
        for (let k = 0; k < 4; k++) {
          const what = `${names[k]} (n ${n}, amsgrad ${amsgrad})`;
          assertClose(wasm[k]!, js[k]!, { dtype: 'float32', what });
          for (const i of [...Array(off).keys(), n + off, n + off + 1]) {
            assert.equal(wasm[k]![i], data[k === 0 ? 0 : k + 1]![i], `${what}: element ${i} outside the range kept`);
          }
        }
      }
    }
  });
});
