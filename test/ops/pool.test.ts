// 2-D pooling on every backend against the float64 oracle (test/oracle/pool.ts): max and average
// pooling over kernel / stride / padding / dilation / ceil-mode / countIncludePad combinations on odd
// random shapes, adaptive average pooling to sizes that do not divide the input, strided inputs and
// upstream gradients, finite-difference gradchecks of tiny cases, and the argument errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adaptiveAvgPool2d, avgPool2d, maxPool2d, tensor, type DeviceName, type Tensor } from '../../src/index.js';
import * as P from '../oracle/pool.js';
import * as O from '../oracle/ops.js';
import { assertClose, assertShape } from '../helpers/assert.js';
import { forEachBackend, needsDTypes } from '../helpers/backends.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, testRng, type Rng } from '../helpers/random.js';
import { assertThrowsWith, fromND, stridedView } from './util.js';

const put = (a: O.ND, device: DeviceName, requiresGrad = false): Tensor =>
  tensor(a.data, { shape: a.shape, device, requiresGrad });

type Pair = [number, number];
const pair = (v: number | Pair): Pair => (typeof v === 'number' ? [v, v] : v);

interface Case {
  k: number | Pair;
  s?: number | Pair;
  p?: number | Pair;
  d?: number | Pair;
  ceil?: boolean;
  incl?: boolean;
}

/** A random (N, C, H, W) shape whose planes fit the dilated kernel. */
function shapeFor(rng: Rng, g: { kernel: Pair; dilation: Pair }): number[] {
  const ext = (i: 0 | 1) => g.dilation[i] * (g.kernel[i] - 1) + 1;
  return [rng.int(1, 3), rng.int(1, 4), ext(0) + rng.int(0, 7), ext(1) + rng.int(0, 7)];
}

function maxGeometry(c: Case): P.PoolGeometry {
  const kernel = pair(c.k);
  return {
    kernel,
    stride: c.s === undefined ? kernel : pair(c.s),
    padding: pair(c.p ?? 0),
    dilation: pair(c.d ?? 1),
    ceilMode: c.ceil ?? false,
  };
}

function avgGeometry(c: Case): P.AvgGeometry {
  const g = maxGeometry(c);
  return {
    kernel: g.kernel,
    stride: g.stride,
    padding: g.padding,
    ceilMode: g.ceilMode,
    countIncludePad: c.incl ?? true,
  };
}

const MAX_CASES: Case[] = [
  { k: 2 },
  { k: 3, s: 2, p: 1 },
  { k: [3, 2], s: [2, 1], p: [1, 0] },
  { k: 3, s: 2, p: 1, ceil: true },
  { k: 2, s: 3, d: 2, ceil: true },
  { k: 3, s: 1, p: 1, d: 2 },
  { k: [2, 3], s: [3, 2], p: [1, 1], d: [2, 1], ceil: true },
  { k: 4, s: 3, p: 2, ceil: true },
];

const AVG_CASES: Case[] = [
  { k: 2 },
  { k: 3, s: 2, p: 1 },
  { k: 3, s: 2, p: 1, incl: false },
  { k: 3, s: 2, p: 1, ceil: true },
  { k: 3, s: 2, p: 1, ceil: true, incl: false },
  { k: [2, 3], s: [1, 2], p: [1, 1], incl: false },
  { k: 4, s: 3, p: 2, ceil: true },
  { k: [5, 2], s: [2, 3], p: [2, 0], ceil: true, incl: true },
];

const label = (c: Case) => JSON.stringify(c);

