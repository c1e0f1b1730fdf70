// The CPU backend's WASM SIMD kernels of wasm/ewfast.ts, called through the CPU kernels on hand-made specs
// (outputs pre-filled with NaN sentinels, so every element must be written): gelu and geluGrad against a
// float64 oracle, add/sub/mul/div against a broadcast row, column or scalar (exact: one f32 rounding), column,
// row and whole sums and layer norm's parameter gradients (column sums and layer norm bit-identical to the
// JS loops). Sizes on both sides of each threshold, odd lengths past the 4- and 8-float vectors and the
// staging chunks; the binaryBcastWasm, geluWasm and reduceWasm counters prove which path ran.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuKernelCounters, cpuThreadsReady, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { CpuBuffer } from '../../src/backend/cpu/buffer.js';
import { binary, copy, unary } from '../../src/backend/cpu/elementwise.js';
import { layerNormParamsBackward } from '../../src/backend/cpu/layernorm.js';
import { reduce } from '../../src/backend/cpu/reduce.js';
import { GELU_THREAD_MIN, WASM_BINARY_MIN, setGeluPoolMinWorkers } from '../../src/backend/cpu/wasmelementwise.js';
import { indexAdd } from '../../src/backend/cpu/indexing.js';
import { WASM_REDUCE_MIN } from '../../src/backend/cpu/wasmreduce.js';
import type { Operand, TensorSpec } from '../../src/backend/backend.js';
import type { CpuKernelCounters } from '../../src/backend/cpu/counters.js';
import { contiguousStrides } from '../../src/core/shape.js';
import { testRng } from '../helpers/random.js';

const defaults = setCpuKernelOptions({});
after(() => setCpuKernelOptions(defaults));

type Rng = ReturnType<typeof testRng>;

/** A float32 spec over `size` floats (default: the shape's), filled by `fill(i)`. */
function spec(shape: number[], fill: (i: number) => number, strides?: number[], size?: number, offset = 0): TensorSpec {
  const n = (size ?? shape.reduce((a, b) => a * b, 1)) + offset;
  const buffer = new CpuBuffer(Math.max(4, n * 4));
  const a = new Float32Array(buffer.data);
  for (let i = 0; i < n; i++) a[i] = fill(i);
  return { buffer, dtype: 'float32', shape, strides: strides ?? contiguousStrides(shape), offset };
}

/** A contiguous output pre-filled with NaN sentinels. */
function sentinel(shape: number[]): TensorSpec {
  return spec(shape, () => NaN);
}

function data(s: TensorSpec): Float32Array {
  return new Float32Array(
    (s.buffer as CpuBuffer).data,
    s.offset * 4,
    s.shape.reduce((a, b) => a * b, 1),
  );
}

/** Runs `fn` and returns how much counter `k` grew. */
function ran(k: keyof CpuKernelCounters, fn: () => void): number {
  const before = cpuKernelCounters()[k];
  fn();
  return cpuKernelCounters()[k] - before;
}

/** Runs `fn` on the JS loops (WASM off), returning its output's floats. */
function onJs(fn: () => TensorSpec): Float32Array {
  setCpuKernelOptions({ wasm: false });
  try {
    return data(fn()).slice();
  } finally {
    setCpuKernelOptions({ wasm: true });
  }
}

function assertBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
  }
}

const GC = Math.sqrt(2 / Math.PI);
const GA = 0.044715;
const SPECIALS = [NaN, Infinity, -Infinity, 0, -0, 20, -20, 25, -25, 9.5, -9.5, 1e30, -1e30, 1e-40, 87, -87];

