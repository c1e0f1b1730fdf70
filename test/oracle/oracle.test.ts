// Sanity tests of the float64 oracle and the numeric test helpers themselves, against facts that can
// be derived by hand (and float16 rounding against a brute-force nearest-value search).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as O from './ops.js';
import { assertClose, assertShape } from '../helpers/assert.js';
import { numericGrad } from '../helpers/gradcheck.js';
import {
  Rng,
  broadcastableTo,
  randomBroadcastPair,
  randomIndices,
  randomMatmulShapes,
  randomND,
  randomShape,
  testRng,
} from '../helpers/random.js';

const close = (
  actual: O.ND | ArrayLike<number>,
  expected: O.ND | ArrayLike<number>,
  what: string,
  dtype: 'float64' | 'float32' = 'float64',
): void => assertClose('data' in actual && 'shape' in actual ? actual.data : actual, expected, { dtype, what });

/** Every non-negative float16 value by increasing magnitude (decoded by hand here), plus 2^16 standing in for +Inf. */
function f16Candidates(): Float64Array {
  const out = new Float64Array(0x7c01);
  for (let bits = 0; bits < 0x7c00; bits++) {
    const e = bits >> 10;
    const m = bits & 0x3ff;
    out[bits] = e === 0 ? m / 2 ** 24 : (1 + m / 2 ** 10) * 2 ** (e - 15);
  }
  out[0x7c00] = 65536; // IEEE: round as if the exponent were unbounded; 2^16 then overflows to Inf
  return out;
}

/** Brute-force round to float16: scan every candidate for the nearest; ties go to the even bit pattern. */
function bruteF16(x: number, cands: Float64Array): number {
  const a = Math.abs(x);
  let best = 0;
  let bestDist = Infinity;
  for (let bits = 0; bits < cands.length; bits++) {
    const d = Math.abs(cands[bits]! - a);
    if (d < bestDist || (d === bestDist && (bits & 1) === 0)) {
      best = bits;
      bestDist = d;
    }
  }
  const v = best === 0x7c00 ? Infinity : cands[best]!;
  return x < 0 ? -v : v;
}

test('roundF16 matches a brute-force nearest-even search', (t) => {
  const rng = testRng('oracle f16 brute force', t);
  const cands = f16Candidates();
  const samples: number[] = [
    0,
    -0,
    65504,
    65519.99,
    65520,
    65536,
    1e6,
    2 ** -25,
    2 ** -24,
    3 * 2 ** -26,
    1 + 2 ** -11,
    1 + 2 ** -11 + 2 ** -40,
  ];
  for (let i = 0; i < 1500; i++) samples.push((rng.bool() ? -1 : 1) * 2 ** rng.uniform(-27, 17)); // all binades, subnormals, overflow
  for (let i = 0; i < 1500; i++) {
    // exact midpoints between neighbours (ties), and points just off them
    const j = rng.int(0, cands.length - 1);
    const mid = (cands[j]! + cands[j + 1]!) / 2;
    const nudge = rng.pick([0, 0, 1, -1]) * mid * 2 ** -40;
    samples.push((rng.bool() ? -1 : 1) * (mid + nudge));
  }
  for (const x of samples) {
    const got = O.roundF16(x);
    const want = bruteF16(x, cands);
    assert.ok(Object.is(got, want) || (got === 0 && want === 0), `roundF16(${x}) = ${got}, brute force ${want}`);
  }
  assert.ok(Number.isNaN(O.roundF16(NaN)));
  assert.equal(O.roundF16(-Infinity), -Infinity);
  assert.equal(O.roundF16(1 + 2 ** -11 + 2 ** -40), 1 + 2 ** -10); // no double rounding through float32
});

test('float16 bits encode/decode round-trip every pattern', () => {
  for (let h = 0; h < 65536; h++) {
    const v = O.f16FromBits(h);
    if (Number.isNaN(v)) assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
    else assert.equal(O.f16ToBits(v), h, `pattern ${h.toString(16)}`);
  }
  assert.equal(O.f16FromBits(0x3c00), 1);
  assert.equal(O.f16FromBits(0x7bff), 65504);
  assert.equal(O.f16FromBits(0x0001), 2 ** -24);
  assert.deepEqual([...O.fromStorage('float16', O.toStorage('float16', [1.5, -2, 1e9]))], [1.5, -2, Infinity]);
});