forEachBackend((device) => {
  test('maxPool2d forward and gradient match the oracle over window geometries', async (t) => {
    const rng = testRng(`maxPool2d ${device}`, t);
    for (const c of MAX_CASES) {
      const g = maxGeometry(c);
      const x = randomND(rng, shapeFor(rng, g), { low: -2, high: 2 });
      const X = put(x, device, true);
      const y = maxPool2d(X, { kernelSize: c.k, stride: c.s, padding: c.p, dilation: c.d, ceilMode: c.ceil });
      const want = P.maxPool2d(x, g).y;
      assertShape(y.shape, want.shape, `maxPool2d ${label(c)} shape`);
      assertClose(await y.toArray(), want, { dtype: 'float32', what: `maxPool2d ${label(c)}` });
      const up = randomND(rng, want.shape);
      y.backward(put(up, device));
      assertClose(await X.grad!.toArray(), P.maxPool2dGrad(x, g, up), {
        dtype: 'float32',
        terms: 4,
        what: `maxPool2d grad ${label(c)}`,
      });
    }
  });

  test('avgPool2d forward and gradient match the oracle (countIncludePad, ceilMode)', async (t) => {
    const rng = testRng(`avgPool2d ${device}`, t);
    for (const c of AVG_CASES) {
      const g = avgGeometry(c);
      const x = randomND(rng, shapeFor(rng, { kernel: g.kernel, dilation: [1, 1] }));
      const X = put(x, device, true);
      const y = avgPool2d(X, {
        kernelSize: c.k,
        stride: c.s,
        padding: c.p,
        ceilMode: c.ceil,
        countIncludePad: c.incl,
      });
      const want = P.avgPool2d(x, g);
      assertShape(y.shape, want.shape, `avgPool2d ${label(c)} shape`);
      assertClose(await y.toArray(), want, { dtype: 'float32', terms: 4, what: `avgPool2d ${label(c)}` });
      const up = randomND(rng, want.shape);
      y.backward(put(up, device));
      assertClose(await X.grad!.toArray(), P.avgPool2dGrad(x, g, up), {
        dtype: 'float32',
        terms: 4,
        what: `avgPool2d grad ${label(c)}`,
      });
    }
  });

  test('adaptiveAvgPool2d to sizes that do not divide the input (and larger ones)', async (t) => {
    const rng = testRng(`adaptiveAvgPool2d ${device}`, t);
    const cases: [number[], Pair][] = [
      [
        [2, 3, 7, 5],
        [3, 2],
      ],
      [
        [1, 2, 5, 9],
        [4, 4],
      ],
      [
        [2, 1, 6, 6],
        [1, 1],
      ],
      [
        [1, 2, 3, 4],
        [5, 7],
      ],
      [
        [3, 2, 8, 8],
        [8, 8],
      ],
    ];
    for (const [shape, [oh, ow]] of cases) {
      const x = randomND(rng, shape);
      const X = put(x, device, true);
      const y = adaptiveAvgPool2d(X, oh === ow ? oh : [oh, ow]);
      const want = P.adaptiveAvgPool2d(x, oh, ow);
      const what = `adaptiveAvgPool2d [${shape.join(', ')}] -> ${oh}x${ow}`;
      assertShape(y.shape, want.shape, what);
      assertClose(await y.toArray(), want, { dtype: 'float32', terms: 4, what });
      const up = randomND(rng, want.shape);
      y.backward(put(up, device));
      assertClose(await X.grad!.toArray(), P.adaptiveAvgPool2dGrad(x, oh, ow, up), {
        dtype: 'float32',
        terms: 4,
        what: `${what} grad`,
      });
    }
  });

  test('pooling reads strided inputs and strided upstream gradients; 3-D inputs pool as a batch of one', async (t) => {
    const rng = testRng(`pool strided ${device}`, t);
    const x = randomND(rng, [2, 3, 7, 6]);
    const g = maxGeometry({ k: 3, s: 2, p: 1 });
    const xs = stridedView(rng, x, 'float32', device);
    assert.ok(!xs.isContiguous);
    assertClose(await maxPool2d(xs, { kernelSize: 3, stride: 2, padding: 1 }).toArray(), P.maxPool2d(x, g).y, {
      dtype: 'float32',
      what: 'maxPool2d of a strided view',
    });
    const ag = avgGeometry({ k: 2, s: 1, p: 1, incl: false });
    const ya = avgPool2d(xs, { kernelSize: 2, stride: 1, padding: 1, countIncludePad: false });
    assertClose(await ya.toArray(), P.avgPool2d(x, ag), { dtype: 'float32', what: 'avgPool2d of a strided view' });
    // gradients through a permute reach the pool backward kernels as non-contiguous views
    for (const kind of ['max', 'avg', 'adaptive'] as const) {
      const X = put(x, device, true);
      const y =
        kind === 'max'
          ? maxPool2d(X, { kernelSize: 3, stride: 2, padding: 1 })
          : kind === 'avg'
            ? avgPool2d(X, { kernelSize: 2, stride: 1, padding: 1, countIncludePad: false })
            : adaptiveAvgPool2d(X, [4, 5]);
      const up = randomND(rng, [y.shape[0]!, y.shape[2]!, y.shape[3]!, y.shape[1]!]); // (N, OH, OW, C)
      y.permute([0, 2, 3, 1]).backward(put(up, device));
      const gy = O.permute(up, [0, 3, 1, 2]);
      const want =
        kind === 'max'
          ? P.maxPool2dGrad(x, g, gy)
          : kind === 'avg'
            ? P.avgPool2dGrad(x, ag, gy)
            : P.adaptiveAvgPool2dGrad(x, 4, 5, gy);
      assertClose(await X.grad!.toArray(), want, { dtype: 'float32', terms: 4, what: `${kind} grad, strided gy` });
    }
    const x3 = randomND(rng, [3, 5, 4]);
    const y3 = maxPool2d(put(x3, device), { kernelSize: 2 });
    assertShape(y3.shape, [3, 2, 2], 'maxPool2d of (C, H, W)');
    const want3 = P.maxPool2d(O.reshape(x3, [1, 3, 5, 4]), maxGeometry({ k: 2 })).y;
    assertClose(await y3.toArray(), want3.data, { dtype: 'float32', what: 'maxPool2d of (C, H, W)' });
  });

  test('hand-computed PyTorch values: padding divisors, ceil-mode partial windows, dilation, adaptive', async () => {
    const x3 = put(O.nd([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]), device);
    const x4 = put(
      O.nd(
        [1, 1, 4, 4],
        Array.from({ length: 16 }, (_, i) => i),
      ),
      device,
    );
    // windows of 2 at stride 2 with padding 1 over 3 rows: {pad, 0} and {1, 2}
    const incl = await avgPool2d(x3, { kernelSize: 2, stride: 2, padding: 1 }).toArray();
    assertClose(incl, [0.25, 1.25, 2.75, 7], { dtype: 'float32', what: 'avg with padding counted' });
    const excl = await avgPool2d(x3, { kernelSize: 2, stride: 2, padding: 1, countIncludePad: false }).toArray();
    assertClose(excl, [1, 2.5, 5.5, 7], { dtype: 'float32', what: 'avg without padding' });
    // ceil mode: a third window starting at row 3 covers row 3 and the right padding (divisor 2 per dim)
    const ceil = await avgPool2d(x4, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }).toArray();
    assert.equal(ceil.length, 9);
    assertClose([ceil[0]!, ceil[8]!], [10 / 9, 15 / 4], { dtype: 'float32', what: 'ceil-mode windows' });
    const dil = await maxPool2d(x4, { kernelSize: 2, stride: 1, dilation: 2 }).toArray();
    assert.deepEqual(Array.from(dil), [10, 11, 14, 15]);
    // 5 -> 3 adaptive rows: [0, 2), [1, 4), [3, 5); one column
    const x5 = put(O.nd([1, 1, 5, 1], [1, 2, 3, 4, 5]), device);
    const ad = await adaptiveAvgPool2d(x5, [3, 1]).toArray();
    assertClose(ad, [1.5, 3, 4.5], { dtype: 'float32', what: 'adaptive 5 -> 3' });
  });

  test('maxPool2d propagates NaN and never picks padding', async () => {
    const x = O.fromNested([
      [
        [
          [-5, -6, -7],
          [-8, NaN, -9],
          [-1, -2, -3],
        ],
      ],
    ]);
    const y = await maxPool2d(put(x, device), { kernelSize: 2, stride: 1, padding: 1 }).toArray();
    const want = P.maxPool2d(x, maxGeometry({ k: 2, s: 1, p: 1 })).y;
    assertClose(y, want, { dtype: 'float32', what: 'maxPool2d with a NaN' });
    assert.ok(Number.isNaN(y[5]!) && y[0] === -5, `NaN propagates and padding never wins: ${Array.from(y).join(', ')}`);
  });

  test('pooling gradients match finite differences of the oracle on tiny cases', async (t) => {
    const rng = testRng(`pool gradcheck ${device}`, t);
    const x = randomND(rng, [1, 2, 5, 4]);
    const mg = maxGeometry({ k: [3, 2], s: 2, p: 1, ceil: true });
    const ag = avgGeometry({ k: [3, 2], s: 2, p: 1, ceil: true, incl: false });
    const runs: [string, (X: Tensor) => Tensor, (xs: O.ND[]) => O.ND][] = [
      [
        'max',
        (X) => maxPool2d(X, { kernelSize: [3, 2], stride: 2, padding: 1, ceilMode: true }),
        ([a]) => P.maxPool2d(a!, mg).y,
      ],
      [
        'avg',
        (X) => avgPool2d(X, { kernelSize: [3, 2], stride: 2, padding: 1, ceilMode: true, countIncludePad: false }),
        ([a]) => P.avgPool2d(a!, ag),
      ],
      ['adaptive', (X) => adaptiveAvgPool2d(X, [3, 2]), ([a]) => P.adaptiveAvgPool2d(a!, 3, 2)],
    ];
    for (const [name, f, ref] of runs) {
      const up = randomND(rng, ref([x]).shape);
      const X = put(x, device, true);
      const y = f(X);
      assertShape(y.shape, up.shape, `${name} output`);
      y.backward(put(up, device));
      assertGradClose([await X.grad!.toArray()], ref, [x], up, { what: `${name} pool gradient` });
    }
  });

  test('float16 pooling and gradients', async (t) => {
    if (needsDTypes(device, ['float16']).skip) return t.skip(needsDTypes(device, ['float16']).skip);
    const rng = testRng(`pool f16 ${device}`, t);
    const x = randomND(rng, [2, 2, 5, 6], { dtype: 'float16' });
    for (const kind of ['max', 'avg'] as const) {
      const X = fromND(x, 'float16', device).requiresGrad_();
      const g = maxGeometry({ k: 3, s: 2, p: 1, ceil: true });
      const y =
        kind === 'max'
          ? maxPool2d(X, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true })
          : avgPool2d(X, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true });
      assert.equal(y.dtype, 'float16');
      const ag = avgGeometry({ k: 3, s: 2, p: 1, ceil: true });
      const want = kind === 'max' ? P.maxPool2d(x, g).y : P.avgPool2d(x, ag);
      assertClose(await y.toArray(), want, { dtype: 'float16', what: `f16 ${kind}Pool2d` });
      const up = randomND(rng, want.shape, { dtype: 'float16' });
      y.backward(fromND(up, 'float16', device));
      const gx = kind === 'max' ? P.maxPool2dGrad(x, g, up) : P.avgPool2dGrad(x, ag, up);
      assertClose(await X.grad!.toArray(), gx, { dtype: 'float16', what: `f16 ${kind}Pool2d grad` });
    }
  });

  test('pooling refuses bad arguments with errors naming the op and the values', () => {
    const x = put(O.nd([1, 2, 6, 6]), device);
    assertThrowsWith(() => maxPool2d(x, { kernelSize: 3, padding: 2 }), ['maxPool2d', 'padding', 'half', 'kernel 3']);
    assertThrowsWith(() => avgPool2d(x, { kernelSize: 2, padding: [0, 2] }), ['avgPool2d', 'padding 2']);
    assertThrowsWith(() => maxPool2d(put(O.nd([6, 6]), device), { kernelSize: 2 }), ['maxPool2d', '[6, 6]']);
    assertThrowsWith(() => maxPool2d(x, { kernelSize: 0 }), ['maxPool2d', 'kernel 0']);
    assertThrowsWith(() => maxPool2d(x, { kernelSize: 4, dilation: 3 }), ['maxPool2d', 'too small']);
    assertThrowsWith(() => avgPool2d(x, { kernelSize: 2, stride: 0 }), ['avgPool2d', 'stride 0']);
    assertThrowsWith(() => adaptiveAvgPool2d(x, [0, 2]), ['adaptiveAvgPool2d', 'positive']);
    const xi = tensor([1, 2, 3, 4], { shape: [1, 1, 2, 2], dtype: 'int32', device });
    assertThrowsWith(() => maxPool2d(xi, { kernelSize: 2 }), ['maxPool2d', 'int32']);
  });
});
