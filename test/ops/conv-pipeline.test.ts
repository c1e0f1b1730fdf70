// The CPU conv2d WASM path's work splits and staging (src/backend/cpu/convwasm.ts, wasm/conv.ts) against the
// float64 oracle (test/oracle/conv.ts): the input gradient in two phases of output-row bands (few images
// and groups: odd and even band counts, ragged bands, dilation, groups, one-row kernels), the gathers from
// a zero-padded copy of the input (strides 1, 2 and 3), the pipelined
// chunks of images (the calling thread stages the next chunk and copies out finished tiles while the
// workers compute), and results that do not depend on the thread count or the chunking. The paths taken
// are proven by the kernel counters.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { conv2d, type Tensor } from '../../src/index.js';
import { cpuKernelCounters, cpuKernelInfo, cpuThreadsReady, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { TEST_DEVICES } from '../helpers/backends.js';
import { assertClose } from '../helpers/assert.js';
import { randomND, testRng, type Rng } from '../helpers/random.js';
import * as OC from '../oracle/conv.js';
import type { ND } from '../oracle/ndarray.js';
import { assertIdentical, fromND } from './util.js';

const defaults = setCpuKernelOptions({});
const cpuRun = TEST_DEVICES.includes('cpu') ? {} : { skip: 'the cpu is not tested in this run' };

const P = (s: number | [number, number], p: number | [number, number], d: number | [number, number], g = 1) => {
  const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);
  return { stride: pair(s), padding: pair(p), dilation: pair(d), groups: g };
};

interface Case {
  x: [number, number, number, number];
  k: [number, number];
  o: number;
  p: OC.ConvParams;
}

/** Forward, input and weight gradients of one case on the CPU, as arrays, and the counter deltas. */
async function runCase(
  c: Case,
  x: ND,
  w: ND,
  gy: ND,
): Promise<{ out: Float32Array[]; counters: ReturnType<typeof cpuKernelCounters> }> {
  const before = cpuKernelCounters();
  const X = fromND(x, 'float32', 'cpu').requiresGrad_();
  const W = fromND(w, 'float32', 'cpu').requiresGrad_();
  const Y = conv2d(X, W, null, c.p);
  const GY = fromND(gy, 'float32', 'cpu');
  Y.backward(GY);
  const out = (await Promise.all([Y, X.grad!, W.grad!].map((t: Tensor) => t.toArray()))) as Float32Array[];
  const after = cpuKernelCounters();
  for (const t of [X, W, Y, GY]) t.dispose();
  const counters = { ...after };
  for (const key of Object.keys(after) as (keyof typeof after)[]) counters[key] = after[key] - before[key];
  return { out, counters };
}

/** Random operands of a case and its oracle results. */
function operands(rng: Rng, c: Case) {
  const wShape = [c.o, c.x[1] / c.p.groups, ...c.k];
  const x = randomND(rng, c.x);
  const w = randomND(rng, wShape);
  const y = OC.conv2d(x, w, null, c.p);
  const gy = randomND(rng, y.shape);
  const want = [y, OC.conv2dGradInput(gy, w, c.x, c.p), OC.conv2dGradWeight(x, gy, wShape, c.p)];
  return { x, w, gy, want, wShape };
}

function checkOracle(c: Case, got: Float32Array[], want: ReturnType<typeof operands>, what: string): void {
  const [, , oh, ow] = want.want[0]!.shape as [number, number, number, number];
  const taps = want.wShape[1]! * c.k[0] * c.k[1];
  const terms = [taps, (c.o / c.p.groups) * c.k[0] * c.k[1], c.x[0] * oh * ow];
  ['forward', 'input gradient', 'weight gradient'].forEach((name, i) =>
    assertClose(got[i]!, want.want[i]!, { dtype: 'float32', terms: terms[i]!, what: `${name} of ${what}` }),
  );
}

const describeCase = (c: Case) => `x ${JSON.stringify(c.x)} k ${JSON.stringify(c.k)} o ${c.o} ${JSON.stringify(c.p)}`;

/** Cases whose input gradient runs in row bands: one or two images, one or two groups. */
const BANDED: Case[] = [
  // a small stem: 31 output rows, bands of >= 3 rows (10 bands; 29 columns: ragged tiles)
  { x: [1, 3, 61, 57], k: [7, 7], o: 24, p: P(2, 3, 1) },
  // dilated rows (bands of >= 4 rows: 7, an odd count), stride 2 columns, two images
  { x: [2, 5, 30, 23], k: [3, 5], o: 48, p: P([1, 2], [1, 2], [2, 1]) },
  // two groups (8 bands, an even count), 9 channels per group in blocks
  { x: [1, 18, 19, 20], k: [3, 3], o: 96, p: P(1, 1, 1, 2) },
  // a one-row kernel: bands of one row, 16 of them (ragged)
  { x: [1, 12, 20, 21], k: [1, 3], o: 160, p: P(1, [0, 1], 1) },
  // stride 3 columns over a padded input (the padded gathers' scalar loads), 6 bands
  { x: [1, 6, 25, 29], k: [4, 5], o: 160, p: P([2, 3], [2, 1], 1) },
  // stride 3 over a 2x2 kernel: every third input row (and the last two) no tap reads, zeroed; 13 bands
  { x: [1, 16, 40, 41], k: [2, 2], o: 200, p: P(3, 0, 1) },
];

