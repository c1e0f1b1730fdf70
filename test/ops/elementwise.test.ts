// Elementwise ops on every backend against the float64 oracle: every unary and binary op in float32
// and float16 (and the integer/bool dtypes their dtype rule allows), broadcasting, scalar operands on
// either side, non-contiguous inputs, special values, dtype promotion, where/clamp, every cast pair
// and the in-place ops.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { binary, cast, clamp, noGrad, tensor, unary, where, zeros, type DType, type Tensor } from '../../src/index.js';
import { BINARY_OPS, UNARY_OPS, type BinaryOp, type UnaryOp } from '../../src/ops/opcodes.js';
import { forEachBackend, needsDTypes } from '../helpers/backends.js';
import {
  broadcastableTo,
  randomBroadcastPair,
  randomND,
  randomShape,
  testRng,
  withSpecials,
  type Rng,
} from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { ALL_DTYPES, assertIdentical, assertThrowsWith, dtypesOn, expectTensor, fromND, stridedView } from './util.js';

// ---- The dtype rules, written from the spec (PyTorch's rules restricted to our dtypes) ----

const RANK: Record<DType, number> = { bool: 0, uint32: 1, int32: 1, float16: 2, float32: 3 };
const isFloat = (d: DType): boolean => d === 'float32' || d === 'float16';
const isIntLike = (d: DType): boolean => d === 'int32' || d === 'uint32';

/** Common dtype of two tensors; null when refused (int32 with uint32). */
function promote(a: DType, b: DType): DType | null {
  if (a === b) return a;
  if (isIntLike(a) && isIntLike(b)) return null;
  return RANK[a] >= RANK[b] ? a : b;
}

/** Common dtype of a tensor and a JS number (weak scalar: it only lifts the category). */
function promoteScalar(t: DType, s: number): DType {
  if (isFloat(t)) return t;
  if (!Number.isInteger(s)) return 'float32';
  return t === 'bool' ? 'int32' : t;
}

const COMPARE = new Set<BinaryOp>(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);
const LOGICAL = new Set<BinaryOp>(['logicalAnd', 'logicalOr']);
const TRUE_DIV = new Set<BinaryOp>(['div', 'geluGrad']);

/** Result dtype of a binary op given the common dtype; null when the op refuses it. */
function binaryResult(op: BinaryOp, common: DType): DType | null {
  if (COMPARE.has(op) || LOGICAL.has(op)) return 'bool';
  if (common === 'bool') return null;
  if (TRUE_DIV.has(op)) return isFloat(common) ? common : 'float32';
  return common;
}

/** The dtype the operands are converted to before the op. */
function computeDType(op: BinaryOp, common: DType): DType {
  if (LOGICAL.has(op)) return 'bool';
  if (TRUE_DIV.has(op) && !isFloat(common)) return 'float32';
  return common;
}

const FLOAT_RESULT = new Set<UnaryOp>([
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'reciprocal',
  'sin',
  'cos',
  'tanh',
  'sigmoid',
  'gelu',
]);

/** Result dtype of a unary op; null when refused (arithmetic on bool). */
function unaryResult(op: UnaryOp, x: DType): DType | null {
  if (op === 'logicalNot') return 'bool';
  if (FLOAT_RESULT.has(op)) return isFloat(x) ? x : 'float32';
  return x === 'bool' ? null : x;
}

// ---- Inputs ----

/** Values with |x| in [lo, hi) and a random sign, representable in `dtype`. */
function awayFromZero(rng: Rng, shape: readonly number[], lo: number, hi: number, dtype: DType): O.ND {
  return O.mapND(randomND(rng, shape, { low: lo, high: hi, dtype }), (x) => (rng.bool() ? -x : x));
}

/** Values on a coarse grid (k/4), so that comparisons meet ties and logical ops meet zeros. */
function grid(rng: Rng, shape: readonly number[], lo: number, hi: number): O.ND {
  return O.mapND(O.nd(shape), () => rng.int(lo * 4, hi * 4 + 1) / 4);
}

/** Float inputs of a unary op, inside its domain (dtype-representable). */
function unaryInput(op: UnaryOp, rng: Rng, shape: readonly number[], dtype: DType): O.ND {
  switch (op) {
    case 'exp':
      return randomND(rng, shape, { low: -5, high: 5, dtype });
    case 'log':
    case 'rsqrt':
      return randomND(rng, shape, { low: 0.05, high: 8, dtype });
    case 'sqrt':
      return randomND(rng, shape, { low: 0, high: 8, dtype });
    case 'reciprocal':
      return awayFromZero(rng, shape, 0.1, 4, dtype);
    case 'sin':
    case 'cos':
    case 'gelu':
      return randomND(rng, shape, { low: -6, high: 6, dtype });
    case 'sigmoid':
      return randomND(rng, shape, { low: -10, high: 10, dtype });
    case 'round':
    case 'floor':
    case 'ceil':
      // half of the values are exact halves (ties of round, integers for floor/ceil)
      return O.mapND(randomND(rng, shape, { low: -4, high: 4, dtype }), (x) => (rng.bool() ? rng.int(-16, 17) / 2 : x));
    case 'logicalNot':
      return O.mapND(randomND(rng, shape, { low: -2, high: 2, dtype }), (x) => (rng.bool(0.3) ? 0 : x));
    default:
      return randomND(rng, shape, { low: -4, high: 4, dtype });
  }
}