test('roundTo: rounding half to even, integer wrap, bool', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -1.5, 2.4999].map(O.roundHalfEven), [0, 2, 2, -2, 2]);
  assert.ok(Object.is(O.roundHalfEven(-0.5), -0));
  assert.equal(O.roundTo('int32', 2 ** 31), -(2 ** 31));
  assert.equal(O.roundTo('int32', -7.9), -7);
  assert.equal(O.roundTo('uint32', -1), 4294967295);
  assert.equal(O.roundTo('bool', NaN), 1);
  assert.equal(O.roundTo('bool', -0), 0);
  assert.equal(O.roundTo('float32', 0.1), Math.fround(0.1));
});

test('elementwise: torch edge semantics', () => {
  const u = (op: Parameters<typeof O.unary>[0], x: number): number => O.unary(op, O.scalar(x)).data[0]!;
  const b = (op: Parameters<typeof O.binary>[0], x: number, y: number, dt?: 'int32' | 'uint32' | 'float32'): number =>
    O.binary(op, x, y, dt).data[0]!;
  assert.equal(u('sign', NaN), 0);
  assert.equal(u('sign', -3), -1);
  assert.ok(Number.isNaN(u('relu', NaN)));
  assert.equal(u('logicalNot', NaN), 0);
  assert.equal(u('rsqrt', 0), Infinity);
  assert.equal(u('round', 2.5), 2);
  assert.equal(u('gelu', 0), 0);
  assert.equal(O.geluDerivative(0), 0.5);
  assert.ok(Math.abs(u('gelu', 10) - 10) < 1e-12 && Math.abs(u('gelu', -10)) < 1e-12);
  assert.equal(b('pow', 1, NaN), 1);
  assert.equal(b('pow', NaN, 0), 1);
  assert.ok(Number.isNaN(b('maximum', NaN, 1)) && Number.isNaN(b('minimum', 1, NaN)));
  assert.equal(b('mul', 65536, 65536, 'int32'), 0);
  assert.equal(b('mul', 46341, 46341, 'int32'), 46341 * 46341 - 2 ** 32);
  assert.equal(b('sub', 3, 5, 'uint32'), 2 ** 32 - 2);
  assert.equal(b('div', 1, 3, 'int32'), Math.fround(1 / 3));
  assert.equal(b('ne', NaN, NaN), 1);
  assert.equal(b('eq', NaN, NaN), 0);
  assert.equal(b('logicalAnd', NaN, 2), 1);
  assert.equal(O.unary('neg', O.scalar(-(2 ** 31)), 'int32').data[0], -(2 ** 31));
});

test("geluGrad is g * gelu'(x), checked against finite differences", (t) => {
  const rng = testRng('oracle geluGrad', t);
  const x = randomND(rng, [40], { low: -5, high: 5 });
  const g = randomND(rng, [40]);
  const [dx] = numericGrad(([v]) => O.unary('gelu', v!), [x], g);
  close(O.binary('geluGrad', x, g), dx!, 'geluGrad', 'float32');
});

test('broadcasting binary ops and where', (t) => {
  const rng = testRng('oracle broadcast', t);
  for (let i = 0; i < 50; i++) {
    const [sa, sb, out] = randomBroadcastPair(rng, { maxNumel: 256 });
    assert.deepEqual(O.broadcastShape(sa, sb), out, `broadcast [${sa}] [${sb}]`);
    const a = randomND(rng, sa);
    const b = randomND(rng, sb);
    const y = O.add(a, b);
    assertShape(y.shape, out);
    const c = O.coordsOf(rng.int(0, Math.max(1, O.numel(out))), out);
    if (O.numel(out) > 0) {
      const pick = (x: O.ND): number =>
        O.at(
          x,
          x.shape.map((d, j) => (d === 1 ? 0 : c[out.length - x.shape.length + j]!)),
        );
      assert.equal(O.at(y, c), pick(a) + pick(b));
    }
  }
  close(O.where(O.fromNested([1, 0, NaN]), 5, O.fromNested([[7], [8]])), [5, 7, 5, 5, 8, 5], 'where');
});

