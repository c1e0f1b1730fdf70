// The procedural shapes dataset: reproducible per seed, balanced, in range, and its classes separable
// by a simple classifier written here (so a drawing bug that makes classes look alike fails).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageBatchSampler, SHAPE_CLASSES, imageBatchAt, makeShapes, type ShapesData } from '../../src/data/index.js';

test('makeShapes is deterministic per seed; seeds and splits differ', () => {
  const a = makeShapes({ count: 40, seed: 5 });
  const b = makeShapes({ count: 40, seed: 5 });
  assert.deepEqual(a.images, b.images);
  assert.deepEqual(a.labels, b.labels);
  const c = makeShapes({ count: 40, seed: 6 });
  assert.notDeepEqual(a.images, c.images);
  const t = makeShapes({ count: 40, seed: 5, split: 'test' });
  assert.notDeepEqual(a.images, t.images);
  // image i depends only on (seed, split, i): a longer split starts with the same images
  const longer = makeShapes({ count: 60, seed: 5 });
  assert.deepEqual(longer.images.subarray(0, a.images.length), a.images);
});

test('labels are balanced and pixels lie in [0, 1] with real contrast', () => {
  const d = makeShapes({ count: 96, seed: 2, size: 20, channels: 3, classes: 6 });
  assert.equal(d.images.length, 96 * 3 * 20 * 20);
  const counts = new Array<number>(6).fill(0);
  for (const l of d.labels) counts[l]!++;
  assert.deepEqual(counts, [16, 16, 16, 16, 16, 16]);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of d.images) {
    assert.ok(v >= 0 && v <= 1 && Number.isFinite(v), `pixel ${v} out of range`);
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  assert.ok(hi - lo > 0.5, `pixel range ${lo}..${hi} is too flat`);
  const per = 3 * 20 * 20;
  for (let i = 0; i < d.count; i++) {
    const img = d.images.subarray(i * per, (i + 1) * per);
    const mean = img.reduce((s, v) => s + v, 0) / per;
    const sd = Math.sqrt(img.reduce((s, v) => s + (v - mean) ** 2, 0) / per);
    assert.ok(sd > 0.05, `image ${i} is nearly blank (sd ${sd})`);
  }
});

/**
 * Colour- and position-invariant features of a grayscale image: the shape mask is every pixel far from
 * the corner (background) value; features are the mask's fill of its bounding box and the mean number
 * of mask edges per row and per column (stripes and rings have many, squares few).
 */
function features(d: ShapesData, i: number): number[] {
  const S = d.size;
  const img = d.images.subarray(i * S * S, (i + 1) * S * S);
  const bg = img[0]!;
  const on = (x: number, y: number): boolean => Math.abs(img[y * S + x]! - bg) > 0.15;
  let area = 0;
  let [x0, y0, x1, y1] = [S, S, -1, -1];
  let rowEdges = 0;
  let colEdges = 0;
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      if (on(x, y)) {
        area++;
        [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
      }
      if (x > 0 && on(x, y) !== on(x - 1, y)) rowEdges++;
      if (y > 0 && on(x, y) !== on(x, y - 1)) colEdges++;
    }
  }
  const boxArea = Math.max(1, (x1 - x0 + 1) * (y1 - y0 + 1));
  const rows = Math.max(1, y1 - y0 + 1);
  const cols = Math.max(1, x1 - x0 + 1);
  return [area / boxArea, rowEdges / rows / 2, colEdges / cols / 2];
}

test('a nearest-class-mean classifier on simple features tells the 8 classes apart', () => {
  const opts = { size: 24, channels: 1 as const, noise: 0.02, seed: 11 };
  const train = makeShapes({ ...opts, count: 400 });
  const testSet = makeShapes({ ...opts, count: 200, split: 'test' });
  const K = SHAPE_CLASSES.length;
  const sums = Array.from({ length: K }, () => [0, 0, 0]);
  const n = new Array<number>(K).fill(0);
  for (let i = 0; i < train.count; i++) {
    const f = features(train, i);
    const l = train.labels[i]!;
    f.forEach((v, j) => (sums[l]![j]! += v));
    n[l]!++;
  }
  const means = sums.map((s, k) => s.map((v) => v / n[k]!));
  let correct = 0;
  for (let i = 0; i < testSet.count; i++) {
    const f = features(testSet, i);
    let best = 0;
    let bestD = Infinity;
    means.forEach((m, k) => {
      const dist = m.reduce((s, v, j) => s + (v - f[j]!) ** 2, 0);
      if (dist < bestD) [best, bestD] = [k, dist];
    });
    if (best === testSet.labels[i]) correct++;
  }
  const acc = correct / testSet.count;
  assert.ok(acc > 0.5, `nearest-class-mean accuracy ${acc} (chance ${1 / K})`);
});

test('ImageBatchSampler resumes from its state; imageBatchAt is in order', () => {
  const d = makeShapes({ count: 30, seed: 1, size: 16, channels: 1, classes: 3 });
  const s = new ImageBatchSampler(d, 4, 9);
  s.next();
  const state = s.getState();
  const b1 = s.next();
  assert.deepEqual(b1.shape, [4, 1, 16, 16]);
  const r = new ImageBatchSampler(d, 4, 1);
  r.setState(state);
  const b2 = r.next();
  assert.deepEqual(b2.x, b1.x);
  assert.deepEqual(b2.y, b1.y);
  // each sampled image is one of the dataset's, with its label
  const per = 16 * 16;
  for (let b = 0; b < 4; b++) {
    const img = b1.x.subarray(b * per, (b + 1) * per);
    const i = [...Array(d.count).keys()].find((k) =>
      d.images.subarray(k * per, (k + 1) * per).every((v, j) => v === img[j]),
    );
    assert.ok(i !== undefined, `batch image ${b} is not in the dataset`);
    assert.equal(b1.y[b], d.labels[i]);
  }
  const e = imageBatchAt(d, 10, 5);
  assert.deepEqual([...e.y], [...d.labels.subarray(10, 15)]);
  assert.deepEqual(e.x, d.images.subarray(10 * per, 15 * per));
  assert.throws(() => imageBatchAt(d, 28, 5), /out of range for a split of 30/);
});

test('bad dataset options are refused with the value', () => {
  assert.throws(() => makeShapes({ count: 0, seed: 1 }), /count must be a positive integer, got 0/);
  assert.throws(() => makeShapes({ count: 4, seed: 1, classes: 9 }), /classes must be an integer in \[2, 8\], got 9/);
  assert.throws(() => makeShapes({ count: 4, seed: 1, size: 8 }), /size must be an integer in \[12, 256\], got 8/);
  assert.throws(() => new ImageBatchSampler(makeShapes({ count: 4, seed: 1 }), 0), /batch size/);
});