describe('cpu WASM gelu and geluGrad (ewfast)', () => {
  test('match the float64 oracle within 5e-7 max(1, |x|) |g| on both sides of the threshold', (t) => {
    const rng = testRng('ew2 gelu', t);
    setCpuKernelOptions({ wasm: true, geluMin: defaults.geluMin });
    const min = defaults.geluMin;
    for (const n of [min - 1, min, min + 3, min + 7, 16384 * 2 + 5, 40001]) {
      const x = spec([n], (i) => (i < SPECIALS.length ? SPECIALS[i]! : (rng.uniform() * 2 - 1) * (i % 3 ? 6 : 22)));
      const g = spec([n], () => rng.uniform() * 4 - 2);
      const y = sentinel([n]);
      const dy = sentinel([n]);
      const calls = ran('geluWasm', () => {
        unary('gelu', [x], y);
        binary('geluGrad', [x, g], dy);
      });
      assert.equal(calls, n >= min ? 2 : 0, `n ${n}: WASM path iff n >= geluMin`);
      const xs = data(x);
      const gs = data(g);
      const ys = data(y);
      const ds = data(dy);
      for (let i = 0; i < n; i++) {
        const v = xs[i]!;
        const th = Math.tanh(GC * (v + GA * v * v * v));
        const fy = 0.5 * v * (1 + th);
        const fd = gs[i]! * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * GC * (1 + 3 * GA * v * v));
        const tol = 5e-7 * Math.max(1, Math.abs(v));
        for (const [got, want, what] of [
          [ys[i]!, fy, 'gelu'],
          [ds[i]!, fd, 'geluGrad'],
        ] as const) {
          if (!Number.isFinite(want)) assert.ok(Object.is(got, want), `${what}(${v}) n ${n} i ${i}: ${got} vs ${want}`);
          else {
            const tl = what === 'gelu' ? tol : tol * Math.max(1, Math.abs(gs[i]!));
            assert.ok(Math.abs(got - want) <= tl, `${what}(${v}) n ${n} i ${i}: ${got} vs ${want}`);
          }
        }
      }
    }
  });

  test('small sizes (geluMin 1) and in-place output', () => {
    setCpuKernelOptions({ wasm: true, geluMin: 1 });
    try {
      for (const n of [1, 3, 7, 8, 9, 17]) {
        const x = spec([n], (i) => i - 4.5);
        const y = sentinel([n]);
        assert.equal(
          ran('geluWasm', () => unary('gelu', [x], y)),
          1,
        );
        const js = onJs(() => {
          const o = sentinel([n]);
          unary('gelu', [x], o);
          return o;
        });
        data(y).forEach((v, i) =>
          assert.ok(Math.abs(v - js[i]!) <= 5e-7 * Math.max(1, Math.abs(i - 4.5)), `n ${n} i ${i}`),
        );
        unary('gelu', [x], x); // out aliases the input
        assertBits(data(x), data(y), `in place n ${n}`);
      }
    } finally {
      setCpuKernelOptions({ geluMin: defaults.geluMin });
    }
  });
});

describe('cpu WASM gelu on the worker pool', () => {
  test('bit-identical to the single-threaded path (1 vs 2 threads), geluThreaded counts it', async (t) => {
    if (!(await cpuThreadsReady())) {
      t.skip('no worker pool here');
      return;
    }
    const rng = testRng('ew2 gelu pool', t);
    setCpuKernelOptions({ wasm: true, geluMin: defaults.geluMin });
    const n = 2 * GELU_THREAD_MIN + 13; // two pooled chunks, the second partial
    const x = spec([n], (i) => (i < SPECIALS.length ? SPECIALS[i]! : rng.uniform(-8, 8)));
    const g = spec([n], () => rng.uniform(-2, 2));
    for (const grad of [false, true]) {
      const run = (): Float32Array => {
        const o = sentinel([n]);
        if (grad) binary('geluGrad', [x, g], o);
        else unary('gelu', [x], o);
        return data(o);
      };
      const prev = setGeluPoolMinWorkers(1);
      let pooled: Float32Array;
      try {
        assert.equal(
          ran('geluThreaded', () => (pooled = run())),
          1,
          'pooled',
        );
      } finally {
        setGeluPoolMinWorkers(prev);
      }
      setGeluPoolMinWorkers(1 << 20);
      let single: Float32Array;
      try {
        assert.equal(
          ran('geluThreaded', () => (single = run())),
          0,
          'single-threaded',
        );
      } finally {
        setGeluPoolMinWorkers(prev);
      }
      assertBits(pooled!, single!, grad ? 'geluGrad' : 'gelu');
    }
  });
});

describe('cpu indexAdd (embedding backward) row adds', () => {
  test('repeated indices accumulate in index order, float32 rounding per add', (t) => {
    const rng = testRng('ew2 indexAdd', t);
    for (const [v, n, d] of [
      [37, 1024, 256],
      [5, 33, 7],
      [1, 9, 1],
    ] as const) {
      const self = spec([v, d], () => rng.uniform(-1, 1));
      const ib = new CpuBuffer(n * 4);
      const iv = new Int32Array(ib.data);
      for (let i = 0; i < n; i++) iv[i] = rng.int(0, v);
      const index: TensorSpec = { buffer: ib, dtype: 'int32', shape: [n], strides: [1], offset: 0 };
      const src = spec([n, d], () => rng.uniform(-1, 1));
      const out = sentinel([v, d]);
      indexAdd([self, index, src], out, 0);
      const want = data(self).slice();
      const ss = data(src);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < d; j++) want[iv[i]! * d + j] = Math.fround(want[iv[i]! * d + j]! + ss[i * d + j]!);
      }
      assertBits(data(out), want, `indexAdd [${v}, ${d}] <- ${n}`);
    }
  });
});