test('reductions: shapes, values, NaN, first-occurrence arg', () => {
  const a = O.fromNested([
    [1, 5, 5],
    [7, 0, 7],
  ]);
  close(O.sum(a, 1), [11, 14], 'sum axis 1');
  assertShape(O.sum(a, [0, 1], true).shape, [1, 1]);
  assertShape(O.sum(a, []).shape, [2, 3]);
  close(O.max(a, 0), [7, 5, 7], 'max axis 0');
  close(O.min(a), [0], 'min all');
  close(O.argmax(a, 1), [1, 0], 'argmax first occurrence');
  close(O.argmax(a), [3], 'argmax flat');
  close(O.argmin(a, 0, true), [0, 1, 0], 'argmin keepdim');
  close(O.reduceOp('argmax', a, { axes: [0, 1], keepdim: false }), [3], 'reduceOp argmax all axes');
  assert.ok(Number.isNaN(O.max(O.fromNested([1, NaN, 3])).data[0]!));
  close(O.argmax(O.fromNested([1, NaN, 3, NaN])), [1], 'argmax NaN');
  close(O.mean(a, 1), [11 / 3, 14 / 3], 'mean');
  close(O.variance(O.fromNested([1, 2, 3, 4])), [5 / 3], 'unbiased var');
  close(O.variance(O.fromNested([1, 2, 3, 4]), undefined, { correction: 0 }), [1.25], 'population var');
  close(O.sum(O.nd([0, 3])), [0], 'empty sum');
});

test('softmax rows sum to 1 and logSoftmax is its log', (t) => {
  const rng = testRng('oracle softmax', t);
  const x = randomND(rng, [3, 4, 5], { low: -20, high: 20 });
  for (const axis of [0, 1, -1]) {
    const s = O.softmax(x, axis);
    close(O.sum(s, axis), O.nd(O.sum(s, axis).shape, 1), `softmax sums, axis ${axis}`);
    close(O.logSoftmax(x, axis), O.unary('log', s), `logSoftmax, axis ${axis}`);
  }
  close(O.softmax(O.fromNested([0, Math.log(3)]), 0), [0.25, 0.75], 'hand softmax');
  close(O.softmax(O.fromNested([1000, 1000]), 0), [0.5, 0.5], 'no overflow');
});

test('matmul: identity, hand case, 1-D operands, broadcast batches', (t) => {
  const rng = testRng('oracle matmul', t);
  const a = randomND(rng, [3, 4]);
  close(O.matmul(a, O.eye(4)), a, 'A @ I');
  close(O.matmul(O.eye(3), a), a, 'I @ A');
  const h = O.matmul(O.fromNested([[1, 2], [3, 4]]), O.fromNested([[5, 6], [7, 8]])); // prettier-ignore
  close(h, [19, 22, 43, 50], 'hand 2x2');
  const dot = O.matmul(O.fromNested([1, 2, 3]), O.fromNested([4, 5, 6]));
  assertShape(dot.shape, []);
  close(dot, [32], 'dot');
  assertShape(O.matmul(O.nd([3]), O.nd([2, 3, 5])).shape, [2, 5]);
  assertShape(O.matmul(O.nd([2, 1, 4, 3]), O.nd([3])).shape, [2, 1, 4]);
  assertShape(O.matmul(O.nd([2, 1, 4, 3]), O.nd([5, 3, 6])).shape, [2, 5, 4, 6]);
  for (let i = 0; i < 20; i++) {
    const [sa, sb] = randomMatmulShapes(rng, { maxDim: 6 });
    const x = randomND(rng, sa);
    const y = randomND(rng, sb);
    const r = O.matmul(x, y);
    // Row i of a batch equals the vector-matrix product of that row (checks batching and 1-D handling).
    if (sa.length >= 2 && sb.length >= 2) {
      const xb = O.broadcastTo(x, [...r.shape.slice(0, -2), ...sa.slice(-2)]);
      const yb = O.broadcastTo(y, [...r.shape.slice(0, -2), ...sb.slice(-2)]);
      const x0 = O.slice(O.reshape(xb, [-1, ...sa.slice(-2)]), 0, 0, 1);
      const y0 = O.slice(O.reshape(yb, [-1, ...sb.slice(-2)]), 0, 0, 1);
      const r0 = O.slice(O.reshape(r, [-1, ...r.shape.slice(-2)]), 0, 0, 1);
      close(O.matmul(O.reshape(x0, sa.slice(-2)), O.reshape(y0, sb.slice(-2))), r0, 'first batch');
    }
  }
});