/** Inputs of a binary op for operand `which` (0: left, 1: right), in `dtype`. */
function binaryInput(op: BinaryOp, which: 0 | 1, rng: Rng, shape: readonly number[], dtype: DType): O.ND {
  if (dtype === 'bool') return randomND(rng, shape, { dtype });
  if (isIntLike(dtype)) {
    const lo = dtype === 'int32' ? -10 : 0;
    if (op === 'pow')
      return which === 0
        ? randomND(rng, shape, { dtype, low: lo, high: 10 })
        : randomND(rng, shape, { dtype, low: 0, high: 6 });
    if (LOGICAL.has(op)) return randomND(rng, shape, { dtype, low: lo === 0 ? 0 : -2, high: 3 });
    return randomND(rng, shape, { dtype, low: lo, high: 10 });
  }
  if (COMPARE.has(op)) return grid(rng, shape, -2, 2);
  if (LOGICAL.has(op)) return grid(rng, shape, -0.5, 0.5);
  switch (op) {
    case 'div':
      return which === 0 ? randomND(rng, shape, { low: -4, high: 4, dtype }) : awayFromZero(rng, shape, 0.25, 4, dtype);
    case 'pow':
      return which === 0
        ? randomND(rng, shape, { low: 0.1, high: 3, dtype })
        : randomND(rng, shape, { low: -2, high: 2, dtype });
    case 'geluGrad':
      return which === 0
        ? randomND(rng, shape, { low: -5, high: 5, dtype })
        : randomND(rng, shape, { low: -2, high: 2, dtype });
    default:
      return randomND(rng, shape, { low: -4, high: 4, dtype });
  }
}

/** A JS number operand drawn like `binaryInput` but not rounded to any dtype (the library must round it). */
function scalarInput(op: BinaryOp, which: 0 | 1, rng: Rng, tensorDType: DType): number {
  if (!isFloat(tensorDType))
    return binaryInput(op, which, rng, [], tensorDType === 'bool' ? 'int32' : tensorDType).data[0]!;
  if (COMPARE.has(op) || LOGICAL.has(op)) return binaryInput(op, which, rng, [], 'float32').data[0]!;
  return binaryInput(op, which, rng, [], 'float32').data[0]! + (rng.uniform() - 0.5) * 1e-4; // off the float16 grid
}

const SHAPE_OPTS = { maxNumel: 240, maxDim: 7 };

/**
 * Runs binary `op` on operands (tensor or number) and compares it with the oracle fed the same values
 * converted to the compute dtype. `aVals`/`bVals` are the values stored in the tensors.
 */
async function checkBinary(
  op: BinaryOp,
  a: Tensor | number,
  aVals: O.ND | number,
  b: Tensor | number,
  bVals: O.ND | number,
  what: string,
): Promise<void> {
  const common =
    typeof a === 'number'
      ? promoteScalar((b as Tensor).dtype, a)
      : typeof b === 'number'
        ? promoteScalar(a.dtype, b)
        : promote(a.dtype, b.dtype);
  assert.ok(common !== null, `${what}: test bug, refused pair`);
  const res = binaryResult(op, common);
  assert.ok(res !== null, `${what}: test bug, refused op`);
  const cd = computeDType(op, common);
  const conv = (v: O.ND | number): O.ND | number => (typeof v === 'number' ? O.roundTo(cd, v) : O.roundND(v, cd));
  const expected = O.binary(op, conv(aVals), conv(bVals), cd);
  await expectTensor(binary(op, a, b), expected, res, { what });
}

