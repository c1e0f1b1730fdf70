// Index-driven and joining ops on every backend against the float64 oracle: gather/scatterAdd along
// each dim, indexSelect/indexAdd with duplicate indices, embedding, cat (with dtype promotion), stack,
// split, chunk, triu/tril, oneHot, and the errors for out-of-range indices.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cat,
  embedding,
  gather,
  indexAdd,
  indexAddInplace,
  indexSelect,
  oneHot,
  scatterAdd,
  stack,
  tril,
  triu,
  type DType,
} from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { randomIndices, randomND, randomShape, randomSize, testRng, type Rng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { assertOpFails, assertThrowsWith, dtypesOn, expectTensor, fromND, stridedView } from './util.js';

/** A random self shape of rank 1..3 (dims 1..6). */
function selfShape(rng: Rng): number[] {
  return randomShape(rng, { minRank: 1, maxRank: 3, maxDim: 6 });
}

/** An index shape for gather/scatterAdd along `dim`: at most `bound` off `dim`, any size 1..5 along it. */
function indexShapeFor(rng: Rng, bound: readonly number[], dim: number, along: number): number[] {
  return bound.map((d, i) => (i === dim ? along : rng.int(1, d + 1)));
}

/** Values of `dtype` for the data operands. */
function data(rng: Rng, shape: readonly number[], dtype: DType): O.ND {
  return randomND(rng, shape, { dtype });
}

forEachBackend((device) => {
  const dataTypes = dtypesOn(device, ['float32', 'float16', 'int32']);

  describe('gather / scatterAdd', () => {
    for (const dtype of dataTypes) {
      test(`gather ${dtype} along each dim (negative dims too), contiguous and strided`, async (t) => {
        const rng = testRng(`gather ${dtype}`, t);
        for (let i = 0; i < 5; i++) {
          const s = selfShape(rng);
          for (let d = 0; d < s.length; d++) {
            const a = data(rng, s, dtype);
            const is = indexShapeFor(rng, s, d, rng.int(1, 6));
            const idx = randomIndices(rng, is, s[d]!);
            const strided = i % 2 === 1;
            const x = strided ? stridedView(rng, a, dtype, device) : fromND(a, dtype, device);
            const ix = strided ? stridedView(rng, idx, 'int32', device) : fromND(idx, 'int32', device);
            const dimArg = rng.bool() ? d - s.length : d;
            await expectTensor(gather(x, dimArg, ix), O.gather(a, d, idx), dtype, {
              what: `gather ${dtype} [${s}] dim ${dimArg} index [${is}]${strided ? ' strided' : ''}`,
            });
          }
        }
        // uint32 indices are accepted too
        const a = data(rng, [4, 5], dtype);
        const idx = randomIndices(rng, [3, 5], 4);
        await expectTensor(
          fromND(a, dtype, device).gather(0, fromND(idx, 'uint32', device)),
          O.gather(a, 0, idx),
          dtype,
          { what: 'gather uint32 index' },
        );
      });

      test(`scatterAdd ${dtype} along each dim accumulates duplicates`, async (t) => {
        const rng = testRng(`scatterAdd ${dtype}`, t);
        for (let i = 0; i < 5; i++) {
          const s = selfShape(rng);
          for (let d = 0; d < s.length; d++) {
            const a = data(rng, s, dtype);
            const along = rng.int(1, 8); // more entries than self has along dim: duplicates are certain
            const srcShape = s.map((v, j) => (j === d ? along + rng.int(0, 2) : v + rng.int(0, 2)));
            const is = indexShapeFor(rng, s, d, along).map((v, j) => Math.min(v, srcShape[j]!));
            const idx = randomIndices(rng, is, s[d]!);
            const src = data(rng, srcShape, dtype);
            const strided = i % 2 === 1;
            const x = strided ? stridedView(rng, a, dtype, device) : fromND(a, dtype, device);
            const sx = strided ? stridedView(rng, src, dtype, device) : fromND(src, dtype, device);
            const ix = strided ? stridedView(rng, idx, 'int32', device) : fromND(idx, 'int32', device);
            // float16 accumulates each addition in float16 (like torch's scatter_add_ on half)
            const tol = dtype === 'float16' ? { atol: 4e-3, terms: along + 1 } : { terms: along + 1 };
            await expectTensor(scatterAdd(x, d, ix, sx), O.roundND(O.scatterAdd(a, d, idx, src), dtype), dtype, {
              what: `scatterAdd ${dtype} self [${s}] dim ${d} index [${is}] src [${srcShape}]${strided ? ' strided' : ''}`,
              ...tol,
            });
          }
        }
      });
    }

    test('scatterAdd of ones counts index occurrences exactly (int32)', async (t) => {
      const rng = testRng('scatterAdd counts', t);
      const idx = randomIndices(rng, [40, 3], 5);
      const got = fromND(O.nd([5, 3]), 'int32', device).scatterAdd(
        0,
        fromND(idx, 'int32', device),
        fromND(O.nd([40, 3], 1), 'int32', device),
      );
      const want = O.fromFn(
        [5, 3],
        (c) => Array.from({ length: 40 }, (_, r) => O.at(idx, [r, c[1]!])).filter((v) => v === c[0]).length,
      );
      await expectTensor(got, want, 'int32', { what: 'scatterAdd counts' });
      await expectTensor(got.sum(0), O.nd([3], 40), 'int32', { what: 'counts add up' });
    });

    test('shape and dtype errors name the op', () => {
      const x = fromND(O.nd([3, 4]), 'float32', device);
      assertThrowsWith(() => gather(x, 0, fromND(O.nd([2]), 'int32', device)), ['gather']);
      assertThrowsWith(() => gather(x, 0, fromND(O.nd([2, 5]), 'int32', device)), ['gather', '[2, 5]']);
      assertThrowsWith(() => gather(x, 0, fromND(O.nd([2, 4]), 'float32', device)), ['gather', 'float32']);
      assertThrowsWith(
        () => scatterAdd(x, 0, fromND(O.nd([2, 4]), 'int32', device), fromND(O.nd([2, 4]), 'int32', device)),
        ['scatterAdd', 'dtype'],
      );
    });
  });

  describe('indexSelect / indexAdd / embedding', () => {
    for (const dtype of dataTypes) {
      test(`indexSelect and indexAdd ${dtype} along each dim with duplicate indices`, async (t) => {
        const rng = testRng(`indexSelect ${dtype}`, t);
        for (let i = 0; i < 4; i++) {
          const s = selfShape(rng);
          for (let d = 0; d < s.length; d++) {
            const a = data(rng, s, dtype);
            const n = rng.int(0, 9);
            const idx = randomIndices(rng, [n], s[d]!);
            if (n >= 2) idx.data[n - 1] = idx.data[0]!; // a certain duplicate
            const strided = i % 2 === 1;
            const x = strided ? stridedView(rng, a, dtype, device) : fromND(a, dtype, device);
            const ix = strided ? stridedView(rng, idx, 'int32', device) : fromND(idx, 'int32', device);
            const what = `${dtype} [${s}] dim ${d} index [${Array.from(idx.data)}]${strided ? ' strided' : ''}`;
            await expectTensor(indexSelect(x, d, ix), O.indexSelect(a, d, idx), dtype, { what: `indexSelect ${what}` });
            const srcShape = s.map((v, j) => (j === d ? n : v));
            const src = data(rng, srcShape, dtype);
            const sx = strided ? stridedView(rng, src, dtype, device) : fromND(src, dtype, device);
            await expectTensor(indexAdd(x, d, ix, sx), O.roundND(O.indexAdd(a, d, idx, src), dtype), dtype, {
              what: `indexAdd ${what}`,
              terms: n + 1,
              ...(dtype === 'float16' ? { atol: 4e-3 } : {}), // float16 rounds after each addition
            });
          }
        }
      });
    }

    test('indexAdd sums every duplicate (hand-checkable case)', async () => {
      const self = O.nd([3, 2], [1, 2, 3, 4, 5, 6]);
      const idx = O.nd([4], [2, 0, 2, 2]);
      const src = O.nd([4, 2], [10, 20, 100, 200, 1000, 2000, 10000, 20000]);
      const got = fromND(self, 'float32', device).indexAdd(
        0,
        fromND(idx, 'int32', device),
        fromND(src, 'float32', device),
      );
      await expectTensor(got, O.nd([3, 2], [101, 202, 3, 4, 11015, 22026]), 'float32', { what: 'indexAdd by hand' });
    });

    test('embedding: ids of any shape (contiguous and strided) look up rows of a table', async (t) => {
      const rng = testRng('embedding', t);
      for (const dtype of dataTypes) {
        const v = randomSize(rng, 17);
        const dim = randomSize(rng, 9);
        const w = data(rng, [v, dim], dtype);
        for (const idsShape of [[5], [2, 3], [2, 1, 4], []]) {
          const ids = randomIndices(rng, idsShape, v);
          await expectTensor(
            embedding(fromND(ids, 'int32', device), fromND(w, dtype, device)),
            O.embedding(ids, w),
            dtype,
            {
              what: `embedding ${dtype} ids [${idsShape}] table [${v}, ${dim}]`,
            },
          );
        }
        const ids = randomIndices(rng, [3, 4], v);
        await expectTensor(
          embedding(stridedView(rng, ids, 'int32', device), stridedView(rng, w, dtype, device)),
          O.embedding(ids, w),
          dtype,
          {
            what: `embedding ${dtype} strided ids and table`,
          },
        );
      }
    });
  });

  describe('out-of-range indices', () => {
    // The CPU checks indices as it runs the op and throws at the call; a GPU checks them on the device
    // and the error surfaces at the next read. Either way the message has the same shape: the op, the
    // bad value, its position in the index, the dim and the valid range.
    const range3 = 'valid range [0, 3) (0 to 2)';
    test('gather, scatterAdd, indexSelect, indexAdd, embedding refuse an index == size or < 0, naming the op', async () => {
      const x = fromND(O.nd([3, 4], 1), 'float32', device);
      for (const bad of [3, 4, -1, 100]) {
        const row = O.nd([1, 4], [0, bad, 1, 2]);
        const at = (pos: string): string[] => [`index ${bad} at position ${pos}`, 'dim 0 of size 3', range3];
        await assertOpFails(
          () => gather(x, 0, fromND(row, 'int32', device)),
          ['gather', ...at('[0, 1]')],
          `gather index ${bad}`,
        );
        await assertOpFails(
          () => scatterAdd(x, 0, fromND(row, 'int32', device), fromND(O.nd([1, 4], 1), 'float32', device)),
          ['scatterAdd', ...at('[0, 1]')],
          `scatterAdd index ${bad}`,
        );
        const v = O.nd([3], [0, bad, 2]);
        await assertOpFails(
          () => indexSelect(x, 0, fromND(v, 'int32', device)),
          ['indexSelect', ...at('[1]')],
          `indexSelect index ${bad}`,
        );
        await assertOpFails(
          () => indexAdd(x, 0, fromND(v, 'int32', device), fromND(O.nd([3, 4], 1), 'float32', device)),
          ['indexAdd', ...at('[1]')],
          `indexAdd index ${bad}`,
        );
        await assertOpFails(
          () => embedding(fromND(O.nd([2], [1, bad]), 'int32', device), x),
          [/embedding|indexSelect/, ...at('[1]')],
          `embedding id ${bad}`,
        );
      }
      // gather along dim 1: 4 is out of range for size 4
      await assertOpFails(
        () => gather(x, 1, fromND(O.nd([3, 1], [0, 4, 1]), 'int32', device)),
        ['gather', 'index 4 at position [1, 0]', 'dim 1 of size 4', 'valid range [0, 4) (0 to 3)'],
        'gather dim 1',
      );
    });

    test('the error names the value as stored (uint32) and the position in a strided or long index', async () => {
      const x = fromND(O.nd([3, 8], 1), 'float32', device);
      // a uint32 index above 2^31 is reported as the unsigned value
      await assertOpFails(
        () => indexSelect(x, 0, fromND(O.nd([2], [1, 3e9]), 'uint32', device)),
        ['indexSelect', 'index 3000000000 at position [1]', range3],
        'uint32 index 3e9',
      );
      // a step-2 view of an index: the position counts elements of the view
      const base = fromND(O.nd([7], [0, 9, 1, 9, 2, 9, -5]), 'int32', device);
      await assertOpFails(
        () => indexSelect(x, 0, base.slice(0, 0, undefined, 2)),
        ['indexSelect', 'index -5 at position [3]', range3],
        'strided index',
      );
      // a transposed 2-D index for gather along dim 1
      const idx = O.fromFn([8, 3], (c) => (c[0] === 5 && c[1] === 2 ? 8 : c[0]!));
      await assertOpFails(
        () => gather(x, 1, fromND(idx, 'int32', device).transpose(0, 1)),
        ['gather', 'index 8 at position [2, 5]', 'dim 1 of size 8'],
        'transposed gather index',
      );
      // an index broadcast along rows of 8 (whole rows move, as vec4 units on a GPU)
      await assertOpFails(
        () => gather(x, 0, fromND(O.nd([2, 1], [0, 5]), 'int32', device).expand([2, 8])),
        ['gather', 'index 5 at position [1, 0]', range3],
        'expanded gather index',
      );
      // one bad entry among many (several workgroups on a GPU)
      const many = O.fromFn([5000], (c) => (c[0] === 4321 ? 3 : c[0]! % 3));
      await assertOpFails(
        () => indexSelect(x, 0, fromND(many, 'int32', device)),
        ['indexSelect', 'index 3 at position [4321]', range3],
        'long index',
      );
    });

    test('the first failing op is the one reported, and later reads succeed', async () => {
      const x = fromND(O.nd([3, 4], 1), 'float32', device);
      const bad = fromND(O.nd([2], [0, 7]), 'int32', device);
      let err: unknown = null;
      try {
        const a = indexSelect(x, 0, bad); // fails first
        const b = gather(x, 0, fromND(O.nd([1, 4], [0, 0, -2, 0]), 'int32', device)); // fails too
        await a.add(b.sum()).toArray();
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof Error, 'the bad ops were not refused');
      assert.match(err.message, /^indexSelect: index 7 at position \[1\]/);
      // the failure was reported once: the device (and the same op with good indices) works on
      const good = indexSelect(x, 0, fromND(O.nd([2], [2, 0]), 'int32', device));
      await expectTensor(good, O.nd([2, 4], 1), 'float32', { what: 'indexSelect after a reported failure' });
    });

    test('the in-place index-add (embedding gradients into an existing .grad) checks its indices too', async () => {
      // the target is the output: a GPU adds into it directly (no copy), and still reports a bad index
      const src = fromND(O.nd([2, 2], 1), 'float32', device);
      const target = fromND(O.nd([3, 2], 0.5), 'float32', device);
      indexAddInplace(target, 0, fromND(O.nd([2], [2, 0]), 'int32', device), src);
      indexAddInplace(target, 0, fromND(O.nd([2], [2, 2]), 'int32', device), src);
      await expectTensor(target, O.nd([3, 2], [1.5, 1.5, 0.5, 0.5, 3.5, 3.5]), 'float32', {
        what: 'in-place indexAdd',
      });
      await assertOpFails(
        () => indexAddInplace(target, 0, fromND(O.nd([2], [1, 3]), 'int32', device), src),
        ['indexAdd', 'index 3 at position [1]', range3],
        'in-place indexAdd index 3',
      );
    });

    test('oneHot refuses a class id >= numClasses or < 0: at the call naming oneHot, or at the read naming scatterAdd', async () => {
      // oneHot is a scatterAdd of ones into zeros. The CPU checks while oneHot runs, so oneHot catches
      // the error and names itself. A GPU can only report the failure at the next read, after oneHot
      // has returned: the error then names the op that really failed on the device, and the value,
      // position and range still point at the bad class id.
      if (device === 'cpu') {
        assertThrowsWith(() => oneHot(fromND(O.nd([3], [0, 5, 1]), 'int32', device), 3), ['oneHot', 'index 5']);
      }
      await assertOpFails(
        () => oneHot(fromND(O.nd([3], [0, 5, 1]), 'int32', device), 3),
        ['oneHot', 'index 5 at position [1, 0]', range3],
        'oneHot id 5 of 3',
        { atRead: ['scatterAdd', 'index 5 at position [1, 0]', 'dim 1 of size 3', range3] },
      );
      await assertOpFails(
        () => oneHot(fromND(O.nd([2], [-1, 1]), 'int32', device), 3),
        ['oneHot', 'index -1 at position [0, 0]', range3],
        'oneHot id -1',
        { atRead: ['scatterAdd', 'index -1 at position [0, 0]', range3] },
      );
    });
  });

  describe('cat / stack / split / chunk', () => {
    test('cat along each axis (negative too), strided parts, an empty part', async (t) => {
      const rng = testRng('cat', t);
      for (const dtype of dataTypes) {
        for (let i = 0; i < 4; i++) {
          const base = randomShape(rng, { minRank: 1, maxRank: 4, maxDim: 5 });
          const axis = rng.int(0, base.length);
          const sizes = Array.from({ length: rng.int(1, 4) }, () => rng.int(i === 0 ? 0 : 1, 5));
          const parts = sizes.map((n) =>
            data(
              rng,
              base.map((d, j) => (j === axis ? n : d)),
              dtype,
            ),
          );
          const xs = parts.map((p) => (rng.bool() ? stridedView(rng, p, dtype, device) : fromND(p, dtype, device)));
          const axArg = rng.bool() ? axis - base.length : axis;
          await expectTensor(cat(xs, axArg), O.concat(parts, axis), dtype, {
            what: `cat ${dtype} axis ${axArg} sizes [${sizes}] of [${base}]`,
          });
          if (xs.length > 1)
            await expectTensor(xs[0]!.cat(xs.slice(1), axArg), O.concat(parts, axis), dtype, { what: 'cat method' });
        }
      }
    });

    test('cat promotes dtypes: int32+float16 -> float16, bool+int32 -> int32, float16+float32 -> float32', async (t) => {
      const rng = testRng('cat promotion', t);
      const cases: [DType, DType, DType][] = [
        ['int32', 'float16', 'float16'],
        ['bool', 'int32', 'int32'],
        ['float16', 'float32', 'float32'],
        ['bool', 'float32', 'float32'],
        ['uint32', 'bool', 'uint32'],
      ];
      for (const [da, db, want] of cases) {
        if (dtypesOn(device, [da, db]).length < 2) continue;
        const a = randomND(rng, [2, 3], { dtype: da });
        const b = randomND(rng, [2, 2], { dtype: db });
        const y = cat([fromND(a, da, device), fromND(b, db, device)], 1);
        await expectTensor(y, O.concat([a, b], 1), want, { what: `cat ${da} + ${db}` });
      }
      assertThrowsWith(
        () => cat([fromND(O.nd([2]), 'int32', device), fromND(O.nd([2]), 'uint32', device)]),
        ['cat', 'int32', 'uint32'],
      );
      assertThrowsWith(
        () => cat([fromND(O.nd([2, 3]), 'float32', device), fromND(O.nd([3, 3]), 'float32', device)], 1),
        [/cat|concat/, '[2, 3]', '[3, 3]'],
      );
      assertThrowsWith(() => cat([]), ['cat']);
    });

    test('stack along each new axis, including negative ones', async (t) => {
      const rng = testRng('stack', t);
      for (const dtype of dataTypes) {
        const s = randomShape(rng, { minRank: 0, maxRank: 3, maxDim: 5 });
        const parts = Array.from({ length: rng.int(1, 4) }, () => data(rng, s, dtype));
        const axes = [
          ...Array.from({ length: s.length + 1 }, (_, i) => i),
          ...Array.from({ length: s.length + 1 }, (_, i) => -1 - i),
        ];
        for (const axis of axes) {
          const xs = parts.map((p) => fromND(p, dtype, device));
          await expectTensor(stack(xs, axis), O.stack(parts, axis), dtype, {
            what: `stack ${dtype} ${parts.length} x [${s}] axis ${axis}`,
          });
        }
      }
      assertThrowsWith(
        () => stack([fromND(O.nd([2]), 'float32', device), fromND(O.nd([3]), 'float32', device)]),
        ['stack', '[2]', '[3]'],
      );
    });

    test('split by size and by list, chunk into n pieces: values, shapes, and views', async (t) => {
      const rng = testRng('split', t);
      for (let i = 0; i < 6; i++) {
        const s = randomShape(rng, { minRank: 1, maxRank: 3, maxDim: 9 });
        const axis = rng.int(0, s.length);
        const a = randomND(rng, s);
        const x = fromND(a, 'float32', device);
        const size = rng.int(1, s[axis]! + 2);
        const got = x.split(size, axis);
        const want = O.split(a, size, axis);
        assert.equal(got.length, want.length, `split [${s}] by ${size} along ${axis}: count`);
        for (let k = 0; k < want.length; k++)
          await expectTensor(got[k]!, want[k]!, 'float32', { what: `split piece ${k}` });
        // a list of sizes
        const list: number[] = [];
        for (let left = s[axis]!; left > 0;) {
          const n = rng.int(0, left + 1);
          list.push(n);
          left -= n;
        }
        const gl = x.split(list, axis - s.length);
        const wl = O.split(a, list, axis);
        assert.equal(gl.length, wl.length);
        for (let k = 0; k < wl.length; k++)
          await expectTensor(gl[k]!, wl[k]!, 'float32', { what: `split list [${list}] piece ${k}` });
        // chunk: torch.chunk sizes are ceil(n / chunks), so fewer pieces may come back
        const chunks = rng.int(1, 6);
        const gc = x.chunk(chunks, axis);
        const wc = O.split(a, Math.ceil(s[axis]! / chunks), axis);
        assert.equal(gc.length, wc.length, `chunk [${s}] into ${chunks} along ${axis}`);
        for (let k = 0; k < wc.length; k++) await expectTensor(gc[k]!, wc[k]!, 'float32', { what: `chunk piece ${k}` });
      }
      const x = fromND(O.nd([6]), 'float32', device);
      assert.deepEqual(
        x.chunk(4).map((c) => c.shape[0]),
        [2, 2, 2],
        'torch.chunk(6 elements, 4) gives 3 pieces of 2',
      );
      assert.deepEqual(
        fromND(O.nd([5]), 'float32', device)
          .chunk(3)
          .map((c) => c.shape[0]),
        [2, 2, 1],
      );
      assertThrowsWith(() => x.split([2, 3]), ['split', '6']);
    });
  });

  describe('triu / tril / oneHot', () => {
    test('triu and tril with k in {-1, 0, 2}: 2-D, batched, strided, integer', async (t) => {
      const rng = testRng('triu', t);
      for (const dtype of dtypesOn(device, ['float32', 'float16', 'int32', 'bool'])) {
        for (const shape of [
          [randomSize(rng, 9), randomSize(rng, 9)],
          [2, randomSize(rng, 6), randomSize(rng, 6)],
          [1, 1],
        ]) {
          const a = randomND(rng, shape, { dtype });
          for (const k of [-1, 0, 2]) {
            const x = rng.bool() ? fromND(a, dtype, device) : stridedView(rng, a, dtype, device);
            await expectTensor(triu(x, k), O.triu(a, k), dtype, { what: `triu ${dtype} [${shape}] k ${k}` });
            await expectTensor(x.tril(k), O.tril(a, k), dtype, { what: `tril ${dtype} [${shape}] k ${k}` });
          }
          await expectTensor(fromND(a, dtype, device).triu(), O.triu(a, 0), dtype, { what: 'triu default k' });
          await expectTensor(tril(fromND(a, dtype, device)), O.tril(a, 0), dtype, { what: 'tril default k' });
        }
      }
      assertThrowsWith(() => triu(fromND(O.nd([3]), 'float32', device)), ['triu']);
    });

    test('oneHot: ids of any shape, default float32 and explicit dtypes', async (t) => {
      const rng = testRng('oneHot', t);
      for (const idsShape of [[7], [2, 3], []]) {
        const c = rng.int(1, 9);
        const ids = randomIndices(rng, idsShape, c);
        const x = fromND(ids, 'int32', device);
        await expectTensor(oneHot(x, c), O.oneHot(ids, c), 'float32', { what: `oneHot [${idsShape}] ${c} classes` });
        await expectTensor(oneHot(x, c, 'int32'), O.oneHot(ids, c), 'int32', { what: 'oneHot int32' });
        await expectTensor(oneHot(fromND(ids, 'uint32', device), c, 'bool'), O.oneHot(ids, c), 'bool', {
          what: 'oneHot uint32 ids -> bool',
        });
      }
      assertThrowsWith(() => oneHot(fromND(O.nd([2]), 'float32', device), 3), ['oneHot', 'float32']);
      assertThrowsWith(() => oneHot(fromND(O.nd([2]), 'int32', device), 0), ['oneHot']);
    });
  });
});