const BOPS = ['add', 'sub', 'mul', 'div'] as const;

function f32op(op: (typeof BOPS)[number], a: number, b: number): number {
  return Math.fround(op === 'add' ? a + b : op === 'sub' ? a - b : op === 'mul' ? a * b : a / b);
}

describe('cpu WASM binary ops against a broadcast row, column or scalar', () => {
  /** rows x len dense x against y of shape yShape (broadcast) with strides yStrides, in both orders. */
  function check(rng: Rng, rows: number, len: number, kind: 'row' | 'column' | 'scalar' | 'number'): void {
    const shape = [rows, len];
    const x = spec(shape, (i) => (i % 97 === 5 ? SPECIALS[i % SPECIALS.length]! : rng.uniform() * 8 - 4));
    let y: Operand;
    let yAt: (r: number, j: number) => number;
    if (kind === 'number') {
      y = { scalar: 1.7, dtype: 'float32' };
      yAt = () => Math.fround(1.7);
    } else {
      const strides = kind === 'row' ? [0, 1] : kind === 'column' ? [3, 0] : [0, 0]; // column: every 3rd float
      const size = kind === 'row' ? len : kind === 'column' ? 3 * rows : 1;
      const s = spec(shape, (i) => (i === 1 ? 0 : rng.uniform() * 4 - 2), strides, size, 2);
      const ys = new Float32Array((s.buffer as CpuBuffer).data);
      y = s;
      yAt = (r, j) => ys[2 + r * strides[0]! + j * strides[1]!]!;
    }
    const xs = data(x);
    const n = rows * len;
    for (const op of BOPS) {
      for (const first of [false, true]) {
        const inputs = first ? [y, x] : [x, y];
        if (first && kind === 'number') continue; // a JS number is always the second operand here
        const out = sentinel(shape);
        const calls = ran('binaryBcastWasm', () => binary(op, inputs, out));
        const what = `${op} ${kind}${first ? ' first' : ''} [${rows}, ${len}]`;
        assert.equal(calls, n >= WASM_BINARY_MIN ? 1 : 0, `${what}: WASM path iff n >= ${WASM_BINARY_MIN}`);
        const got = data(out);
        const want = new Float32Array(n);
        for (let r = 0; r < rows; r++) {
          for (let j = 0; j < len; j++) {
            const a = xs[r * len + j]!;
            const b = yAt(r, j);
            want[r * len + j] = first ? f32op(op, b, a) : f32op(op, a, b);
          }
        }
        assertBits(got, want, what);
      }
    }
  }

  test('row, column, scalar tensor and number operands: exact, every element written', (t) => {
    const rng = testRng('ew2 bcast', t);
    setCpuKernelOptions({ wasm: true });
    for (const [rows, len] of [
      [3, 5],
      [31, 257],
      [64, 128],
      [33, 255],
      [2, 16384 + 9],
      [8200, 2],
      [1, WASM_BINARY_MIN - 1],
    ] as const) {
      for (const kind of ['row', 'column', 'scalar', 'number'] as const) check(rng, rows, len, kind);
    }
  });
});

