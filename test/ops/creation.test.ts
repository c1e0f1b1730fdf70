// Creating and reading tensors on every backend: tensor() from nested and typed arrays (shape/dtype
// inference, ragged input), zeros/ones/full/arange, rand/randn statistics and determinism,
// toNested/item/toArray, float16 exactness over all 65536 bit patterns, and dtype capabilities (the
// CPU holds every dtype; a backend without float16 refuses it with an OpError on every creation path).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Generator,
  OpError,
  arange,
  fromFloat16Bits,
  full,
  getBackend,
  manualSeed,
  ones,
  onesLike,
  rand,
  randn,
  tensor,
  zeros,
  zerosLike,
  type DType,
  type Tensor,
} from '../../src/index.js';
import { forEachBackend, needsDTypes } from '../helpers/backends.js';
import { randomND, randomShape, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { ALL_DTYPES, assertIdentical, assertThrowsWith, dtypesOn, expectTensor, fromND, stridedView } from './util.js';

/** Mean, (population) variance of a sample. */
function moments(x: ArrayLike<number>): { mean: number; variance: number } {
  let m = 0;
  for (let i = 0; i < x.length; i++) m += x[i]!;
  m /= x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i]! - m) ** 2;
  return { mean: m, variance: v / x.length };
}

/** Asserts |got - want| <= k standard errors. */
function within(got: number, want: number, se: number, what: string, k = 5): void {
  assert.ok(Math.abs(got - want) <= k * se, `${what}: ${got}, expected ${want} ± ${k} x ${se.toExponential(2)}`);
}

/** Lag-1 sample correlation (0 for independent draws, with standard error ~1/sqrt(n)). */
function lag1(x: ArrayLike<number>): number {
  const { mean, variance } = moments(x);
  let c = 0;
  for (let i = 0; i + 1 < x.length; i++) c += (x[i]! - mean) * (x[i + 1]! - mean);
  return c / (x.length - 1) / variance;
}

/** Random nested arrays of a shape, and the flat values. */
function nested(
  shape: readonly number[],
  leaf: () => number | boolean,
): { value: unknown; flat: (number | boolean)[] } {
  const flat: (number | boolean)[] = [];
  const build = (d: number): unknown => {
    if (d === shape.length) {
      const v = leaf();
      flat.push(v);
      return v;
    }
    return Array.from({ length: shape[d]! }, () => build(d + 1));
  };
  return { value: build(0), flat };
}