forEachBackend((device) => {
  const floats = dtypesOn(device, ['float32', 'float16']);

  describe('unary ops', () => {
    for (const op of UNARY_OPS) {
      for (const dtype of floats) {
        test(`${op} ${dtype}: random shapes, strided input, special values`, async (t) => {
          const rng = testRng(`unary ${op} ${dtype}`, t);
          const res = unaryResult(op, dtype)!;
          for (let i = 0; i < 3; i++) {
            const a = unaryInput(op, rng, randomShape(rng, SHAPE_OPTS), dtype);
            await expectTensor(unary(op, fromND(a, dtype, device)), O.unary(op, a, res), res, {
              what: `${op} ${dtype} [${a.shape}]`,
            });
          }
          const s = unaryInput(op, rng, randomShape(rng, { ...SHAPE_OPTS, minRank: 1 }), dtype);
          await expectTensor(unary(op, stridedView(rng, s, dtype, device)), O.unary(op, s, res), res, {
            what: `${op} ${dtype} strided [${s.shape}]`,
          });
          // Special values (each one surely, then sprinkled) over the whole real line (log/sqrt of negatives give NaN).
          const rnd = withSpecials(rng, randomND(rng, [64], { low: -8, high: 8, dtype }), 0.3);
          const sp = O.nd([69], [NaN, Infinity, -Infinity, 0, -0, ...rnd.data]);
          await expectTensor(fromND(sp, dtype, device)[op](), O.unary(op, sp, res), res, {
            what: `${op} ${dtype} specials`,
          });
        });
      }
    }

    for (const dtype of dtypesOn(device, ['int32', 'uint32', 'bool'])) {
      test(`every unary op on ${dtype}: result dtype and values (wraparound at the int limits)`, async (t) => {
        const rng = testRng(`unary int ${dtype}`, t);
        for (const op of UNARY_OPS) {
          const res = unaryResult(op, dtype);
          const a = randomND(rng, [5, 7], { dtype });
          // the extremes (only where the result stays integer: the float ops see the value as float32)
          if (dtype === 'int32' && !FLOAT_RESULT.has(op)) a.data.set([-(2 ** 31), 2 ** 31 - 1, 0, -1], 0);
          if (dtype === 'uint32' && !FLOAT_RESULT.has(op)) a.data.set([2 ** 32 - 1, 0, 1], 0);
          const x = fromND(a, dtype, device);
          if (res === null) {
            assertThrowsWith(() => unary(op, x), [op, 'bool'], `${op} on bool`);
            continue;
          }
          // Transcendental ops convert the integers to float32 first, then round the result to float32.
          const expected = FLOAT_RESULT.has(op) ? O.unary(op, O.roundND(a, res), res) : O.unary(op, a, res);
          await expectTensor(unary(op, x), expected, res, { what: `${op} ${dtype}` });
        }
      });
    }
  });

  describe('binary ops', () => {
    for (const op of BINARY_OPS) {
      for (const dtype of floats) {
        test(`${op} ${dtype}: broadcasting, strided operands, scalars on either side`, async (t) => {
          const rng = testRng(`binary ${op} ${dtype}`, t);
          const call = (x: Tensor | number, y: Tensor | number): Tensor => binary(op, x, y);
          for (let i = 0; i < 4; i++) {
            const [sa, sb, out] = randomBroadcastPair(rng, SHAPE_OPTS);
            const a = binaryInput(op, 0, rng, sa, dtype);
            const b = binaryInput(op, 1, rng, sb, dtype);
            const y = call(fromND(a, dtype, device), fromND(b, dtype, device));
            assert.deepEqual(y.shape, out, `${op}: broadcast shape of [${sa}] and [${sb}]`);
            await checkBinary(
              op,
              fromND(a, dtype, device),
              a,
              fromND(b, dtype, device),
              b,
              `${op} ${dtype} [${sa}] [${sb}]`,
            );
          }
          // Non-contiguous operands (permuted + stepped views), broadcasting against each other.
          const [sa, sb] = randomBroadcastPair(rng, { ...SHAPE_OPTS, minRank: 2 });
          const a = binaryInput(op, 0, rng, sa, dtype);
          const b = binaryInput(op, 1, rng, sb, dtype);
          await checkBinary(
            op,
            stridedView(rng, a, dtype, device),
            a,
            stridedView(rng, b, dtype, device),
            b,
            `${op} ${dtype} strided [${sa}] [${sb}]`,
          );
          await checkBinary(
            op,
            stridedView(rng, a, dtype, device),
            a,
            fromND(b, dtype, device),
            b,
            `${op} ${dtype} strided/contiguous`,
          );
          // Scalars on either side (rounded to the tensor's dtype by the library).
          const sR = scalarInput(op, 1, rng, dtype);
          await checkBinary(op, fromND(a, dtype, device), a, sR, sR, `${op} ${dtype} tensor op ${sR}`);
          const sL = scalarInput(op, 0, rng, dtype);
          await checkBinary(op, sL, sL, fromND(b, dtype, device), b, `${op} ${dtype} ${sL} op tensor`);
          // 0-d tensors broadcast like scalars.
          const z = binaryInput(op, 1, rng, [], dtype);
          await checkBinary(
            op,
            fromND(a, dtype, device),
            a,
            fromND(z, dtype, device),
            z,
            `${op} ${dtype} with a 0-d tensor`,
          );
        });
      }

      for (const dtype of floats) {
        test(`${op} ${dtype}: special values (NaN, ±Inf, ±0, ±1)`, async (t) => {
          const rng = testRng(`binary specials ${op} ${dtype}`, t);
          // every pair of specials (e.g. pow(1, NaN) = 1 and pow(-1, ±Inf) = 1, as in C and torch), then random mixes
          const specials = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 2.5];
          const pairsA = specials.flatMap((x) => specials.map(() => x));
          const pairsB = specials.flatMap(() => specials);
          const ra = withSpecials(rng, randomND(rng, [96], { low: -3, high: 3, dtype }), 0.4, specials);
          const rb = withSpecials(rng, randomND(rng, [96], { low: -3, high: 3, dtype }), 0.4, specials);
          const a = O.nd([pairsA.length + 96], [...pairsA, ...ra.data]);
          const b = O.nd([pairsB.length + 96], [...pairsB, ...rb.data]);
          await checkBinary(op, fromND(a, dtype, device), a, fromND(b, dtype, device), b, `${op} ${dtype} specials`);
        });
      }
    }

    for (const dtype of dtypesOn(device, ['int32', 'uint32', 'bool'])) {
      test(`every binary op on ${dtype}: result dtypes, exact values, refusals`, async (t) => {
        const rng = testRng(`binary int ${dtype}`, t);
        for (const op of BINARY_OPS) {
          const [sa, sb] = randomBroadcastPair(rng, SHAPE_OPTS);
          const a = binaryInput(op, 0, rng, sa, dtype);
          const b = binaryInput(op, 1, rng, sb, dtype);
          const x = fromND(a, dtype, device);
          const y = fromND(b, dtype, device);
          if (binaryResult(op, dtype) === null) {
            assertThrowsWith(() => binary(op, x, y), [op, 'bool'], `${op} on two bools`);
            continue;
          }
          await checkBinary(op, x, a, y, b, `${op} ${dtype} [${sa}] [${sb}]`);
          await checkBinary(op, stridedView(rng, a, dtype, device), a, y, b, `${op} ${dtype} strided`);
          if (dtype !== 'bool') {
            const s = scalarInput(op, 1, rng, dtype);
            await checkBinary(op, x, a, s, s, `${op} ${dtype} tensor op ${s}`);
            const s0 = scalarInput(op, 0, rng, dtype);
            await checkBinary(op, s0, s0, y, b, `${op} ${dtype} ${s0} op tensor`);
          }
        }
      });
    }

    for (const dtype of dtypesOn(device, ['int32', 'uint32'])) {
      test(`${dtype} add/sub/mul wrap around mod 2^32 (exact BigInt oracle)`, async (t) => {
        const rng = testRng(`int wrap ${dtype}`, t);
        const lo = dtype === 'int32' ? -(2 ** 31) : 0;
        const hi = dtype === 'int32' ? 2 ** 31 : 2 ** 32;
        const a = randomND(rng, [300], { dtype, low: lo, high: hi });
        const b = randomND(rng, [300], { dtype, low: lo, high: hi });
        a.data.set([46341, 65536, lo, hi - 1], 0);
        b.data.set([46341, 65536, dtype === 'int32' ? -1 : 2, hi - 1], 0);
        for (const op of ['add', 'sub', 'mul', 'maximum', 'minimum'] as const) {
          await checkBinary(op, fromND(a, dtype, device), a, fromND(b, dtype, device), b, `${op} ${dtype} full range`);
        }
        // Math.imul agrees with the BigInt oracle on the products (a second, independent reference).
        const prod = await fromND(a, dtype, device)
          .mul(fromND(b, dtype, device))
          .toArray();
        const imul = Array.from(a.data, (v, i) =>
          dtype === 'int32' ? Math.imul(v, b.data[i]!) : Math.imul(v, b.data[i]!) >>> 0,
        );
        assert.deepEqual(Array.from(prod), imul);
      });
    }

    test('int32 pow wraps around exactly like repeated int32 multiplication', async (t) => {
      const rng = testRng('int32 pow wrap', t);
      const a = randomND(rng, [120], { dtype: 'int32', low: -1000, high: 1000 });
      const b = randomND(rng, [120], { dtype: 'int32', low: 0, high: 9 });
      await checkBinary('pow', fromND(a, 'int32', device), a, fromND(b, 'int32', device), b, 'pow int32 overflow');
    });

    test('float pow with negative bases and integer exponents', async (t) => {
      const rng = testRng('pow negative base', t);
      for (const dtype of floats) {
        const a = randomND(rng, [80], { low: -3, high: 3, dtype });
        const b = O.mapND(O.nd([80]), () => rng.int(-3, 4));
        await checkBinary(
          'pow',
          fromND(a, dtype, device),
          a,
          fromND(b, dtype, device),
          b,
          `pow ${dtype} negative base`,
        );
        const c = O.mapND(O.nd([80]), () => rng.int(-3, 4) / 2); // non-integer exponents of negative bases give NaN
        await checkBinary(
          'pow',
          fromND(a, dtype, device),
          a,
          fromND(c, dtype, device),
          c,
          `pow ${dtype} half exponents`,
        );
      }
    });
  });

  describe('dtype promotion', () => {
    test('every pair of tensor dtypes promotes as specified (or is refused)', async (t) => {
      const rng = testRng('promotion pairs', t);
      const dtypes = dtypesOn(device, ALL_DTYPES);
      for (const da of dtypes) {
        for (const db of dtypes) {
          const a = randomND(rng, [3, 4], { dtype: da, low: da === 'uint32' ? 0 : -5, high: 6 });
          const b = randomND(rng, [4], { dtype: db, low: db === 'uint32' ? 0 : -5, high: 6 });
          const x = fromND(a, da, device);
          const y = fromND(b, db, device);
          const common = promote(da, db);
          for (const op of ['add', 'mul', 'lt', 'div'] as const) {
            if (common === null) {
              assertThrowsWith(() => binary(op, x, y), [op, 'int32', 'uint32'], `${op}(${da}, ${db})`);
              continue;
            }
            if (binaryResult(op, common) === null) {
              assertThrowsWith(() => binary(op, x, y), [op], `${op}(${da}, ${db})`);
              continue;
            }
            await checkBinary(op, x, a, y, b, `${op}(${da}, ${db})`);
          }
        }
      }
    });

    test('named cases: float16+float32, int32+float16, bool+int32, int32/int32, int32+uint32 throws', () => {
      const make = (d: DType): Tensor => zeros([2], { dtype: d, device });
      if (dtypesOn(device, ['float16']).length) {
        assert.equal(make('float16').add(make('float32')).dtype, 'float32');
        assert.equal(make('float32').add(make('float16')).dtype, 'float32');
        assert.equal(make('int32').add(make('float16')).dtype, 'float16');
        assert.equal(make('float16').div(make('int32')).dtype, 'float16');
      }
      assert.equal(make('bool').add(make('int32')).dtype, 'int32');
      assert.equal(make('uint32').mul(make('bool')).dtype, 'uint32');
      assert.equal(make('int32').div(make('int32')).dtype, 'float32');
      assert.equal(make('int32').eq(make('float32')).dtype, 'bool');
      assertThrowsWith(() => make('int32').add(make('uint32')), ['add', 'int32', 'uint32']);
      assertThrowsWith(() => make('uint32').sub(make('int32')), ['sub', 'int32', 'uint32']);
      assertThrowsWith(() => make('bool').add(make('bool')), ['add', 'bool']);
    });

    test('weak scalars: int32*0.5 -> float32, float16+1.5 stays float16, bool+1 -> int32', async (t) => {
      const rng = testRng('weak scalars', t);
      const cases: [DType, BinaryOp, number, DType][] = [
        ['int32', 'mul', 0.5, 'float32'],
        ['int32', 'add', 3, 'int32'],
        ['int32', 'div', 2, 'float32'],
        ['uint32', 'mul', 2, 'uint32'],
        ['uint32', 'add', 0.25, 'float32'],
        ['float16', 'add', 1.5, 'float16'],
        ['float16', 'mul', 1e-3, 'float16'],
        ['float16', 'add', 100000, 'float16'], // the scalar overflows float16: +Inf in the result
        ['float32', 'add', 2, 'float32'],
        ['bool', 'add', 1, 'int32'],
        ['bool', 'mul', 0.5, 'float32'],
        ['bool', 'lt', 0.5, 'bool'],
        ['int32', 'ge', 0.5, 'bool'],
      ];
      for (const [dt, op, s, want] of cases) {
        if (!dtypesOn(device, [dt]).length) continue;
        const a = randomND(rng, [17], { dtype: dt, low: dt === 'uint32' ? 0 : -5, high: 6 });
        const x = fromND(a, dt, device);
        assert.equal(binary(op, x, s).dtype, want, `${dt} ${op} ${s}`);
        assert.equal(binary(op, s, x).dtype, want, `${s} ${op} ${dt}`);
        await checkBinary(op, x, a, s, s, `${dt} ${op} ${s}`);
        await checkBinary(op, s, s, x, a, `${s} ${op} ${dt}`);
      }
    });
  });

  describe('where, maskedFill, clamp', () => {
    test('where broadcasts cond, a and b; tensors or scalars; dtype promotes', async (t) => {
      const rng = testRng('where', t);
      const combos: [DType, DType][] = [
        ['float32', 'float32'],
        ['float16', 'float16'],
        ['int32', 'float16'],
        ['int32', 'int32'],
        ['bool', 'bool'],
        ['float16', 'float32'],
      ];
      for (const [da, db] of combos) {
        if (dtypesOn(device, [da, db]).length < 2) continue;
        const out = randomShape(rng, { ...SHAPE_OPTS, minRank: 1 });
        const [sc, sa, sb] = [broadcastableTo(rng, out), broadcastableTo(rng, out), broadcastableTo(rng, out)];
        const c = randomND(rng, sc, { dtype: 'bool' });
        const a = randomND(rng, sa, { dtype: da });
        const b = randomND(rng, sb, { dtype: db });
        const common = promote(da, db)!;
        const cond = fromND(c, 'bool', device);
        const want = O.where(c, O.roundND(a, common), O.roundND(b, common));
        await expectTensor(
          where(cond, fromND(a, da, device), fromND(b, db, device)),
          O.nd(want.shape, want.data),
          common,
          {
            what: `where(${da}, ${db}) [${sc}] [${sa}] [${sb}]`,
          },
        );
        // Strided condition and operands.
        await expectTensor(
          where(stridedView(rng, c, 'bool', device), stridedView(rng, a, da, device), fromND(b, db, device)),
          want,
          common,
          {
            what: `where(${da}, ${db}) strided`,
          },
        );
      }
      const c = randomND(rng, [4, 5], { dtype: 'bool' });
      const cond = fromND(c, 'bool', device);
      // a scalar branch takes the tensor branch's float dtype (float16 where the device has it)
      const fd = dtypesOn(device, ['float16', 'float32'])[0]!;
      const a = randomND(rng, [4, 5], { dtype: fd });
      await expectTensor(where(cond, fromND(a, fd, device), 0.3), O.where(c, a, O.roundTo(fd, 0.3)), fd, {
        what: `where(t, 0.3) ${fd}`,
      });
      await expectTensor(where(cond, 2.5, fromND(a, fd, device)), O.where(c, 2.5, a), fd, {
        what: `where(2.5, t) ${fd}`,
      });
      const ai = randomND(rng, [4, 5], { dtype: 'int32' });
      await expectTensor(where(cond, fromND(ai, 'int32', device), 0.5), O.where(c, ai, 0.5), 'float32', {
        what: 'where(int32, 0.5)',
      });
      assertThrowsWith(() => where(fromND(a, fd, device), 1, 2), ['where', 'bool']);
      assertThrowsWith(() => where(cond, fromND(randomND(rng, [3]), 'float32', device), 0), ['where']);
    });

    test('maskedFill writes the value where the mask is true', async (t) => {
      const rng = testRng('maskedFill', t);
      const a = randomND(rng, [6, 5]);
      const m = randomND(rng, [5], { dtype: 'bool' });
      const y = fromND(a, 'float32', device).maskedFill(fromND(m, 'bool', device), -Infinity);
      await expectTensor(y, O.where(m, -Infinity, a), 'float32', { what: 'maskedFill' });
    });

    test('clamp with both, lower-only and upper-only bounds; NaN propagates; int stays int', async (t) => {
      const rng = testRng('clamp', t);
      for (const dtype of floats) {
        const a = withSpecials(rng, randomND(rng, [7, 9], { low: -3, high: 3, dtype }), 0.1);
        const x = stridedView(rng, a, dtype, device);
        const lo = rng.uniform(-2, 0);
        const hi = rng.uniform(0, 2);
        const rl = O.roundTo(dtype, lo);
        const rh = O.roundTo(dtype, hi);
        const both = O.binary('minimum', O.binary('maximum', a, rl), rh);
        await expectTensor(clamp(x, lo, hi), both, dtype, { what: `clamp ${dtype}` });
        await expectTensor(x.clamp(lo), O.binary('maximum', a, rl), dtype, { what: `clamp min ${dtype}` });
        await expectTensor(x.clamp(undefined, hi), O.binary('minimum', a, rh), dtype, { what: `clamp max ${dtype}` });
      }
      const ai = randomND(rng, [40], { dtype: 'int32' });
      const xi = fromND(ai, 'int32', device);
      await expectTensor(xi.clamp(-3, 4), O.binary('minimum', O.binary('maximum', ai, -3), 4), 'int32', {
        what: 'clamp int32',
      });
      await expectTensor(xi.clamp(-2.5), O.binary('maximum', ai, -2.5), 'float32', { what: 'clamp int32 by a float' });
    });
  });

  describe('cast', () => {
    /** Source values of each dtype, as the values a tensor of that dtype holds. */
    function castSource(rng: Rng, dtype: DType): O.ND {
      switch (dtype) {
        case 'float32': {
          const vals: number[] = [
            0,
            -0,
            NaN,
            Infinity,
            -Infinity,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.7,
            2 ** 31,
            -(2 ** 31),
            3e9,
            -3e9,
            2 ** 32 + 5,
            65504,
            65519,
            65520,
            1e-8,
            -1e-8,
          ];
          // float16 ties between neighbours (exact in float32): round half to even must pick the even one.
          for (let i = 0; i < 40; i++) {
            const h = rng.int(0, 0x7bff);
            vals.push((rng.bool() ? -1 : 1) * ((O.f16FromBits(h) + O.f16FromBits(h + 1)) / 2));
          }
          for (let i = 0; i < 60; i++) vals.push(Math.fround(rng.uniform(-100, 100)));
          for (let i = 0; i < 20; i++) vals.push(Math.fround((rng.bool() ? -1 : 1) * 2 ** rng.uniform(-30, 20)));
          return O.nd([vals.length], vals.map(Math.fround));
        }
        case 'float16': {
          // random bit patterns: normals, subnormals, ±0, ±Inf and NaN
          const vals = Array.from({ length: 150 }, () => O.f16FromBits(rng.int(0, 65536)));
          vals.push(0, -0, Infinity, -Infinity, NaN, 65504, -65504, 2 ** -24);
          return O.nd([vals.length], vals);
        }
        case 'int32': {
          const vals = [0, -1, 1, 2 ** 31 - 1, -(2 ** 31), 2049, 2051, 65519, 65520, 16777217, -16777219];
          for (let i = 0; i < 60; i++) vals.push(rng.int(-(2 ** 31), 2 ** 31));
          for (let i = 0; i < 60; i++) vals.push(rng.int(-70000, 70000));
          return O.nd([vals.length], vals);
        }
        case 'uint32': {
          const vals = [0, 1, 2 ** 32 - 1, 2 ** 31, 2 ** 31 - 1, 2049, 16777217];
          for (let i = 0; i < 80; i++) vals.push(rng.int(0, 2 ** 32));
          for (let i = 0; i < 40; i++) vals.push(rng.int(0, 70000));
          return O.nd([vals.length], vals);
        }
        case 'bool':
          return randomND(rng, [50], { dtype: 'bool' });
      }
    }

    for (const from of ALL_DTYPES) {
      for (const to of ALL_DTYPES) {
        test(
          `cast ${from} -> ${to} (every element, sign of zero included)`,
          needsDTypes(device, [from, to]),
          async (t) => {
            const rng = testRng(`cast ${from} ${to}`, t);
            const a = castSource(rng, from);
            const x = fromND(a, from, device);
            const y = cast(x, to);
            assert.equal(y.dtype, to);
            if (from === to) assert.equal(y, x, 'casting to the same dtype returns the tensor itself');
            // The oracle: float -> int truncates toward zero and wraps (NaN/Inf -> 0), -> bool is nonzero
            // (NaN counts), float32 -> float16 rounds to nearest even, overflowing to ±Inf.
            const want = O.roundND(a, to);
            assertIdentical(await y.toArray(), want.data, `cast ${from} -> ${to}`);
            // Through a non-contiguous view, and via the method.
            const ys = stridedView(rng, O.reshape(a, [1, a.data.length]), from, device).cast(to);
            assertIdentical(await ys.toArray(), want.data, `cast ${from} -> ${to} strided`);
          },
        );
      }
    }

    test(
      'float32 -> float16 rounds to nearest even at ties, subnormals and the overflow threshold',
      needsDTypes(device, ['float16']),
      async () => {
        const vals = [
          1 + 2 ** -11, // tie between 1 and 1+2^-10: even is 1
          1 + 3 * 2 ** -11, // tie: even is 1+2^-9
          -(1 + 2 ** -11),
          2 ** -25, // half the smallest subnormal: ties to 0
          3 * 2 ** -25, // tie between 1 and 2 subnormal units: 2
          2 ** -24,
          65504,
          65519.996, // below the midpoint to 2^16: 65504
          65520, // the midpoint: rounds to 2^16, i.e. +Inf
          -65520,
          2049,
          2051,
          0.1,
          -0,
        ].map(Math.fround);
        const y = tensor(Float32Array.from(vals), { device }).cast('float16');
        assertIdentical(await y.toArray(), vals.map(O.roundF16), 'f32 -> f16 ties');
      },
    );
  });

  describe('in-place ops', () => {
    test('add_/sub_/mul_/div_/maximum_/minimum_ with broadcast and scalar operands bump version', async (t) => {
      const rng = testRng('inplace binary', t);
      for (const dtype of floats) {
        for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const) {
          const shape = randomShape(rng, { ...SHAPE_OPTS, minRank: 1 });
          const a = binaryInput(op, 0, rng, shape, dtype);
          const b = binaryInput(op, 1, rng, broadcastableTo(rng, shape), dtype);
          const x = fromND(a, dtype, device);
          const v0 = x.version;
          const r = noGrad(() => x[`${op}_`](fromND(b, dtype, device)));
          assert.equal(r, x, `${op}_ returns its target`);
          assert.ok(x.version > v0, `${op}_ bumps the version`);
          await expectTensor(x, O.binary(op, a, b, dtype), dtype, {
            what: `${op}_ ${dtype} [${shape}] <- [${b.shape}]`,
          });
          const s = scalarInput(op, 1, rng, dtype);
          const v1 = x.version;
          const before = O.nd(x.shape, await x.toArray());
          noGrad(() => x[`${op}_`](s));
          assert.ok(x.version > v1);
          await expectTensor(x, O.binary(op, before, O.roundTo(dtype, s), dtype), dtype, {
            what: `${op}_ ${dtype} scalar ${s}`,
          });
        }
      }
      // int32 target: int operands are fine, a float result cannot be stored.
      const ai = randomND(rng, [4, 6], { dtype: 'int32' });
      const xi = fromND(ai, 'int32', device);
      noGrad(() => xi.mul_(3));
      await expectTensor(xi, O.binary('mul', ai, 3, 'int32'), 'int32', { what: 'mul_ int32' });
      assertThrowsWith(() => noGrad(() => xi.div_(2)), ['div_', 'int32']);
      assertThrowsWith(() => noGrad(() => xi.add_(0.5)), ['add_', 'int32']);
      // The operand must broadcast to the target, not the other way around.
      const small = fromND(randomND(rng, [6]), 'float32', device);
      assertThrowsWith(() => noGrad(() => small.add_(zeros([4, 6], { device }))), ['add_', '[4, 6]', '[6]']);
    });

    test('neg_/sqrt_/exp_ in place', async (t) => {
      const rng = testRng('inplace unary', t);
      for (const dtype of floats) {
        for (const op of ['neg', 'sqrt', 'exp'] as const) {
          const a = unaryInput(op, rng, [5, 6], dtype);
          const x = fromND(a, dtype, device);
          const v0 = x.version;
          noGrad(() => x[`${op}_`]());
          assert.ok(x.version > v0);
          await expectTensor(x, O.unary(op, a, dtype), dtype, { what: `${op}_ ${dtype}` });
        }
      }
    });

    test('in-place ops through a non-contiguous view write only the view, visible in the base', async (t) => {
      const rng = testRng('inplace view', t);
      const base = randomND(rng, [6, 8]);
      // view = base[:, 1::2].T  (shape [4, 6]); idx maps each view element to its base position
      const idx = O.transpose(O.slice(O.reshape(O.arange(48), [6, 8]), 1, 1, 8, 2));
      const mk = (): [Tensor, Tensor] => {
        const b = fromND(base, 'float32', device);
        return [b, b.slice(1, 1, undefined, 2).transpose()];
      };
      const expectBase = (viewVals: O.ND): O.ND => {
        const out = O.clone(base);
        idx.data.forEach((p, i) => (out.data[p] = viewVals.data[i]!));
        return out;
      };
      const viewVals = O.nd(
        idx.shape,
        Array.from(idx.data, (p) => base.data[p]!),
      );
      const other = randomND(rng, [6]);
      {
        const [b, v] = mk();
        assert.equal(v.isContiguous, false);
        const v0 = b.version;
        noGrad(() => v.add_(fromND(other, 'float32', device)));
        assert.ok(b.version > v0, 'the base shares the version counter of its storage');
        await expectTensor(b, expectBase(O.binary('add', viewVals, other, 'float32')), 'float32', {
          what: 'add_ through view',
        });
      }
      {
        const [b, v] = mk();
        noGrad(() => v.mul_(-2));
        await expectTensor(b, expectBase(O.binary('mul', viewVals, -2, 'float32')), 'float32', {
          what: 'mul_ through view',
        });
      }
      {
        const [b, v] = mk();
        const v0 = b.version;
        noGrad(() => v.fill_(7.25));
        assert.ok(b.version > v0, 'fill_ bumps the version');
        await expectTensor(b, expectBase(O.nd(idx.shape, 7.25)), 'float32', { what: 'fill_ on a non-contiguous view' });
        await expectTensor(v, O.nd(idx.shape, 7.25), 'float32', { what: 'the view itself after fill_' });
      }
      {
        const [b, v] = mk();
        const v0 = v.version;
        noGrad(() => v.zero_());
        assert.ok(v.version > v0, 'zero_ bumps the version');
        await expectTensor(b, expectBase(O.nd(idx.shape, 0)), 'float32', { what: 'zero_ on a non-contiguous view' });
      }
      {
        // fill_ on a contiguous slice in the middle of the storage (non-zero offset)
        const b = fromND(base, 'float32', device);
        noGrad(() => b.narrow(0, 2, 3).fill_(-1));
        await expectTensor(
          b,
          O.mapND(base, (x, _i, c) => (c[0]! >= 2 && c[0]! < 5 ? -1 : x)),
          'float32',
          { what: 'fill_ on narrow(0, 2, 3)' },
        );
      }
      {
        // fill_ on an int32 view with a fractional value truncates
        const bi = fromND(randomND(rng, [5, 4], { dtype: 'int32' }), 'int32', device);
        noGrad(() => bi.select(1, 2).fill_(3.9));
        assert.deepEqual((await bi.select(1, 2).toArray()).join(), '3,3,3,3,3');
      }
    });

    test('copy_ broadcasts and casts the source into the target (also through views)', async (t) => {
      const rng = testRng('copy_', t);
      for (const [dt, ds] of [
        ['float16', 'float32'],
        ['int32', 'float32'],
        ['float32', 'int32'],
        ['bool', 'float32'],
        ['float32', 'float32'],
        ['uint32', 'bool'],
      ] as [DType, DType][]) {
        if (dtypesOn(device, [dt, ds]).length < 2) continue;
        const target = fromND(randomND(rng, [3, 4, 5], { dtype: dt }), dt, device);
        const src = isFloat(ds)
          ? withSpecials(rng, randomND(rng, [4, 1], { low: -5, high: 5 }), 0.2, [0, -0, 2.5, -2.5])
          : randomND(rng, [4, 1], { dtype: ds });
        const v0 = target.version;
        noGrad(() => target.copy_(fromND(src, ds, device)));
        assert.ok(target.version > v0);
        const want = O.roundND(O.broadcastTo(O.roundND(src, ds), [3, 4, 5]), dt);
        await expectTensor(target, want, dt, { what: `copy_ ${ds} [4, 1] -> ${dt} [3, 4, 5]` });
      }
      // into a transposed view of the base
      const base = randomND(rng, [4, 3]);
      const b = fromND(base, 'float32', device);
      const src = randomND(rng, [3, 4]);
      noGrad(() => b.transpose().copy_(fromND(src, 'float32', device)));
      await expectTensor(b, O.transpose(src), 'float32', { what: 'copy_ into a transposed view' });
      assertThrowsWith(() => noGrad(() => b.copy_(zeros([2, 4, 3], { device }))), ['copy', '[4, 3]']);
    });

    test('in-place ops on tensors that require grad are refused outside noGrad', () => {
      const x = zeros([3], { device, requiresGrad: true });
      assertThrowsWith(() => x.add_(1), ['add_', 'noGrad']);
      assertThrowsWith(() => x.fill_(1), ['fill_']);
    });
  });
});