describe('cpu WASM sums and layer norm parameter gradients', () => {
  test('column sums over leading dims: bit-identical to the JS loop, near the float64 sum', (t) => {
    const rng = testRng('ew2 colsum', t);
    setCpuKernelOptions({ wasm: true });
    for (const [rows, len, pad] of [
      [7, 9, 0],
      [1024, 257, 0],
      [1027, 1024, 0],
      [66, 129, 3], // row stride 132: a sliced view
      [WASM_REDUCE_MIN / 8 - 1, 8, 0],
      [5, 20000, 0],
    ] as const) {
      const rs = len + pad;
      const x = spec([rows, len], () => rng.uniform() * 2 - 1, [rs, 1], rows * rs);
      const out = sentinel([len]);
      const attrs = { axes: [0], keepdim: false };
      const calls = ran('reduceWasm', () => reduce('sum', [x], out, attrs));
      assert.equal(calls, rows * len >= WASM_REDUCE_MIN ? 1 : 0, `[${rows}, ${len}]: WASM path iff large`);
      const js = onJs(() => {
        const o = sentinel([len]);
        reduce('sum', [x], o, attrs);
        return o;
      });
      assertBits(data(out), js, `column sum [${rows}, ${len}] vs JS`);
      const xs = new Float32Array((x.buffer as CpuBuffer).data);
      for (let j = 0; j < len; j++) {
        let s = 0;
        for (let r = 0; r < rows; r++) s += xs[r * rs + j]!;
        assert.ok(Math.abs(data(out)[j]! - s) <= 1e-6 * Math.sqrt(rows) + 1e-7 * Math.abs(s), `col ${j}`);
      }
    }
  });

  test('row sums over the last dim and whole sums: near the float64 sum, every element written', (t) => {
    const rng = testRng('ew2 rowsum', t);
    setCpuKernelOptions({ wasm: true });
    for (const [rows, len, pad] of [
      [4096, 128, 0],
      [333, 31, 2],
      [3, 40000, 0],
      [1, 3 * 16384 + 7, 0],
      [WASM_REDUCE_MIN / 4 - 1, 4, 0],
    ] as const) {
      const rs = len + pad;
      const x = spec([rows, len], () => rng.uniform() * 2 - 1, [rs, 1], rows * rs);
      const xs = new Float32Array((x.buffer as CpuBuffer).data);
      const last = sentinel([rows, 1]);
      const calls = ran('reduceWasm', () => reduce('sum', [x], last, { axes: [1], keepdim: true }));
      assert.equal(calls, rows * len >= WASM_REDUCE_MIN ? 1 : 0, `[${rows}, ${len}]: WASM path iff large`);
      let total = 0;
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let j = 0; j < len; j++) s += xs[r * rs + j]!;
        total += s;
        assert.equal(data(last)[r], Math.fround(s), `row ${r} of [${rows}, ${len}]`);
      }
      if (pad === 0) {
        const all = sentinel([]);
        reduce('sum', [x], all, { axes: [0, 1], keepdim: false });
        assert.ok(
          Math.abs(data(all)[0]! - total) <= 1e-6 * Math.max(1, Math.abs(total)),
          `whole sum [${rows}, ${len}]`,
        );
      }
    }
  });

  test('layerNormParamsBackward: bit-identical to the JS loop, near float64', (t) => {
    const rng = testRng('ew2 lnparams', t);
    setCpuKernelOptions({ wasm: true });
    for (const [rows, d] of [
      [3, 7],
      [1024, 256],
      [37, 257],
      [WASM_REDUCE_MIN / 16 - 1, 16],
      [9, 1027],
    ] as const) {
      const x = spec([rows, d], () => rng.uniform() * 6 - 3);
      const st = spec([rows, 2], (i) => (i % 2 ? 0.5 + rng.uniform() : rng.uniform() - 0.5));
      const g = spec([rows, d], () => rng.uniform() * 2 - 1);
      const out = sentinel([2, d]);
      const calls = ran('reduceWasm', () => layerNormParamsBackward([x, st, g], out));
      assert.equal(calls, rows * d >= WASM_REDUCE_MIN ? 1 : 0, `[${rows}, ${d}]: WASM path iff large`);
      const js = onJs(() => {
        const o = sentinel([2, d]);
        layerNormParamsBackward([x, st, g], o);
        return o;
      });
      assertBits(data(out), js, `[${rows}, ${d}] vs JS`);
      const xs = data(x);
      const gs = data(g);
      const ss = data(st);
      for (let j = 0; j < d; j++) {
        let sw = 0;
        let sb = 0;
        for (let r = 0; r < rows; r++) {
          sw += gs[r * d + j]! * (xs[r * d + j]! - ss[2 * r]!) * ss[2 * r + 1]!;
          sb += gs[r * d + j]!;
        }
        assert.ok(Math.abs(data(out)[j]! - sw) <= 1e-6 * Math.max(1, Math.abs(sw)), `gw ${j}`);
        assert.ok(Math.abs(data(out)[d + j]! - sb) <= 1e-6 * Math.max(1, Math.abs(sb)), `gb ${j}`);
      }
    }
  });
});

