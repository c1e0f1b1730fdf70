// How the WASM matmul shares work between threads, against the float64 oracle: products of few rows
// against many columns split by column panels (each thread packs its own B, including B stored
// transposed, whose 4 x 4 blocks are transposed in registers), and the small items of a batched product
// run as pooled jobs of whole items. Counters prove each path ran; both give the same bits as the
// single-threaded kernel and as the row split.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { matmul, type Tensor } from '../../src/index.js';
import {
  cpuKernelCounters,
  cpuKernelInfo,
  cpuThreadsReady,
  setCpuKernelOptions,
  type CpuKernelCounters,
} from '../../src/backend/cpu/index.js';
import { randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { expectTensor, fromND, stridedView } from '../ops/util.js';

const defaults = setCpuKernelOptions({});
after(() => setCpuKernelOptions(defaults));

/** Transposed view (last two dims) holding `a`. */
function transposedView(a: O.ND): Tensor {
  return fromND(O.transpose(a), 'float32', 'cpu').transpose();
}

/** The counters' increments while `fn` runs, and its result. */
function counted<T>(fn: () => T): [T, CpuKernelCounters] {
  const before = cpuKernelCounters();
  const r = fn();
  const now = cpuKernelCounters();
  const d = { ...now };
  for (const key of Object.keys(d) as (keyof CpuKernelCounters)[]) d[key] = now[key] - before[key];
  return [r, d];
}

/** The values a tensor holds, as an oracle array (so that views of any layout get an independent oracle). */
async function valuesOf(t: Tensor): Promise<O.ND> {
  return O.nd(t.shape, await t.toArray());
}

describe('cpu matmul thread splits', () => {
  test('few rows against many columns split by columns: oracle values, both B layouts, same bits', async (t) => {
    const rng = testRng('cpu matmul cols', t);
    const ready = await cpuThreadsReady();
    assert.equal(ready, cpuKernelInfo().threads > 1);
    // ragged row and column tiles, K blocks of 256 then 45 rows (not a multiple of the 4-row transposes)
    for (const [m, k, n] of [
      [61, 301, 203],
      [258, 517, 130],
      [9, 1030, 419],
    ] as [number, number, number][]) {
      const a = randomND(rng, [m, k]);
      const b = randomND(rng, [k, n]);
      const want = O.roundND(O.matmul(a, b), 'float32');
      for (const [x, y, what] of [
        [fromND(a, 'float32', 'cpu'), fromND(b, 'float32', 'cpu'), 'row-major'],
        [fromND(a, 'float32', 'cpu'), transposedView(b), 'B transposed'],
        [transposedView(a), transposedView(b), 'both transposed'],
        [stridedView(rng, a, 'float32', 'cpu'), stridedView(rng, b, 'float32', 'cpu'), 'strided'],
      ] as const) {
        setCpuKernelOptions({ wasm: true, threads: true, matmulSplit: 'auto' });
        const [got, d] = counted(() => matmul(x, y));
        const label = `${what} [${m}, ${k}] @ [${k}, ${n}]`;
        await expectTensor(got, want, 'float32', { what: label, terms: k });
        assert.equal(d.matmulWasm, 1, label);
        assert.equal(d.matmulByColumns, ready ? 1 : 0, `${label}: split by columns`);
        setCpuKernelOptions({ matmulSplit: 'rows' });
        const [rows, dr] = counted(() => matmul(x, y));
        assert.equal(dr.matmulByColumns, 0, `${label}: split by rows when asked`);
        setCpuKernelOptions({ threads: false });
        const single = matmul(x, y);
        const bits = await got.toArray();
        assert.deepEqual(bits, await rows.toArray(), `${label}: column and row splits differ`);
        assert.deepEqual(bits, await single.toArray(), `${label}: threaded and single-threaded differ`);
      }
    }
  });

  test('the column split starts below 192 row panels and from 16 column panels', async (t) => {
    const rng = testRng('cpu matmul cols threshold', t);
    const ready = await cpuThreadsReady();
    setCpuKernelOptions({ wasm: true, threads: true, matmulSplit: 'auto' });
    for (const [m, k, n, cols] of [
      [764, 40, 128, true], // 191 row panels, 16 column panels
      [768, 40, 128, false], // 192 row panels
      [64, 300, 120, false], // 15 column panels
      [64, 300, 121, true], // 16, the last one 1 column wide
    ] as [number, number, number, boolean][]) {
      const a = randomND(rng, [m, k]);
      const b = randomND(rng, [k, n]);
      const [got, d] = counted(() => matmul(fromND(a, 'float32', 'cpu'), transposedView(b)));
      const label = `[${m}, ${k}] @ [${k}, ${n}]`;
      await expectTensor(got, O.roundND(O.matmul(a, b), 'float32'), 'float32', { what: label, terms: k });
      assert.equal(d.matmulWasm, 1, label);
      assert.equal(d.matmulThreaded, ready ? 1 : 0, label);
      assert.equal(d.matmulByColumns, ready && cols ? 1 : 0, `${label}: split by columns`);
    }
  });

  test('a long K in chunks added into C splits by columns too (gemmColsAcc)', async (t) => {
    const rng = testRng('cpu matmul cols split k', t);
    const ready = await cpuThreadsReady();
    const [m, k, n] = [70, 3001, 45];
    const a = randomND(rng, [m, k]);
    const b = randomND(rng, [k, n]);
    for (const [x, y, what] of [
      [fromND(a, 'float32', 'cpu'), fromND(b, 'float32', 'cpu'), 'row-major'],
      [transposedView(a), transposedView(b), 'transposed'],
    ] as const) {
      // 300000 floats leave K chunks of 768 (see cpu-split.test.ts)
      setCpuKernelOptions({ wasm: true, threads: true, chunkFloats: 300000, matmulSplit: 'cols' });
      const [got, d] = counted(() => matmul(x, y));
      await expectTensor(got, O.roundND(O.matmul(a, b), 'float32'), 'float32', { what: `split K ${what}`, terms: k });
      assert.ok(d.matmulSplitK > 0, 'K was split');
      assert.equal(d.matmulByColumns, ready ? 1 : 0, 'split by columns');
      setCpuKernelOptions({ chunkFloats: defaults.chunkFloats, matmulSplit: 'auto', threads: false });
      const whole = matmul(x, y);
      assert.deepEqual(await got.toArray(), await whole.toArray(), `${what}: split K by columns differs`);
    }
  });

  test('small batch items run as one pooled job: oracle values and the per-item bits', async (t) => {
    const rng = testRng('cpu matmul items', t);
    const ready = await cpuThreadsReady();
    // attention's heads: q and k^T as views of one fused projection (B, T, 3C), split into (B, nh, T, hs)
    const [B, T, nh, hs] = [2, 37, 3, 29];
    const C = nh * hs;
    const qkv = fromND(randomND(rng, [B, T, 3 * C]), 'float32', 'cpu');
    const [q, kk, v] = qkv.split(C, 2).map((h) => h.view([B, T, nh, hs]).transpose(1, 2)) as [Tensor, Tensor, Tensor];
    const att = fromND(randomND(rng, [B, nh, T, T]), 'float32', 'cpu');
    // rows 4x wider than the operand (a slice): too wide to stage as one span, so item by item
    const wide = fromND(randomND(rng, [6, 17, 4 * 45]), 'float32', 'cpu').slice(2, 0, 45);
    const bs = fromND(randomND(rng, [6, 45, 21]), 'float32', 'cpu');
    const cases: [Tensor, Tensor, string, number][] = [
      [q, kk.transpose(-2, -1), 'q @ k^T', B * nh],
      [att, v, 'att @ v', B * nh],
      [wide, bs, 'wide rows', 6],
      [
        stridedView(rng, randomND(rng, [5, 24, 35]), 'float32', 'cpu'),
        stridedView(rng, randomND(rng, [5, 35, 17]), 'float32', 'cpu'),
        'strided',
        5,
      ],
    ];
    // 25000 floats hold 2 to 4 items: several pooled jobs per call
    for (const chunkFloats of [defaults.chunkFloats, 25000]) {
      for (const [x, y, what, items] of cases) {
        const label = `${what} [${x.shape}] @ [${y.shape}] chunkFloats ${chunkFloats}`;
        setCpuKernelOptions({ wasm: true, threads: true, matmulBatch: true, chunkFloats });
        const [got, d] = counted(() => matmul(x, y));
        const k = x.shape[x.shape.length - 1]!;
        const want = O.roundND(O.matmul(await valuesOf(x), await valuesOf(y)), 'float32');
        await expectTensor(got, want, 'float32', { what: label, terms: k });
        assert.equal(d.matmulWasm, items, `${label}: every item on WASM`);
        assert.equal(d.matmulBatched, ready ? 1 : 0, `${label}: one pooled batch`);
        setCpuKernelOptions({ matmulBatch: false, chunkFloats: defaults.chunkFloats });
        const [each, de] = counted(() => matmul(x, y));
        assert.equal(de.matmulBatched, 0, `${label}: item by item when switched off`);
        assert.deepEqual(await got.toArray(), await each.toArray(), `${label}: pooled items differ from one by one`);
      }
    }
  });
});