test('numericGrad: x^2 gives 2x*g, matmul gives g B^T and A^T g', (t) => {
  const rng = testRng('oracle numericGrad', t);
  const x = randomND(rng, [2, 3]);
  const g = randomND(rng, [2, 3]);
  const [dx] = numericGrad(([v]) => O.mul(v!, v!), [x], g);
  close(dx!, O.mul(O.mul(x, 2), g), 'd(x^2)', 'float32');
  const a = randomND(rng, [3, 4]);
  const b = randomND(rng, [4, 2]);
  const up = randomND(rng, [3, 2]);
  const [da, db] = numericGrad(([p, q]) => O.matmul(p!, q!), [a, b], up);
  close(da!, O.matmul(up, O.transpose(b)), 'dA', 'float32');
  close(db!, O.matmul(O.transpose(a), up), 'dB', 'float32');
});

test('crossEntropy: uniform logits give log C; smoothing and ignoreIndex', (t) => {
  const rng = testRng('oracle crossEntropy', t);
  const targets = randomIndices(rng, [2, 3], 5);
  const uniform = O.nd([2, 3, 5], 0.7);
  close(O.crossEntropy(uniform, targets), [Math.log(5)], 'uniform');
  close(O.crossEntropy(uniform, targets, { labelSmoothing: 0.3 }), [Math.log(5)], 'uniform smoothed');
  // Two classes, logits [0, ln 3]: p = [1/4, 3/4].
  const logits = O.fromNested([[0, Math.log(3)], [0, Math.log(3)]]); // prettier-ignore
  const tgt = O.fromNested([1, -100]);
  close(O.crossEntropy(logits, tgt), [-Math.log(0.75)], 'ignored row not counted');
  const eps = 0.2;
  const want = (1 - eps) * -Math.log(0.75) + (eps / 2) * -(Math.log(0.25) + Math.log(0.75));
  close(O.crossEntropy(logits, tgt, { labelSmoothing: eps }), [want], 'smoothed by hand');
  close(O.crossEntropy(logits, tgt, { reduction: 'none' }), [-Math.log(0.75), 0], 'none');
  assert.ok(Number.isNaN(O.crossEntropy(logits, O.fromNested([-100, -100])).data[0]!));
  close(O.mseLoss(O.fromNested([1, 2]), O.fromNested([3, 2])), [2], 'mse');
});

test('indexing ops agree with each other and with hand cases', (t) => {
  const rng = testRng('oracle indexing', t);
  const a = randomND(rng, [4, 5]);
  close(
    O.indexSelect(a, 1, O.fromNested([4, 0, 4])),
    O.matmul(a, O.indexSelect(O.eye(5), 1, O.fromNested([4, 0, 4]))),
    'indexSelect as matmul',
  );
  const idx = randomIndices(rng, [3, 5], 4);
  const gathered = O.gather(a, 0, idx);
  close(
    gathered,
    O.fromFn([3, 5], (c) => O.at(a, [O.at(idx, c), c[1]!])),
    'gather',
  );
  // scatterAdd of ones counts how often each row index appears per column.
  const counts = O.scatterAdd(O.nd([4, 5]), 0, idx, O.nd([3, 5], 1));
  close(O.sum(counts, 0), O.nd([5], 3), 'scatterAdd counts');
  const ia = O.indexAdd(O.nd([3]), 0, O.fromNested([2, 0, 2]), O.fromNested([1, 10, 100]));
  close(ia, [10, 0, 101], 'indexAdd duplicates accumulate');
  const ids = randomIndices(rng, [2, 3], 4);
  close(O.embedding(ids, a), O.matmul(O.oneHot(ids, 4), a), 'embedding = oneHot @ W');
  const parts = O.split(a, 2, 1);
  assert.deepEqual(
    parts.map((p) => p.shape),
    [
      [4, 2],
      [4, 2],
      [4, 1],
    ],
  );
  close(O.concat(parts, 1), a, 'split/concat round trip');
  assertShape(O.stack([a, a, a], 1).shape, [4, 3, 5]);
  close(O.add(O.triu(a, 1), O.tril(a)), a, 'triu(1) + tril(0) = a');
  close(O.tril(O.nd([2, 2], 1), -1), [0, 0, 1, 0], 'tril(-1)');
  close(O.arange(4, 1, 0.5), [1, 1.5, 2, 2.5], 'arange');
  close(O.permute(O.reshape(O.arange(6), [1, 2, 3]), [2, 0, 1]), [0, 3, 1, 4, 2, 5], 'permute');
  close(O.slice(O.arange(10), 0, 1, -2, 3), [1, 4, 7], 'slice');
});