describe('conv2d [cpu] WASM work splits and staging', cpuRun, () => {
  test('the input gradient in bands of output rows matches the oracle, for any thread count', async (t) => {
    const rng = testRng('conv2d bands', t);
    const wasm = cpuKernelInfo().wasm !== null;
    const threads = await cpuThreadsReady();
    for (const c of BANDED) {
      const ops = operands(rng, c);
      const runs: Float32Array[][] = [];
      for (const opts of [{ threads: true }, { threads: false }]) {
        setCpuKernelOptions(opts);
        try {
          const { out, counters } = await runCase(c, ops.x, ops.w, ops.gy);
          const what = `${describeCase(c)} ${JSON.stringify(opts)}`;
          checkOracle(c, out, ops, what);
          if (wasm) {
            assert.equal(counters.convWasm, 3, `${what}: three WASM conv kernels ran`);
            assert.equal(counters.convBanded, 1, `${what}: the input gradient ran in row bands`);
            const pad = c.p.padding[0] > 0 || c.p.padding[1] > 0 ? 2 : 0;
            assert.equal(counters.convPadded, pad, `${what}: forward and weight gradient gathered the padded input`);
          }
          if (wasm && opts.threads && threads && cpuKernelInfo().threads > 1) {
            assert.ok(counters.convThreaded >= 1, `${what}: threaded`);
          }
          runs.push(out);
        } finally {
          setCpuKernelOptions(defaults);
        }
      }
      ['forward', 'input gradient', 'weight gradient'].forEach((name, i) =>
        assertIdentical(runs[0]![i]!, runs[1]![i]!, `${name} of ${describeCase(c)}: threads on and off`),
      );
    }
  });

  test('many images need no bands', async (t) => {
    const rng = testRng('conv2d no bands', t);
    const c: Case = { x: [16, 3, 21, 20], k: [5, 5], o: 8, p: P(1, 2, 1) };
    const ops = operands(rng, c);
    const { out, counters } = await runCase(c, ops.x, ops.w, ops.gy);
    checkOracle(c, out, ops, describeCase(c));
    if (cpuKernelInfo().wasm) assert.equal(counters.convBanded, 0, 'one band per image');
  });

  test('pipelined chunks of images match the oracle and the unchunked run', async (t) => {
    // a chunk budget of about one image: five chunks, staged and copied by the calling thread in turn
    const rng = testRng('conv2d chunks', t);
    const wasm = cpuKernelInfo().wasm !== null;
    const threads = await cpuThreadsReady();
    const c: Case = { x: [5, 3, 45, 43], k: [7, 7], o: 24, p: P(2, 3, 1) };
    const ops = operands(rng, c);
    const runs: Float32Array[][] = [];
    for (const opts of [{ threads: true, chunkFloats: 1 << 14 }, { threads: false, chunkFloats: 1 << 14 }, {}]) {
      setCpuKernelOptions(opts);
      try {
        const { out, counters } = await runCase(c, ops.x, ops.w, ops.gy);
        const what = `${describeCase(c)} ${JSON.stringify(opts)}`;
        checkOracle(c, out, ops, what);
        if (wasm) assert.equal(counters.convWasm, 3, `${what}: three WASM conv kernels ran`);
        if (wasm) assert.equal(counters.convPadded, 2, `${what}: two kernels gathered the padded input`);
        if (wasm && opts.threads && threads && cpuKernelInfo().threads > 1) {
          assert.ok(counters.convThreaded >= 1, `${what}: threaded`);
          // whether the calling thread got a unit of its own (and so staged the next chunk meanwhile) depends
          // on scheduling: on a loaded machine the worker may claim every unit first, so it is not asserted
        }
        runs.push(out);
      } finally {
        setCpuKernelOptions(defaults);
      }
    }
    // each image's output and input gradient are computed alike however the images are chunked; the weight
    // gradient sums per chunk, but alike for any thread count
    for (const [a, b] of [
      [0, 1],
      [0, 2],
    ] as const) {
      assertIdentical(runs[a]![0]!, runs[b]![0]!, `forward, runs ${a} and ${b}`);
      assertIdentical(runs[a]![1]!, runs[b]![1]!, `input gradient, runs ${a} and ${b}`);
    }
    assertIdentical(runs[0]![2]!, runs[1]![2]!, 'weight gradient, threads on and off');
  });

  test('a stem at batch 1 and 3: the same bits for any thread count', async (t) => {
    const rng = testRng('conv2d stem threads', t);
    await cpuThreadsReady();
    for (const n of [1, 3]) {
      const c: Case = { x: [n, 3, 224, 224], k: [7, 7], o: 64, p: P(2, 3, 1) };
      const x = randomND(rng, c.x);
      const w = randomND(rng, [64, 3, 7, 7], { low: -0.1, high: 0.1 });
      const gy = randomND(rng, [n, 64, 112, 112]);
      const runs: Float32Array[][] = [];
      for (const threads of [true, false]) {
        setCpuKernelOptions({ threads });
        try {
          runs.push((await runCase(c, x, w, gy)).out);
        } finally {
          setCpuKernelOptions(defaults);
        }
      }
      ['forward', 'input gradient', 'weight gradient'].forEach((name, i) =>
        assertIdentical(runs[0]![i]!, runs[1]![i]!, `stem b${n} ${name}: threads on and off`),
      );
    }
  });
});
