// Per-kernel profiling on every backend: kernel counts match the dispatch counter, phases are reported,
// the WebGPU report says whether GPU timestamps were available, and profiling that is off (or on without
// phase syncs) changes no dispatch, submit, buffer or compile of a training step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdamW,
  GPT,
  Generator,
  WindowSampler,
  formatProfile,
  getBackend,
  profileSteps,
  tensor,
  tidy,
  trainStep,
  type BackendStats,
  type DeviceName,
  type PhaseContext,
  type ProfiledStep,
} from '../../src/index.js';
import { KernelTally } from '../../src/backend/profiling.js';
import { addTimestamps, kernelName } from '../../src/backend/webgpu/profile.js';
import { forEachBackend } from '../helpers/backends.js';

/** A tiny GPT training step (forward, backward, clip + AdamW, one read) as a ProfiledStep. */
function tinyStep(device: DeviceName): ProfiledStep {
  const B = 2;
  const T = 8;
  const V = 23;
  const model = new GPT(
    { vocabSize: V, blockSize: T, nLayer: 1, nHead: 2, nEmbd: 16, dropout: 0, bias: true },
    { device, generator: new Generator(7) },
  );
  const tokens = Int32Array.from({ length: 300 }, (_, i) => (i * 5 + (i >> 2)) % V);
  const data = new WindowSampler(tokens, B, T, 3);
  return trainStep({
    params: model.parameters(),
    loss: () => {
      const { x, y } = data.next();
      return model.loss(tensor(x, { shape: [B, T], device }), tensor(y, { shape: [B, T], device }));
    },
    optimizer: new AdamW(model.parameters(), { lr: 1e-3 }),
    gradClip: 1,
  });
}

/** A PhaseContext that only scopes (what the profiler does when not profiling). */
const plain: PhaseContext = { phase: (_name, fn) => Promise.resolve(tidy(fn)) };

const COUNTED = ['buffersCreated', 'submits', 'dispatches', 'compiles', 'bytesUploaded', 'bytesDownloaded'] as const;

function deltas(before: BackendStats, after: BackendStats): Record<string, number> {
  return Object.fromEntries(COUNTED.map((k) => [k, after[k] - before[k]]));
}

/** True when the device's kernel times are GPU timestamps (WebGPU with timestamp-query). */
function hasTimestamps(device: DeviceName): boolean {
  const b = getBackend(device) as { adapter?: { features: readonly string[] } };
  return b.adapter?.features.includes('timestamp-query') ?? false;
}

test('kernel names shorten WGSL program keys; timestamps pairs become per-kernel GPU time', () => {
  assert.equal(kernelName('ew.add|float32|v4|tfloat32b1,tfloat32b2|float32,float32,float32'), 'ew.add|f32|v4');
  assert.equal(
    kernelName('matmul_64x64x16_4x4_float32_float32_float32_nn_nt'),
    'matmul_64x64x16_4x4_f32_f32_f32_nn_nt',
  );
  assert.equal(kernelName('tl.zero'), 'tl.zero');
  assert.equal(kernelName('gen.fill|int32|'), 'gen.fill|i32');
  const tally = new KernelTally();
  tally.add('a', 0.5);
  tally.add('b', 0.25);
  tally.add('a', 0.5);
  // a: 1000 ns + 3000 ns; b: end before begin (driver quirk) counts as 0
  const r = addTimestamps(tally, ['a', 'b', 'a'], new BigUint64Array([10n, 1010n, 50n, 40n, 2000n, 5000n]));
  assert.deepEqual(r, { timed: 2, quantized: false });
  const rows = new Map(tally.rows(true).map((r) => [r.name, r]));
  assert.deepEqual(rows.get('a'), { name: 'a', count: 2, hostMs: 1, deviceMs: 0.004 });
  assert.deepEqual(rows.get('b'), { name: 'b', count: 1, hostMs: 0.25, deviceMs: 0 });
  assert.equal(tally.rows(false)[0]!.deviceMs, null, 'no device time without timestamps');
  // Dawn's default timestamp quantization: every duration a multiple of 65.536 µs
  const q = addTimestamps(new KernelTally(), ['a', 'a'], new BigUint64Array([0n, 65536n, 65536n, 196608n]));
  assert.deepEqual(q, { timed: 2, quantized: true });
});