test('layerNorm normalizes; attention is causal', (t) => {
  const rng = testRng('oracle layerNorm attention', t);
  const x = randomND(rng, [3, 8], { low: -4, high: 4 });
  const y = O.layerNorm(x, [8], { eps: 0 });
  close(O.mean(y, 1), O.nd([3], 0), 'mean 0');
  close(O.variance(y, 1, { correction: 0 }), O.nd([3], 1), 'var 1');
  const w = randomND(rng, [8]);
  const bias = randomND(rng, [8]);
  close(O.layerNorm(x, 1, { weight: w, bias }), O.add(O.mul(O.layerNorm(x, [8]), w), bias), 'affine');
  const [q, k, v] = [0, 1, 2].map(() => randomND(rng, [2, 3, 4, 5]));
  const out = O.attention(q!, k!, v!);
  assertShape(out.shape, [2, 3, 4, 5]);
  // The first query sees only the first key, so its output is v's first row.
  close(O.slice(out, 2, 0, 1), O.slice(v!, 2, 0, 1), 'causal first row');
  // Changing the last key/value cannot affect earlier queries.
  const v2 = O.mapND(v!, (e, _i, c) => (c[2] === 3 ? e + 1 : e));
  close(O.slice(O.attention(q!, k!, v2), 2, 0, 3), O.slice(out, 2, 0, 3), 'no peeking');
});

test('assertClose reports what, where, how many; NaN and Inf exact', () => {
  assertClose([1, NaN, Infinity], [1 + 1e-7, NaN, Infinity], { dtype: 'float32' });
  assert.throws(
    () => assertClose([1, 2, 3, 4], O.nd([2, 2], [1, 2, 3, 5]), { dtype: 'float32', what: 'thing' }),
    /thing: 1 of 4.*\[1, 1\]/s,
  );
  assert.throws(() => assertClose([NaN], [0], { dtype: 'float16' }), /1 of 1/);
  assert.throws(() => assertClose([1e38], [Infinity], { dtype: 'float32' }), /expected Infinity/);
  assert.throws(() => assertClose([1, 2], [1, 2, 3], { dtype: 'int32' }), /length/);
  assert.throws(() => assertClose([5], [6], { dtype: 'int32' }));
  assertClose([1e-3], [0], { dtype: 'float32', terms: 1000 });
});

test('test PRNG is deterministic and shape generators are valid', (t) => {
  const r1 = new Rng(42);
  const r2 = new Rng(42);
  for (let i = 0; i < 10; i++) assert.equal(r1.next(), r2.next());
  const rng = testRng('oracle random helpers', t);
  for (let i = 0; i < 100; i++) {
    const s = randomShape(rng, { maxNumel: 100 });
    assert.ok(O.numel(s) <= 100 && s.length <= 4);
    assert.deepEqual(O.broadcastShape(broadcastableTo(rng, s), s), s);
    const ints = randomND(rng, [20], { dtype: 'int32', low: -3, high: 3 });
    assert.ok(ints.data.every((v) => Number.isInteger(v) && v >= -3 && v < 3));
    const h = randomND(rng, [5], { dtype: 'float16' });
    assert.ok(h.data.every((v) => O.roundF16(v) === v));
  }
});