forEachBackend((device) => {
  describe('tensor()', () => {
    test('nested arrays: shape and dtype inference (float32 for numbers, bool for booleans)', async (t) => {
      const rng = testRng('tensor nested', t);
      for (let i = 0; i < 10; i++) {
        const shape = randomShape(rng, { minRank: 0, maxRank: 4, maxDim: 5 });
        const { value, flat } = nested(shape, () => rng.uniform(-1e3, 1e3));
        const x = tensor(value as number[], { device });
        await expectTensor(x, O.roundND(O.nd(shape, flat as number[]), 'float32'), 'float32', {
          what: `tensor(nested [${shape}])`,
        });
        const b = nested(shape, () => rng.bool());
        const y = tensor(b.value as boolean[], { device });
        await expectTensor(y, O.nd(shape, b.flat.map(Number)), 'bool', { what: `tensor(nested bools [${shape}])` });
      }
      await expectTensor(tensor(2.5, { device }), O.nd([], [2.5]), 'float32', { what: 'tensor(scalar)' });
      await expectTensor(tensor(true, { device }), O.nd([], [1]), 'bool', { what: 'tensor(true)' });
      await expectTensor(tensor([], { device }), O.nd([0]), 'float32', { what: 'tensor([])' });
      await expectTensor(tensor([[], []], { device }), O.nd([2, 0]), 'float32', { what: 'tensor([[], []])' });
      await expectTensor(
        tensor([1, 2, 3, 4, 5, 6], { device, shape: [2, 3] }),
        O.nd([2, 3], [1, 2, 3, 4, 5, 6]),
        'float32',
        { what: 'flat array with shape' },
      );
    });

    test('explicit dtypes convert: int truncates toward zero, float16 rounds to nearest even, bool is nonzero', async (t) => {
      const rng = testRng('tensor dtype', t);
      const vals = [0, -0, 2.7, -2.7, 0.5, -0.5, 1e-8, 65519, 65520, 1 + 2 ** -11, 3 * 2 ** -25, 100, -100];
      for (let i = 0; i < 40; i++) vals.push(rng.uniform(-300, 300));
      for (const dtype of ALL_DTYPES) {
        if (!dtypesOn(device, [dtype]).length) continue;
        const src = dtype === 'uint32' ? vals.map(Math.abs) : vals;
        const x = tensor(src, { device, dtype });
        assert.equal(x.dtype, dtype);
        // a JS number becomes float16 through float32, as c10::Half(double) does in PyTorch
        assertIdentical(
          await x.toArray(),
          src.map((v) => O.roundTo(dtype, dtype === 'float16' ? Math.fround(v) : v)),
          `tensor(numbers, ${dtype})`,
        );
      }
    });

    test('typed arrays: the array type gives the dtype; float64 rounds to float32', async (t) => {
      const rng = testRng('tensor typed', t);
      const f64 = Float64Array.from({ length: 24 }, () => rng.uniform(-10, 10));
      await expectTensor(tensor(f64, { device }), O.roundND(O.nd([24], f64), 'float32'), 'float32', {
        what: 'Float64Array',
      });
      const f32 = Float32Array.from(f64);
      await expectTensor(tensor(f32, { device, shape: [2, 3, 4] }), O.nd([2, 3, 4], f32), 'float32', {
        what: 'Float32Array with shape',
      });
      const i32 = Int32Array.from({ length: 10 }, () => rng.int(-(2 ** 31), 2 ** 31));
      await expectTensor(tensor(i32, { device }), O.nd([10], i32), 'int32', { what: 'Int32Array' });
      const u32 = Uint32Array.from({ length: 10 }, () => rng.int(0, 2 ** 32));
      await expectTensor(tensor(u32, { device }), O.nd([10], u32), 'uint32', { what: 'Uint32Array' });
      const u8 = Uint8Array.from([0, 1, 1, 0, 1]);
      await expectTensor(tensor(u8, { device }), O.nd([5], u8), 'bool', { what: 'Uint8Array' });
      const f16 = Uint16Array.from([0x3c00, 0xc000]);
      assertThrowsWith(() => tensor(f16, { device }), ['tensor', 'Uint16Array']);
      if (dtypesOn(device, ['float16']).length) {
        await expectTensor(fromFloat16Bits(f16, [2], { device }), O.nd([2], [1, -2]), 'float16', {
          what: 'fromFloat16Bits',
        });
      }
    });

    test('bad input: ragged arrays, wrong element count, bad shapes and dtypes throw naming tensor', () => {
      assertThrowsWith(() => tensor([[1, 2], [3]], { device }), ['tensor', 'ragged']);
      assertThrowsWith(() => tensor([[1, 2], 3], { device }), ['tensor', 'ragged']);
      assertThrowsWith(() => tensor([1, [2, 3]], { device }), ['tensor', 'ragged']);
      assertThrowsWith(
        () =>
          tensor(
            [
              [[1], [2]],
              [[3], [4, 5]],
            ],
            { device },
          ),
        ['tensor', 'ragged'],
      );
      assertThrowsWith(() => tensor([1, 2, 3], { device, shape: [2, 2] }), ['tensor', '[2, 2]', '3']);
      assertThrowsWith(() => tensor(new Float32Array(5), { device, shape: [2, 3] }), ['tensor', '6', '5']);
      assertThrowsWith(() => tensor([1], { device, shape: [-1] }), ['tensor']);
      assertThrowsWith(() => tensor([1], { device, dtype: 'float64' as DType }), ['tensor', 'float64']);
      assertThrowsWith(() => fromFloat16Bits(new Uint16Array(3), [2, 2], { device }), ['fromFloat16Bits', '4', '3']);
    });
  });

  describe('zeros / ones / full / arange', () => {
    test('zeros, ones, full, zerosLike, onesLike in every dtype (fill values converted like a cast)', async (t) => {
      const rng = testRng('full', t);
      for (const dtype of dtypesOn(device, ALL_DTYPES)) {
        const shape = randomShape(rng, { maxRank: 3, maxDim: 6 });
        await expectTensor(zeros(shape, { device, dtype }), O.nd(shape, 0), dtype, {
          what: `zeros ${dtype} [${shape}]`,
        });
        await expectTensor(ones(shape, { device, dtype }), O.nd(shape, 1), dtype, { what: `ones ${dtype} [${shape}]` });
        for (const v of [2.7, -2.7, 0.1, 65520, 0.5, rng.uniform(0, 100)]) {
          if (dtype === 'uint32' && v < 0) continue;
          await expectTensor(full(shape, v, { device, dtype }), O.nd(shape, O.roundTo(dtype, v)), dtype, {
            what: `full(${v}) ${dtype}`,
          });
        }
        const base = full([2, 3], 3, { device, dtype });
        await expectTensor(zerosLike(base), O.nd([2, 3], 0), dtype, { what: `zerosLike ${dtype}` });
        await expectTensor(onesLike(base), O.nd([2, 3], 1), dtype, { what: `onesLike ${dtype}` });
      }
      await expectTensor(full([3], NaN, { device }), O.nd([3], NaN), 'float32', { what: 'full NaN' });
      if (dtypesOn(device, ['float16']).length) {
        await expectTensor(full([2], -Infinity, { device, dtype: 'float16' }), O.nd([2], -Infinity), 'float16', {
          what: 'full -Inf f16',
        });
      }
      await expectTensor(zeros([0, 3], { device }), O.nd([0, 3]), 'float32', { what: 'empty zeros' });
      await expectTensor(zeros([], { device }), O.nd([]), 'float32', { what: '0-d zeros' });
      assertThrowsWith(() => zeros([2, -1], { device }), ['zeros', '[2, -1]']);
      assertThrowsWith(() => full([1.5], 0, { device }), ['full']);
      assert.equal(zeros([2], { device, requiresGrad: true }).requiresGrad, true);
    });

    test('arange: integer and float steps, negative steps, empty ranges, dtype inference', async (t) => {
      const rng = testRng('arange', t);
      const cases: [number, number | undefined, number | undefined, DType][] = [
        [5, undefined, undefined, 'int32'],
        [2, 7, undefined, 'int32'],
        [-3, 10, 4, 'int32'],
        [0, 1, 0.25, 'float32'],
        [5, 0, -1, 'int32'],
        [1, -1, -0.5, 'float32'],
        [0.1, 1, 0.3, 'float32'], // torch gives 4 values (ceil of 3.0000000000000004)
        [3, 3, undefined, 'int32'],
        [5, 0, undefined, 'int32'],
        [0, 5, -1, 'int32'],
        [0, 0, undefined, 'int32'],
        [-(2 ** 30), 2 ** 30, 2 ** 28, 'int32'],
      ];
      for (let i = 0; i < 6; i++) {
        const start = Math.round(rng.uniform(-50, 50) * 8) / 8;
        const step = (rng.bool() ? 1 : -1) * rng.pick([0.125, 0.5, 1.5, 3, 7]);
        cases.push([start, start + step * rng.int(0, 40) + rng.uniform(-0.9, 0.9) * Math.abs(step), step, 'float32']);
      }
      for (const [a, b, s, dtype] of cases) {
        const start = b === undefined ? 0 : a;
        const end = b === undefined ? a : b;
        const step = s ?? 1;
        const n = Math.max(0, Math.ceil((end - start) / step)); // torch's length
        const x = b === undefined ? arange(a) : s === undefined ? arange(a, b) : arange(a, b, s);
        await expectTensor(x, O.roundND(O.arange(n, start, step), dtype), dtype, { what: `arange(${a}, ${b}, ${s})` });
      }
      if (dtypesOn(device, ['float16']).length) {
        await expectTensor(arange(0, 3, 1, { dtype: 'float16', device }), O.nd([3], [0, 1, 2]), 'float16', {
          what: 'arange float16',
        });
      }
      await expectTensor(arange(0, 2, 0.5, { dtype: 'float32', device }), O.nd([4], [0, 0.5, 1, 1.5]), 'float32', {
        what: 'arange explicit dtype',
      });
      assertThrowsWith(() => arange(0, 5, 0), ['arange', 'step']);
      assertThrowsWith(() => arange(0, 5, NaN), ['arange']);
    });
  });

  describe('rand / randn', () => {
    const N = 40000;

    test('rand: uniform range, mean, variance, histogram, no lag-1 correlation', async (t) => {
      const g = new Generator(testRng('rand seed', t).int(0, 2 ** 31));
      for (const [low, high] of [
        [0, 1],
        [-3, 5],
      ] as [number, number][]) {
        const x = await rand([N], { device, generator: g, low, high }).toArray();
        const w = high - low;
        let bad = 0;
        for (const v of x) if (!(v >= low && v < high)) bad++;
        assert.equal(bad, 0, `rand [${low}, ${high}): ${bad} values outside`);
        const { mean, variance } = moments(x);
        within(mean, (low + high) / 2, w / Math.sqrt(12 * N), `rand [${low}, ${high}) mean`);
        // Var(sample variance) ~ (mu4 - sigma^4) / n with mu4 = w^4/80, sigma^4 = w^4/144
        within(variance, (w * w) / 12, Math.sqrt((w ** 4 / 80 - w ** 4 / 144) / N), `rand [${low}, ${high}) variance`);
        const bins = new Array<number>(10).fill(0);
        for (const v of x) bins[Math.min(9, Math.floor(((v - low) / w) * 10))]!++;
        bins.forEach((c, i) => within(c, N / 10, Math.sqrt(N * 0.1 * 0.9), `rand [${low}, ${high}) bin ${i}`));
        within(lag1(x), 0, 1 / Math.sqrt(N), 'rand lag-1 correlation');
      }
    });

    test('randn: mean, variance, 1-sigma mass, mean/std options, no lag-1 correlation', async (t) => {
      const g = new Generator(testRng('randn seed', t).int(0, 2 ** 31));
      const x = await randn([N], { device, generator: g }).toArray();
      const { mean, variance } = moments(x);
      within(mean, 0, 1 / Math.sqrt(N), 'randn mean');
      within(variance, 1, Math.sqrt(2 / N), 'randn variance');
      const p = 0.682689492;
      within(
        Array.from(x).filter((v) => Math.abs(v) < 1).length / N,
        p,
        Math.sqrt((p * (1 - p)) / N),
        'randn mass within 1 sigma',
      );
      assert.ok(Array.from(x).every(Number.isFinite), 'randn values are finite');
      within(lag1(x), 0, 1 / Math.sqrt(N), 'randn lag-1 correlation');
      const y = await randn([N], { device, generator: g, mean: 3, std: 0.5 }).toArray();
      const m2 = moments(y);
      within(m2.mean, 3, 0.5 / Math.sqrt(N), 'randn(mean 3) mean');
      within(m2.variance, 0.25, 0.25 * Math.sqrt(2 / N), 'randn(std 0.5) variance');
    });

    test(
      'float16 rand/randn: float16 values, uniform range [0, 1) kept after rounding',
      needsDTypes(device, ['float16']),
      async (t) => {
        const g = new Generator(testRng('rand f16 seed', t).int(0, 2 ** 31));
        const x = rand([N], { device, generator: g, dtype: 'float16' });
        assert.equal(x.dtype, 'float16');
        const v = await x.toArray();
        within(moments(v).mean, 0.5, 1 / Math.sqrt(12 * N), 'f16 rand mean');
        assert.ok(
          Array.from(v).every((u) => O.roundF16(u) === u && u >= 0),
          'float16 rand values are float16 values >= 0',
        );
        const y = await randn([N], { device, generator: g, dtype: 'float16' }).toArray();
        within(moments(y).mean, 0, 1 / Math.sqrt(N), 'f16 randn mean');
        assertThrowsWith(() => rand([2], { device, dtype: 'int32' }), ['rand', 'int32']);
        assertThrowsWith(() => randn([2], { device, dtype: 'bool' }), ['randn', 'bool']);
        const ones = Array.from(v).filter((u) => u >= 1).length;
        assert.equal(
          ones,
          0,
          `float16 rand: ${ones} of ${N} values are >= 1 (rounding up to the excluded upper bound)`,
        );
      },
    );

    test('determinism: same seed, same values; draws advance; generators are independent', async (t) => {
      const seed = testRng('determinism seed', t).int(0, 2 ** 31);
      const read = async (x: Tensor): Promise<number[]> => Array.from(await x.toArray());
      manualSeed(seed);
      const a1 = await read(rand([64], { device }));
      const a2 = await read(randn([3, 5], { device }));
      manualSeed(seed);
      assert.deepEqual(await read(rand([64], { device })), a1, 'manualSeed replays rand');
      assert.deepEqual(await read(randn([3, 5], { device })), a2, 'and then randn');
      // a second draw differs from the first
      manualSeed(seed);
      const first = await read(rand([64], { device }));
      const second = await read(rand([64], { device }));
      assert.notDeepEqual(first, second, 'consecutive draws differ');
      // an explicit generator neither uses nor advances the default one
      manualSeed(seed);
      const g = new Generator(seed + 1);
      const fromG = await read(rand([64], { device, generator: g }));
      assert.deepEqual(await read(rand([64], { device })), a1, 'the default stream is untouched by draws from g');
      assert.notDeepEqual(fromG, a1, 'different seeds give different values');
      // two generators with the same seed agree, draw for draw, whatever else happens in between
      const g1 = new Generator(seed);
      const g2 = new Generator(seed);
      const x1 = await read(rand([5, 7], { device, generator: g1 }));
      rand([3], { device }); // a draw from the default generator in between
      assert.deepEqual(await read(rand([5, 7], { device, generator: g2 })), x1);
      assert.deepEqual(
        await read(randn([9], { device, generator: g1 })),
        await read(randn([9], { device, generator: g2 })),
      );
      // getState / setState replays a stream (in float16 too where the device has it)
      for (const dtype of dtypesOn(device, ['float32', 'float16'])) {
        const st = g1.getState();
        const next = await read(rand([16], { device, generator: g1, dtype }));
        g1.setState(st);
        assert.deepEqual(await read(rand([16], { device, generator: g1, dtype })), next, `setState replays (${dtype})`);
      }
      // element i of a draw depends only on (seed, draw, i): a longer draw extends a shorter one
      const short = await read(rand([10], { device, generator: new Generator(seed) }));
      const long = await read(rand([40], { device, generator: new Generator(seed) }));
      assert.deepEqual(long.slice(0, 10), short);
    });
  });

  describe('reading: toArray / toNested / item', () => {
    test('toArray returns the typed array of each dtype (float16 as Float32Array), row-major for views', async (t) => {
      const rng = testRng('toArray', t);
      const kinds: Record<DType, unknown> = {
        float32: Float32Array,
        float16: Float32Array,
        int32: Int32Array,
        uint32: Uint32Array,
        bool: Uint8Array,
      };
      for (const dtype of dtypesOn(device, ALL_DTYPES)) {
        const a = randomND(rng, [3, 4, 2], { dtype });
        const arr = await fromND(a, dtype, device).toArray();
        assert.ok(
          arr instanceof (kinds[dtype] as typeof Float32Array),
          `${dtype} reads back as ${(kinds[dtype] as { name: string }).name}`,
        );
        assertIdentical(arr, a.data, `toArray ${dtype}`);
        assertIdentical(
          await stridedView(rng, a, dtype, device).toArray(),
          a.data,
          `toArray of a strided ${dtype} view`,
        );
      }
    });

    test('toNested matches the oracle nesting; item reads one element', async (t) => {
      const rng = testRng('toNested', t);
      const a = O.roundND(randomND(rng, [2, 3, 4]), 'float32');
      const x = fromND(a, 'float32', device);
      assert.deepEqual(await x.toNested(), O.toNested(a));
      assert.deepEqual(await x.transpose(0, 2).toNested(), O.toNested(O.transpose(a, 0, 2)));
      const b = randomND(rng, [2, 2], { dtype: 'bool' });
      assert.deepEqual(await fromND(b, 'bool', device).toNested(), O.toNested(b));
      assert.equal(await fromND(O.nd([], [7.5]), 'float32', device).toNested(), 7.5);
      assert.deepEqual(await fromND(O.nd([0, 2]), 'float32', device).toNested(), []);
      assert.equal(await x.select(0, 1).select(0, 2).select(0, 3).item(), a.data[1 * 12 + 2 * 4 + 3]);
      assert.equal(await fromND(O.nd([1, 1, 1], [-3]), 'int32', device).item(), -3);
      if (dtypesOn(device, ['float16']).length)
        assert.equal(await fromND(O.nd([], [0.1]), 'float16', device).item(), O.roundF16(0.1));
      await assert.rejects(x.item(), /item/);
    });
  });

  describe('float16 exactness', () => {
    test(
      'all 65536 float16 bit patterns round-trip exactly (fromFloat16Bits -> toArray, and f16 -> f32 -> f16)',
      needsDTypes(device, ['float16']),
      async () => {
        const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
        const want = Array.from(bits, (h) => O.f16FromBits(h));
        const x = fromFloat16Bits(bits, [65536], { device });
        assertIdentical(await x.toArray(), want, 'decode of every float16 pattern');
        const f32 = x.cast('float32');
        assertIdentical(await f32.toArray(), want, 'float16 -> float32 is exact');
        assertIdentical(await f32.cast('float16').toArray(), want, 'float16 -> float32 -> float16 is the identity');
        assertIdentical(
          await tensor(await f32.toArray(), { device, dtype: 'float16' }).toArray(),
          want,
          'tensor(values, float16) keeps every value',
        );
        // a strided view over the patterns reads the right ones
        const v = x.reshape([256, 256]).transpose().slice(0, 1, undefined, 3);
        const wantV = O.slice(O.transpose(O.nd([256, 256], want)), 0, 1, Infinity, 3);
        assertIdentical(await v.toArray(), wantV.data, 'strided float16 view');
      },
    );
  });

  describe('dtype capabilities', () => {
    // The suite filters dtypes by capability (dtypesOn): the CPU, the reference, must hold all of them,
    // and a backend without float16 must refuse it clearly, on every path that creates a tensor.
    if (device === 'cpu') {
      test('the CPU holds every dtype, so no float16 case is filtered out there', () => {
        assert.deepEqual([...getBackend('cpu').caps.dtypes].sort(), [...ALL_DTYPES].sort());
      });
    }
    if (!dtypesOn(device, ['float16']).length) {
      test(`${device} has no float16: creating one throws an OpError naming the op and the dtype`, async () => {
        const refused = (fn: () => unknown, op: string | RegExp): void => {
          assert.throws(fn, (e: unknown) => {
            assert.ok(e instanceof OpError, `${String(op)}: threw ${String(e)}, not an OpError`);
            const named = typeof op === 'string' ? e.op === op : op.test(e.op);
            assert.ok(named, `${String(op)}: the error names ${e.op}`);
            assert.match(e.message, new RegExp(`float16 is not supported on ${device}`));
            return true;
          });
        };
        refused(() => tensor([1, 2], { device, dtype: 'float16' }), 'tensor');
        refused(() => fromFloat16Bits(Uint16Array.from([0x3c00]), [1], { device }), 'fromFloat16Bits');
        refused(() => zeros([2], { device, dtype: 'float16' }), 'zeros');
        refused(() => full([2], 1.5, { device, dtype: 'float16' }), 'fill');
        refused(() => ones([2], { device, dtype: 'float16' }), 'fill');
        refused(() => arange(0, 3, 1, { device, dtype: 'float16' }), 'arange');
        refused(() => rand([2], { device, dtype: 'float16' }), 'randUniform');
        refused(() => randn([2], { device, dtype: 'float16' }), 'randNormal');
        const x = tensor([1, 2], { device });
        refused(() => x.cast('float16'), 'cast');
        refused(() => zerosLike(x, { dtype: 'float16' }), 'zeros');
        await assert.rejects(
          fromFloat16Bits(Uint16Array.from([0x3c00]), [1], { device: 'cpu' }).to(device),
          (e: unknown) => {
            assert.ok(e instanceof OpError && e.op === 'to', `to(${device}): ${String(e)}`);
            assert.match(e.message, /float16/);
            return true;
          },
        );
        // the device still works after the refusals
        assertIdentical(await x.add(1).toArray(), [2, 3], 'an op after the refusals');
      });
    }
  });
});