forEachBackend((device) => {
  test('takeProfile counts every dispatch by kernel, and clears', async () => {
    const backend = getBackend(device);
    const a = tensor(new Float32Array(64).fill(1), { shape: [8, 8], device });
    const b = tensor(new Float32Array(64).fill(2), { shape: [8, 8], device });
    await backend.sync();
    backend.setProfiling(true);
    const before = backend.stats();
    const out = tidy(() => a.add(b).add(b).add(b).matmul(a));
    await out.toArray();
    const d = deltas(before, backend.stats());
    const p = await backend.takeProfile();
    backend.setProfiling(false);
    const total = p.kernels.reduce((s, k) => s + k.count, 0);
    assert.equal(total, d.dispatches, 'per-kernel counts add up to the dispatch counter');
    const count = (re: RegExp) => p.kernels.filter((k) => re.test(k.name)).reduce((s, k) => s + k.count, 0);
    assert.equal(count(/add/), 3);
    assert.equal(count(/matmul/), 1);
    for (const k of p.kernels) {
      assert.ok(k.hostMs >= 0, `${k.name}: host time ${k.hostMs}`);
      if (p.timing === 'gpu-timestamps') assert.ok(k.deviceMs !== null && k.deviceMs >= 0);
      else assert.equal(k.deviceMs, null);
    }
    assert.equal(p.timing, device === 'cpu' ? 'host-wall' : hasTimestamps(device) ? 'gpu-timestamps' : 'host-record');
    assert.equal((await backend.takeProfile()).kernels.length, 0, 'records are cleared by takeProfile');
    out.dispose();
    a.dispose();
    b.dispose();
  });

  test('profileSteps reports phases, kernels matching the dispatch counter, and the timing source', async () => {
    const steps = 2;
    const r = await profileSteps({ device, steps, warmup: 2 }, tinyStep(device));
    assert.equal(r.steps, steps);
    assert.deepEqual(
      r.phases.map((p) => p.name),
      ['forward', 'backward', 'optimizer', 'other'],
    );
    for (const p of r.phases) assert.ok(p.totalMs >= 0 && p.meanMs >= 0, `${p.name}: ${p.totalMs} ms`);
    const kernelCount = r.kernels.reduce((s, k) => s + k.count, 0);
    assert.equal(kernelCount, r.profiledCounters.dispatches, 'kernel counts equal the dispatch counter delta');
    assert.equal(r.counters!.dispatches * steps, r.profiledCounters.dispatches, 'profiling changes no dispatch');
    for (let i = 1; i < r.kernels.length; i++) assert.ok(r.kernels[i - 1]!.ms >= r.kernels[i]!.ms, 'sorted by time');
    const text = formatProfile(r).join('\n');
    assert.match(text, /forward/);
    assert.match(text, /kernel \(top \d+ of \d+/);
    assert.match(text, /counters per step \(unprofiled\): buffers created \d+, submits \d+, dispatches \d+/);
    if (device === 'cpu') {
      assert.equal(r.timing, 'host-wall');
      assert.match(text, /GPU timestamps: not applicable/);
    } else if (hasTimestamps(device)) {
      assert.equal(r.timing, 'gpu-timestamps');
      assert.match(text, /GPU timestamps: available/);
    } else {
      // the GL-ES software adapter has no timestamp-query: the report must say that times are host-only
      assert.equal(r.timestamps, false);
      assert.equal(r.timing, 'host-record');
      assert.match(text, /GPU timestamps: UNAVAILABLE on this adapter \(no timestamp-query\): host timings only/);
      assert.match(r.timingNote, /no timestamp-query/);
    }
  });

  test('profiling off (and on, without phase syncs) changes no dispatch, submit, buffer or compile', async () => {
    const backend = getBackend(device);
    const step = tinyStep(device);
    const measure = async (profiling: boolean) => {
      if (profiling) backend.setProfiling(true);
      const before = backend.stats();
      await step(plain, 0);
      await backend.sync();
      const d = deltas(before, backend.stats());
      if (profiling) {
        await backend.takeProfile();
        backend.setProfiling(false);
      }
      return d;
    };
    for (let i = 0; i < 3; i++) await measure(false); // warm: pipelines, pool, optimizer state
    const off = await measure(false);
    const on = await measure(true);
    const offAgain = await measure(false);
    assert.deepEqual(offAgain, off, 'after a profiled step, an unprofiled one has the same counters');
    assert.deepEqual(on, off, 'profiling itself adds no dispatch, submit, buffer, compile or transfer');
  });
});
