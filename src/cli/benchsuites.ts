// The benchmark suites of `loom bench`: what each one runs and how it is timed (warmup runs, then
// timed runs; median/min/max). They return result records and report progress through a callback;
// bench.ts prints and writes them. Never run as timed tests.
import { getBackend, matmul, randn, softmax, type Backend, type DeviceLike, type Tensor } from '../index.js';
import { convCases, convFlops, makeConvRunner } from './benchconv.js';
import { counterDelta } from './benchcounters.js';
import { generateSuite } from './benchgen.js';
import { TRAIN_STEP_CONFIGS, makeTrainStep, type PhaseTimes } from './benchtrain.js';

/** Activity counters of the runs of one result, per run. */
export interface BenchCounters {
  buffersCreated: number;
  submits: number;
  dispatches: number;
  compiles: number;
  bytesUp: number;
  bytesDown: number;
}

/** One benchmark result, in the stable JSON schema of the issue. */
export interface BenchResult {
  suite: string;
  name: string;
  shape: number[];
  dtype: string;
  median_ms: number;
  min_ms: number;
  max_ms: number;
  gflops?: number;
  gbps?: number;
  tokens_per_s?: number;
  /** train-step: median ms of each phase in separate passes with a device sync after each phase. */
  forward_ms?: number;
  backward_ms?: number;
  optimizer_ms?: number;
  counters?: BenchCounters;
}

/** How a suite runs. */
export interface SuiteOptions {
  device: DeviceLike;
  /** Small sizes only (a smoke test of the benchmark itself). */
  quick: boolean;
  /** Timed runs per case (default: per suite). */
  reps?: number;
  /** Untimed runs first (default: per suite). */
  warmup?: number;
  /** Called with each result as soon as it is measured. */
  progress?: (r: BenchResult) => void;
}

/** A suite: a name and a function producing its results. */
export type Suite = (o: SuiteOptions) => Promise<BenchResult[]>;

interface Timing {
  median: number;
  min: number;
  max: number;
  counters: BenchCounters;
}

/**
 * Times `run` (which must leave the device idle when its promise resolves): `warmup` untimed runs, then
 * `reps` samples. A sample of a fast case repeats it `inner` times (calibrated to ~2 ms a sample) and
 * reports the time per run, so microsecond ops are not measured at the timer's resolution.
 */
async function time(backend: Backend, run: () => Promise<void>, warmup: number, reps: number): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await run();
  let t0 = performance.now();
  await run();
  const once = performance.now() - t0;
  const inner = once >= 2 ? 1 : Math.min(10000, Math.ceil(2 / Math.max(once, 1e-3)));
  const samples: number[] = [];
  const before = backend.stats();
  for (let r = 0; r < reps; r++) {
    t0 = performance.now();
    for (let i = 0; i < inner; i++) await run();
    samples.push((performance.now() - t0) / inner);
  }
  const counters = counterDelta(before, backend.stats(), reps * inner);
  samples.sort((x, y) => x - y);
  const mid = samples.length >> 1;
  const median = samples.length % 2 ? samples[mid]! : (samples[mid - 1]! + samples[mid]!) / 2;
  return { median, min: samples[0]!, max: samples[samples.length - 1]!, counters };
}

/** Runs `make` (building one result tensor), waits for the device, frees the result. */
function opRunner(backend: Backend, make: () => Tensor): () => Promise<void> {
  return async () => {
    const y = make();
    await backend.sync();
    y.dispose();
  };
}

const round = (x: number, digits = 4): number => Number(x.toPrecision(digits));

function record(suite: string, name: string, shape: number[], t: Timing, extra: Partial<BenchResult>): BenchResult {
  return {
    suite,
    name,
    shape,
    dtype: 'float32',
    median_ms: round(t.median, 5),
    min_ms: round(t.min, 5),
    max_ms: round(t.max, 5),
    ...extra,
    counters: t.counters,
  };
}

/** float32 matmul GFLOP/s: square sizes and GPT-2 small's shapes for 512 tokens (name MxNxK). */
const matmulSuite: Suite = async (o) => {
  const backend = getBackend(o.device);
  const shapes: [number, number, number][] = o.quick
    ? [
        [64, 64, 64],
        [96, 80, 72],
      ]
    : [
        [256, 256, 256],
        [512, 512, 512],
        [1024, 1024, 1024],
        [2048, 2048, 2048],
        [512, 2304, 768], // attention qkv projection
        [512, 768, 768], // attention output projection
        [512, 3072, 768], // MLP up
        [512, 768, 3072], // MLP down
        [512, 50257, 768], // LM head (tied embedding)
      ];
  const out: BenchResult[] = [];
  for (const [m, n, k] of shapes) {
    const a = randn([m, k], { device: o.device });
    const b = randn([k, n], { device: o.device });
    const flops = 2 * m * n * k;
    const big = flops > 2e10;
    const t = await time(
      backend,
      opRunner(backend, () => matmul(a, b)),
      o.warmup ?? (big ? 1 : 2),
      o.reps ?? (big ? 3 : 10),
    );
    const r = record('matmul', `${m}x${n}x${k}`, [m, n, k], t, { gflops: round(flops / t.median / 1e6) });
    o.progress?.(r);
    out.push(r);
    a.dispose();
    b.dispose();
  }
  return out;
};

/** Sizes of the elementwise and reduction suites. */
function sizes(quick: boolean): number[] {
  return quick ? [256, 4096] : [256, 4096, 65536, 1 << 20, 1 << 24];
}