describe('cpu transposed operands (row loops, tiled copy)', () => {
  test('add/sub/mul/div against a transposed operand in either position, and transposing copies', (t) => {
    const rng = testRng('ew2 transposed', t);
    for (const [rows, cols] of [
      [1024, 256],
      [97, 65],
      [8, 600],
      [40, 40],
    ] as const) {
      const n = rows * cols;
      const x = spec([rows, cols], () => rng.uniform(-4, 4));
      // yt[i, j] at j * rows + i: a transposed view
      const yt = spec([rows, cols], (i) => (i === 3 ? 0 : rng.uniform(-4, 4)), [1, rows], n);
      const xs = data(x);
      const ys = new Float32Array((yt.buffer as CpuBuffer).data);
      for (const op of BOPS) {
        for (const first of [false, true]) {
          const out = sentinel([rows, cols]);
          binary(op, first ? [yt, x] : [x, yt], out);
          const want = new Float32Array(n);
          for (let i = 0; i < rows; i++) {
            for (let j = 0; j < cols; j++) {
              const a = xs[i * cols + j]!;
              const b = ys[j * rows + i]!;
              want[i * cols + j] = first ? f32op(op, b, a) : f32op(op, a, b);
            }
          }
          assertBits(data(out), want, `${op}${first ? ' first' : ''} [${rows}, ${cols}]`);
        }
      }
      // copies are bit exact: a NaN payload survives
      const words = new Int32Array((yt.buffer as CpuBuffer).data);
      words[5] = 0x7fa00001;
      const out = sentinel([rows, cols]);
      copy([yt], out);
      const ow = new Int32Array((out.buffer as CpuBuffer).data);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          if (ow[i * cols + j] !== words[j * rows + i]) assert.fail(`copy [${rows}, ${cols}] at (${i}, ${j})`);
        }
      }
    }
  });
});

describe('cpu strided operands staged into the output', () => {
  test('a head view against a scalar, column, row or dense operand: exact, WASM path', (t) => {
    const rng = testRng('ew2 staged', t);
    setCpuKernelOptions({ wasm: true });
    const [b, h, tt, d] = [4, 3, 40, 24]; // x[b, h, t, e] at b*2880 + t*72 + h*24 + e: rows of 24 floats
    const shape = [b, h, tt, d];
    const n = b * h * tt * d;
    assert.ok(n >= WASM_BINARY_MIN);
    const x = spec(shape, () => rng.uniform(-4, 4), [tt * h * d, d, h * d, 1], n);
    const xb = new Float32Array((x.buffer as CpuBuffer).data);
    const xAt = (i: number): number => {
      const e = i % d;
      const q = Math.floor(i / d);
      const ti = q % tt;
      const hi = Math.floor(q / tt) % h;
      const bi = Math.floor(q / (tt * h));
      return xb[bi * tt * h * d + ti * h * d + hi * d + e]!;
    };
    const rowsN = b * h * tt;
    const others: [string, Operand, (i: number) => number][] = [];
    others.push(['number', { scalar: 0.125, dtype: 'float32' }, () => 0.125]);
    const col = spec(shape, () => rng.uniform(0.5, 2), [h * tt, tt, 1, 0], rowsN);
    others.push(['column', col, (i) => data({ ...col, shape: [rowsN] })[Math.floor(i / d)]!]);
    const row = spec(shape, () => rng.uniform(0.5, 2), [0, 0, 0, 1], d);
    others.push(['row', row, (i) => data({ ...row, shape: [d] })[i % d]!]);
    const dense = spec(shape, () => rng.uniform(0.5, 2));
    others.push(['dense', dense, (i) => data(dense)[i]!]);
    for (const [kind, y, yAt] of others) {
      for (const op of BOPS) {
        for (const first of [false, true]) {
          if (first && kind === 'number') continue;
          const out = sentinel(shape);
          const before = cpuKernelCounters();
          binary(op, first ? [y, x] : [x, y], out);
          const after = cpuKernelCounters();
          const wasm = after.binaryWasm + after.binaryBcastWasm - before.binaryWasm - before.binaryBcastWasm;
          const what = `${op} strided x ${kind}${first ? ' first' : ''}`;
          assert.equal(wasm, kind === 'dense' && op === 'div' ? 0 : 1, `${what}: WASM path`);
          const want = new Float32Array(n);
          for (let i = 0; i < n; i++) want[i] = first ? f32op(op, yAt(i), xAt(i)) : f32op(op, xAt(i), yAt(i));
          assertBits(data(out), want, what);
        }
      }
    }
  });
});
