// Reductions on every backend against the float64 oracle: sum/mean/max/min/var over random axis
// subsets (single, several, negative, all; keepdim both ways) of random shapes with size-1 dims and
// non-contiguous layouts; argmax/argmin with ties; softmax/logSoftmax along each axis with extreme
// logits; logSumExp; the empty-dim errors.
import { describe, test } from 'node:test';
import {
  argmax,
  argmin,
  logSoftmax,
  logSumExp,
  max,
  mean,
  min,
  softmax,
  sum,
  variance,
  type DType,
  type Tensor,
} from '../../src/index.js';
import { forEachBackend, needsDTypes } from '../helpers/backends.js';
import { randomND, randomPermutation, randomShape, testRng, withSpecials, type Rng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { assertThrowsWith, dtypesOn, expectTensor, fromND, stridedView } from './util.js';

/** A random axis argument for rank `r`: undefined (all), one axis, or a list; negatives mixed in. */
function randomAxes(rng: Rng, r: number): number | number[] | undefined {
  const kind = rng.int(0, 4);
  if (kind === 0 || r === 0) return undefined;
  const neg = (a: number): number => (rng.bool() ? a - r : a);
  if (kind === 1) return neg(rng.int(0, r));
  const k = rng.int(1, r + 1);
  return randomPermutation(rng, r).slice(0, k).map(neg);
}

/** How many elements reduce into each output element. */
function countOver(shape: readonly number[], axes: number | number[] | undefined): number {
  return O.normAxes(axes, shape.length).reduce((n, a) => n * shape[a]!, 1);
}

/** A shape with at least one size-1 dim most of the time. */
function reduceShape(rng: Rng): number[] {
  const s = randomShape(rng, { maxRank: 4, maxDim: 9, maxNumel: 500 });
  if (s.length > 0 && rng.bool(0.6)) s[rng.int(0, s.length)] = 1;
  return s;
}

/** Input values of each dtype. */
function input(rng: Rng, shape: readonly number[], dtype: DType): O.ND {
  return randomND(rng, shape, dtype === 'float16' || dtype === 'float32' ? { dtype, low: -2, high: 2 } : { dtype });
}

const isFloat = (d: DType): boolean => d === 'float32' || d === 'float16';

/** Like the oracle's logSumExp in torch: the shift is the max, replaced by 0 where it is infinite. */
function logSumExpRef(a: O.ND, axes: number | number[] | undefined, keepdim: boolean): O.ND {
  const m = O.max(a, axes, true);
  const shift = O.mapND(m, (v) => (Math.abs(v) === Infinity ? 0 : v));
  const s = O.sum(O.unary('exp', O.sub(a, shift)), axes, true);
  const out = O.add(O.unary('log', s), shift);
  return keepdim ? out : O.reshape(out, O.reducedShape(a.shape, O.normAxes(axes, a.shape.length), false));
}

forEachBackend((device) => {
  describe('sum / mean / max / min / var', () => {
    for (const dtype of dtypesOn(device, ['float32', 'float16', 'int32'])) {
      test(`${dtype}: random axis subsets, keepdim both ways, contiguous and strided`, async (t) => {
        const rng = testRng(`reduce ${dtype}`, t);
        for (let i = 0; i < 10; i++) {
          const shape = reduceShape(rng);
          const a = input(rng, shape, dtype);
          const axes = randomAxes(rng, shape.length);
          const keepdim = rng.bool();
          const x = i % 2 === 0 ? fromND(a, dtype, device) : stridedView(rng, a, dtype, device);
          const n = countOver(shape, axes);
          const what = (op: string): string =>
            `${op} ${dtype} [${shape}] axes ${JSON.stringify(axes)} keepdim ${keepdim}${x.isContiguous ? '' : ' strided'}`;
          const sumType: DType = isFloat(dtype) ? dtype : 'int32';
          const meanType: DType = isFloat(dtype) ? dtype : 'float32';
          await expectTensor(sum(x, axes, keepdim), O.roundND(O.sum(a, axes, keepdim), sumType), sumType, {
            what: what('sum'),
            terms: n,
          });
          await expectTensor(x.sum(axes, keepdim), O.roundND(O.sum(a, axes, keepdim), sumType), sumType, {
            what: what('.sum'),
            terms: n,
          });
          await expectTensor(mean(x, axes, keepdim), O.roundND(O.mean(a, axes, keepdim), meanType), meanType, {
            what: what('mean'),
            terms: 2,
          });
          await expectTensor(max(x, axes, keepdim), O.max(a, axes, keepdim), dtype, { what: what('max') });
          await expectTensor(min(x, axes, keepdim), O.min(a, axes, keepdim), dtype, { what: what('min') });
          for (const correction of [0, 1]) {
            const want = O.roundND(O.variance(a, axes, { correction, keepdim }), meanType);
            await expectTensor(variance(x, axes, { correction, keepdim }), want, meanType, {
              what: what(`var(correction ${correction})`),
              terms: 4,
            });
          }
        }
      });
    }

    test('var defaults to correction 1 and keepdim false; the method form agrees', async (t) => {
      const rng = testRng('var default', t);
      const a = randomND(rng, [4, 7]);
      const x = fromND(a, 'float32', device);
      await expectTensor(x.var(1), O.roundND(O.variance(a, 1), 'float32'), 'float32', { what: 'var(1)', terms: 4 });
      await expectTensor(x.var(), O.roundND(O.variance(a), 'float32'), 'float32', { what: 'var()', terms: 4 });
      await expectTensor(
        x.var([0, 1], { correction: 0, keepdim: true }),
        O.roundND(O.variance(a, [0, 1], { correction: 0, keepdim: true }), 'float32'),
        'float32',
        {
          what: 'var keepdim',
          terms: 4,
        },
      );
    });

    test('sum of bool counts as int32, sum of uint32 stays uint32; mean of int32 is float32', async (t) => {
      const rng = testRng('sum bool', t);
      const b = randomND(rng, [6, 9], { dtype: 'bool' });
      const xb = fromND(b, 'bool', device);
      await expectTensor(xb.sum(), O.sum(b), 'int32', { what: 'sum bool all' });
      await expectTensor(xb.sum(-1, true), O.sum(b, -1, true), 'int32', { what: 'sum bool last' });
      await expectTensor(stridedView(rng, b, 'bool', device).sum(0), O.sum(b, 0), 'int32', {
        what: 'sum bool strided',
      });
      const u = randomND(rng, [5, 3], { dtype: 'uint32', high: 1000 });
      await expectTensor(fromND(u, 'uint32', device).sum(1), O.sum(u, 1), 'uint32', { what: 'sum uint32' });
      const i = randomND(rng, [5, 3], { dtype: 'int32' });
      await expectTensor(fromND(i, 'int32', device).mean(0), O.roundND(O.mean(i, 0), 'float32'), 'float32', {
        what: 'mean int32',
      });
    });

    test('NaN propagates through max/min/sum; ±Inf handled', async (t) => {
      const rng = testRng('reduce specials', t);
      for (const dtype of dtypesOn(device, ['float32', 'float16'])) {
        const a = withSpecials(rng, randomND(rng, [8, 6], { dtype }), 0.08);
        const x = fromND(a, dtype, device);
        for (const axes of [0, 1, undefined]) {
          await expectTensor(x.max(axes), O.max(a, axes), dtype, { what: `max specials ${dtype} ${axes}` });
          await expectTensor(x.min(axes), O.min(a, axes), dtype, { what: `min specials ${dtype} ${axes}` });
          await expectTensor(x.sum(axes), O.roundND(O.sum(a, axes), dtype), dtype, {
            what: `sum specials ${dtype} ${axes}`,
            terms: 8,
          });
        }
      }
    });

    test('float16 sums accumulate in higher precision (4096 terms)', needsDTypes(device, ['float16']), async (t) => {
      const rng = testRng('f16 long sum', t);
      const a = randomND(rng, [2, 4096], { dtype: 'float16', low: 0, high: 1 });
      const got = fromND(a, 'float16', device).sum(1);
      // The true sum is ~2048, where float16's spacing is 1-2: a float16 accumulator would drop most terms.
      await expectTensor(got, O.roundND(O.sum(a, 1), 'float16'), 'float16', {
        what: 'f16 sum of 4096',
        rtol: 2e-3,
        atol: 0,
      });
    });

    test('empty dims: sum gives 0, mean NaN; max/min/argmax over an empty dim throw naming the op', async () => {
      const x = fromND(O.nd([3, 0]), 'float32', device);
      await expectTensor(x.sum(1), O.nd([3], 0), 'float32', { what: 'sum over empty dim' });
      await expectTensor(x.sum(0), O.nd([0]), 'float32', { what: 'sum keeping the empty dim' });
      await expectTensor(x.mean(1), O.nd([3], NaN), 'float32', { what: 'mean over empty dim' });
      await expectTensor(x.max(0), O.nd([0]), 'float32', { what: 'max over a non-empty dim of an empty tensor' });
      assertThrowsWith(() => x.max(1), ['max', '[3, 0]']);
      assertThrowsWith(() => x.max(), ['max']);
      assertThrowsWith(() => x.min(-1), ['min']);
      assertThrowsWith(() => x.argmax(1), ['argmax']);
      assertThrowsWith(() => x.argmin(), ['argmin']);
    });

    test('bad axes are refused with the op name', () => {
      const x = fromND(O.nd([2, 3]), 'float32', device);
      assertThrowsWith(() => x.sum(2), ['sum', 'axis 2']);
      assertThrowsWith(() => x.max(-3), ['max']);
      assertThrowsWith(() => x.sum([0, -2]), ['sum', 'repeated']);
    });
  });

  describe('argmax / argmin', () => {
    for (const dtype of dtypesOn(device, ['float32', 'float16', 'int32'])) {
      test(`${dtype}: each axis and flattened, keepdim, ties pick the first occurrence`, async (t) => {
        const rng = testRng(`argmax ${dtype}`, t);
        for (let i = 0; i < 6; i++) {
          const shape = randomShape(rng, { minRank: 1, maxRank: 4, maxDim: 7, maxNumel: 400 });
          // few distinct values, so that ties are everywhere
          const a = O.mapND(O.nd(shape), () => rng.int(-2, 3) * (isFloat(dtype) ? 0.5 : 1));
          const x = i % 2 === 0 ? fromND(a, dtype, device) : stridedView(rng, a, dtype, device);
          for (const keepdim of [false, true]) {
            for (let ax = -shape.length; ax < shape.length; ax++) {
              const what = `${dtype} [${shape}] axis ${ax} keepdim ${keepdim}${x.isContiguous ? '' : ' strided'}`;
              await expectTensor(argmax(x, ax, keepdim), O.argmax(a, ax, keepdim), 'int32', { what: `argmax ${what}` });
              await expectTensor(x.argmin(ax, keepdim), O.argmin(a, ax, keepdim), 'int32', { what: `argmin ${what}` });
            }
            await expectTensor(x.argmax(undefined, keepdim), O.argmax(a, undefined, keepdim), 'int32', {
              what: `argmax flat ${dtype} [${shape}] keepdim ${keepdim}`,
            });
            await expectTensor(argmin(x, undefined, keepdim), O.argmin(a, undefined, keepdim), 'int32', {
              what: `argmin flat ${dtype} [${shape}] keepdim ${keepdim}`,
            });
          }
        }
      });
    }

    test('NaN counts as the extreme (first NaN wins), like torch', async (t) => {
      const rng = testRng('argmax nan', t);
      const a = withSpecials(
        rng,
        O.mapND(O.nd([6, 9]), () => rng.int(0, 3)),
        0.1,
        [NaN, Infinity, -Infinity],
      );
      const x = fromND(a, 'float32', device);
      for (const ax of [0, 1, undefined]) {
        await expectTensor(x.argmax(ax), O.argmax(a, ax), 'int32', { what: `argmax NaN axis ${ax}` });
        await expectTensor(x.argmin(ax), O.argmin(a, ax), 'int32', { what: `argmin NaN axis ${ax}` });
      }
    });
  });

  describe('softmax / logSoftmax / logSumExp', () => {
    for (const dtype of dtypesOn(device, ['float32', 'float16'])) {
      test(`${dtype} softmax and logSoftmax along every axis, strided inputs, extreme logits`, async (t) => {
        const rng = testRng(`softmax ${dtype}`, t);
        // float32 logits up to ±3e4 (exp overflows without the max shift); float16 up to its range.
        const scales = dtype === 'float32' ? [1, 30, 3e4] : [1, 8, 3e4];
        for (let i = 0; i < 6; i++) {
          const shape = randomShape(rng, { minRank: 1, maxRank: 4, maxDim: 9, maxNumel: 400 });
          const scale = scales[i % scales.length]!;
          const a = O.roundND(
            O.mapND(randomND(rng, shape), (v) => v * scale),
            dtype,
          );
          const x = i % 2 === 0 ? fromND(a, dtype, device) : stridedView(rng, a, dtype, device);
          for (let ax = -shape.length; ax < shape.length; ax++) {
            const what = `${dtype} [${shape}] axis ${ax} scale ${scale}${x.isContiguous ? '' : ' strided'}`;
            await expectTensor(softmax(x, ax), O.roundND(O.softmax(a, ax), dtype), dtype, { what: `softmax ${what}` });
            await expectTensor(logSoftmax(x, ax), O.roundND(O.logSoftmax(a, ax), dtype), dtype, {
              what: `logSoftmax ${what}`,
            });
          }
        }
        // The default axis is the last.
        const a = randomND(rng, [3, 5], { dtype });
        await expectTensor(fromND(a, dtype, device).softmax(), O.roundND(O.softmax(a, -1), dtype), dtype, {
          what: 'softmax default axis',
        });
        await expectTensor(fromND(a, dtype, device).logSoftmax(), O.roundND(O.logSoftmax(a, -1), dtype), dtype, {
          what: 'logSoftmax default axis',
        });
        // Large logits with small gaps: the top log-probability, -log(1 + e^-10) ~ -4.5e-5, must survive next
        // to a max of 3e4 (where float32's spacing is 2^-9): x - max - log(sum), never x - (max + log(sum)).
        const big = O.roundND(O.nd([2, 3], [3e4, 3e4 - 10, 3e4 - 16, -3e4, -3e4 - 16, -3e4 - 0.5]), dtype);
        await expectTensor(logSoftmax(fromND(big, dtype, device), -1), O.roundND(O.logSoftmax(big, -1), dtype), dtype, {
          what: 'logSoftmax of large logits with small gaps',
        });
      });
    }

    test('masked logits: -Inf entries get probability 0; an all -Inf row gives NaN (torch)', async (t) => {
      const rng = testRng('softmax masked', t);
      const a = withSpecials(rng, randomND(rng, [5, 7]), 0.3, [-Infinity]);
      for (let j = 0; j < 7; j++) a.data[2 * 7 + j] = -Infinity;
      const x = fromND(a, 'float32', device);
      await expectTensor(x.softmax(1), O.roundND(O.softmax(a, 1), 'float32'), 'float32', { what: 'masked softmax' });
      await expectTensor(x.logSoftmax(1), O.roundND(O.logSoftmax(a, 1), 'float32'), 'float32', {
        what: 'masked logSoftmax',
      });
    });

    test('softmax of an integer tensor is refused', () => {
      const x = fromND(O.nd([2, 2]), 'int32', device);
      assertThrowsWith(() => x.softmax(), ['softmax', 'int32']);
      assertThrowsWith(() => x.logSoftmax(), ['logSoftmax']);
      assertThrowsWith(() => x.logSumExp(), ['logSumExp']);
    });

    for (const dtype of dtypesOn(device, ['float32', 'float16'])) {
      test(`${dtype} logSumExp over random axis subsets, keepdim both ways, large logits`, async (t) => {
        const rng = testRng(`logSumExp ${dtype}`, t);
        for (let i = 0; i < 8; i++) {
          const shape = reduceShape(rng);
          const scale = dtype === 'float32' ? rng.pick([1, 100, 1e4]) : rng.pick([1, 8, 1e4]);
          const a = O.roundND(
            O.mapND(randomND(rng, shape), (v) => v * scale),
            dtype,
          );
          const axes = randomAxes(rng, shape.length);
          const keepdim = rng.bool();
          const x = i % 2 === 0 ? fromND(a, dtype, device) : stridedView(rng, a, dtype, device);
          await expectTensor(logSumExp(x, axes, keepdim), O.roundND(logSumExpRef(a, axes, keepdim), dtype), dtype, {
            what: `logSumExp ${dtype} [${shape}] axes ${JSON.stringify(axes)} keepdim ${keepdim} scale ${scale}`,
            terms: 4,
          });
        }
      });
    }

    test('logSumExp of an all -Inf row is -Inf and of a row with +Inf is +Inf (torch)', async () => {
      const a = O.nd([3, 3], [-Infinity, -Infinity, -Infinity, 1, Infinity, 2, 0, Math.log(2), -Infinity]);
      const x = fromND(a, 'float32', device);
      const got: Tensor = x.logSumExp(1);
      await expectTensor(got, O.nd([3], [-Infinity, Infinity, Math.fround(Math.log(3))]), 'float32', {
        what: 'logSumExp with infinities',
      });
    });

    test('softmax rows sum to 1 (a property independent of the oracle)', async (t) => {
      const rng = testRng('softmax sums', t);
      const a = O.mapND(randomND(rng, [7, 33]), (v) => v * 50);
      const s = fromND(a, 'float32', device).softmax(1).sum(1);
      await expectTensor(s, O.nd([7], 1), 'float32', { what: 'softmax row sums', atol: 1e-6, terms: 33 });
    });
  });
});