/** add / mul / gelu latency and GB/s (bytes: inputs read + output written). */
const elementwiseSuite: Suite = async (o) => {
  const backend = getBackend(o.device);
  const out: BenchResult[] = [];
  for (const n of sizes(o.quick)) {
    const a = randn([n], { device: o.device });
    const b = randn([n], { device: o.device });
    const ops: [string, () => Tensor, number][] = [
      ['add', () => a.add(b), 3],
      ['mul', () => a.mul(b), 3],
      ['gelu', () => a.gelu(), 2],
    ];
    for (const [name, make, words] of ops) {
      const t = await time(backend, opRunner(backend, make), o.warmup ?? 3, o.reps ?? (n >= 1 << 24 ? 5 : 15));
      const r = record('elementwise', name, [n], t, { gbps: round((words * 4 * n) / t.median / 1e6) });
      o.progress?.(r);
      out.push(r);
    }
    a.dispose();
    b.dispose();
  }
  return out;
};

/** sum over a whole tensor and softmax over rows, GB/s (sum reads n words; softmax reads and writes n). */
const reduceSuite: Suite = async (o) => {
  const backend = getBackend(o.device);
  const out: BenchResult[] = [];
  for (const n of sizes(o.quick).filter((x) => x >= 4096)) {
    const a = randn([n], { device: o.device });
    const t = await time(
      backend,
      opRunner(backend, () => a.sum()),
      o.warmup ?? 3,
      o.reps ?? 15,
    );
    const r = record('reduce', 'sum', [n], t, { gbps: round((4 * n) / t.median / 1e6) });
    o.progress?.(r);
    out.push(r);
    a.dispose();
  }
  const rows: [number, number][] = o.quick
    ? [[64, 100]]
    : [
        [1024, 1024],
        [8 * 4 * 128, 128], // attention scores of the small train-step config
        [512, 50257], // GPT-2 logits for 512 tokens
      ];
  for (const [r0, c0] of rows) {
    const a = randn([r0, c0], { device: o.device });
    const t = await time(
      backend,
      opRunner(backend, () => softmax(a, -1)),
      o.warmup ?? 2,
      o.reps ?? 10,
    );
    const r = record('reduce', 'softmax', [r0, c0], t, { gbps: round((8 * r0 * c0) / t.median / 1e6) });
    o.progress?.(r);
    out.push(r);
    a.dispose();
  }
  return out;
};

/** forward + backward + AdamW of a GPT: ms/step and tokens/s (shape: [batch, seq, layers, width]). */
const trainStepSuite: Suite = async (o) => {
  const backend = getBackend(o.device);
  const out: BenchResult[] = [];
  for (const name of o.quick ? ['tiny'] : ['small', 'gpt2-124m']) {
    const ts = makeTrainStep(TRAIN_STEP_CONFIGS[name]!, o.device);
    const run = async (): Promise<void> => {
      const loss = await ts.step();
      if (!Number.isFinite(loss)) throw new Error(`train-step ${name}: loss is ${loss}`);
    };
    const t = await time(backend, run, o.warmup ?? 1, o.reps ?? 3);
    // the split comes from separate synced passes: the syncs would slow the unsynced figure above
    const split: PhaseTimes[] = [];
    for (let i = 0; i < (o.reps ?? 3); i++) split.push(await ts.phases());
    const med = (k: keyof PhaseTimes): number => {
      const v = split.map((p) => p[k]).sort((a, b) => a - b);
      const mid = v.length >> 1;
      return round(v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2, 5);
    };
    const { batch, seq, model } = ts.config;
    const r = record('train-step', name, [batch, seq, model.nLayer, model.nEmbd], t, {
      tokens_per_s: round((ts.tokens / t.median) * 1000),
      forward_ms: med('forward'),
      backward_ms: med('backward'),
      optimizer_ms: med('optimizer'),
    });
    o.progress?.(r);
    out.push(r);
    ts.dispose();
  }
  return out;
};

/** Every suite by name. */
/**
 * conv2d GFLOP/s: the ResNet-50 stem convolution at batch 1 and 8, forward and forward + backward (input
 * and weight gradients; FLOPs 3x the forward's). Shape: [N, C, H, W, Cout, KH, KW].
 */
const conv2dSuite: Suite = async (o) => {
  const backend = getBackend(o.device);
  const out: BenchResult[] = [];
  for (const c of convCases(o.quick)) {
    for (const backward of [false, true]) {
      const runner = makeConvRunner(c, o.device, backward);
      const t = await time(backend, () => runner.run(), o.warmup ?? 2, o.reps ?? (c.input[0] > 1 ? 5 : 10));
      const flops = convFlops(c) * (backward ? 3 : 1);
      const [, , kh, kw] = c.weight;
      const r = record('conv2d', `${c.name} ${backward ? 'fwd+bwd' : 'fwd'}`, [...c.input, c.weight[0], kh, kw], t, {
        gflops: round(flops / t.median / 1e6),
      });
      o.progress?.(r);
      out.push(r);
      runner.dispose();
    }
  }
  return out;
};

export const SUITES: Readonly<Record<string, Suite>> = {
  matmul: matmulSuite,
  elementwise: elementwiseSuite,
  reduce: reduceSuite,
  'train-step': trainStepSuite,
  generate: generateSuite,
  conv2d: conv2dSuite,
};
