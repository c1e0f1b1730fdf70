// A procedurally drawn image dataset for training convolutional networks without downloads: small
// images of simple shapes (circle, square, triangle, ...) at random positions, sizes and colours with
// pixel noise, labelled by shape. Image i of a split depends only on (seed, split, i), so a dataset is
// reproducible and both splits are generated independently.
import { TensorloomError } from '../core/errors.js';
import { Xorshift32 } from './xorshift.js';

/**
 * The shape classes, in label order (label k draws SHAPE_CLASSES[k]). A dataset of N classes uses the
 * first N, so the order runs from the easiest pair (stripe orientation: one oriented filter tells them
 * apart, good for quick tests) to the subtler outlines.
 */
export const SHAPE_CLASSES = [
  'hstripes',
  'vstripes',
  'circle',
  'cross',
  'triangle',
  'square',
  'ring',
  'diamond',
] as const;

/** The name of a shape class. */
export type ShapeClass = (typeof SHAPE_CLASSES)[number];

/** How a shapes dataset is drawn. */
export interface ShapesOptions {
  /** Images in the split. */
  count: number;
  /** Side of the square images in pixels (default 24, at least 12). */
  size?: number;
  /** 3 for RGB, 1 for grayscale (default 3). */
  channels?: 1 | 3;
  /** Number of classes: the first `classes` of SHAPE_CLASSES (default all 8, at least 2). */
  classes?: number;
  /** Standard deviation of the Gaussian pixel noise (default 0.05; pixels are then clamped to [0, 1]). */
  noise?: number;
  /** Seed of the whole dataset (both splits). */
  seed: number;
  /** Which split: images of different splits are drawn from different streams (default 'train'). */
  split?: 'train' | 'test';
}

/** A labelled image split on the host, images (N, C, H, W) row-major in [0, 1]. */
export interface ShapesData {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly count: number;
  readonly channels: number;
  readonly size: number;
  readonly classes: number;
}

/** One batch on the host: x (B, C, H, W) and labels (B), ready for one upload each. */
export interface HostImageBatch {
  readonly x: Float32Array;
  readonly y: Int32Array;
  /** [B, C, H, W]. */
  readonly shape: [number, number, number, number];
}

/** mulberry32: a small PRNG whose whole state is one 32-bit number. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes (seed, split, index) into one 32-bit seed (murmur3's finalizer over a running hash). */
function imageSeed(seed: number, split: number, index: number): number {
  let h = (seed ^ Math.imul(split + 1, 0x9e3779b1)) >>> 0;
  for (const v of [Math.floor(seed / 2 ** 32), index]) {
    h = Math.imul(h ^ (v >>> 0), 0xcc9e2d51);
    h = ((h << 15) | (h >>> 17)) >>> 0;
    h = Math.imul(h, 0x1b873593) ^ 0xe6546b64;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Signed distance in pixels from (px, py) to the shape `kind` of radius r centred at the origin:
 * negative inside. Stripes are a square patch whose alternate bands are outside.
 */
function signedDistance(kind: ShapeClass, px: number, py: number, r: number): number {
  const ax = Math.abs(px);
  const ay = Math.abs(py);
  switch (kind) {
    case 'circle':
      return Math.hypot(px, py) - r;
    case 'square':
      return Math.max(ax, ay) - 0.8 * r;
    case 'diamond':
      return (ax + ay - r) / Math.SQRT2;
    case 'ring':
      return Math.abs(Math.hypot(px, py) - 0.75 * r) - 0.25 * r;
    case 'cross': {
      const w = 0.3 * r;
      return Math.min(Math.max(ax - r, ay - w), Math.max(ax - w, ay - r));
    }
    case 'triangle': {
      // upward equilateral triangle: the max of the distances to its three edge lines
      const s = 0.5; // sin 30°
      const c = Math.sqrt(3) / 2;
      const base = py - 0.5 * r;
      const left = -c * px - s * py - 0.5 * r;
      const right = c * px - s * py - 0.5 * r;
      return Math.max(base, left, right);
    }
    case 'hstripes':
    case 'vstripes': {
      const box = Math.max(ax, ay) - 0.85 * r;
      const period = Math.max(4, (2 * r) / 3);
      const t = kind === 'hstripes' ? py + r : px + r;
      const m = ((t % period) + period) % period; // position within a period
      const band = Math.abs(m - period / 2) - period / 4; // inside the dark half of each period
      return Math.max(box, -band);
    }
  }
}

/** Relative luminance of an RGB colour (for the contrast check and grayscale images). */
function luma(c: readonly number[]): number {
  return 0.299 * c[0]! + 0.587 * c[1]! + 0.114 * c[2]!;
}

/** Draws image `index` into `out` at `offset` (C*S*S floats) and returns its label. */
function drawImage(out: Float32Array, offset: number, index: number, o: Required<ShapesOptions>): number {
  const { size: S, channels: C, classes, noise } = o;
  const r = rng(imageSeed(o.seed, o.split === 'train' ? 0 : 1, index));
  const label = index % classes; // exact class balance; samplers shuffle
  const kind = SHAPE_CLASSES[label]!;
  const radius = S * (0.22 + 0.16 * r());
  const margin = radius + 1;
  const cx = margin + r() * (S - 2 * margin);
  const cy = margin + r() * (S - 2 * margin);
  let bg: number[];
  let fg: number[];
  do {
    bg = [r(), r(), r()];
    fg = [r(), r(), r()];
  } while (Math.abs(luma(fg) - luma(bg)) < 0.3); // a visible shape in grayscale too
  if (C === 1) {
    bg = [luma(bg)];
    fg = [luma(fg)];
  }
  let spare: number | null = null;
  const gauss = (): number => {
    if (spare !== null) {
      const g = spare;
      spare = null;
      return g;
    }
    const u1 = 1 - r();
    const u2 = r();
    const m = Math.sqrt(-2 * Math.log(u1));
    spare = m * Math.sin(2 * Math.PI * u2);
    return m * Math.cos(2 * Math.PI * u2);
  };
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      // coverage from the signed distance at the pixel centre: a one-pixel anti-aliased edge
      const d = signedDistance(kind, x + 0.5 - cx, y + 0.5 - cy, radius);
      const cover = Math.min(1, Math.max(0, 0.5 - d));
      for (let c = 0; c < C; c++) {
        const v = bg[c]! + (fg[c]! - bg[c]!) * cover + (noise > 0 ? noise * gauss() : 0);
        out[offset + (c * S + y) * S + x] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return label;
}

/** Validates options and fills in the defaults. */
function resolve(opts: ShapesOptions): Required<ShapesOptions> {
  const o: Required<ShapesOptions> = {
    size: 24,
    channels: 3,
    classes: SHAPE_CLASSES.length,
    noise: 0.05,
    split: 'train',
    ...opts,
  };
  const bad = (what: string): never => {
    throw new TensorloomError(`shapes dataset: ${what}`);
  };
  if (!Number.isInteger(o.count) || o.count < 1) bad(`count must be a positive integer, got ${o.count}`);
  if (!Number.isInteger(o.size) || o.size < 12 || o.size > 256)
    bad(`size must be an integer in [12, 256], got ${o.size}`);
  if (o.channels !== 1 && o.channels !== 3) bad(`channels must be 1 or 3, got ${String(o.channels)}`);
  if (!Number.isInteger(o.classes) || o.classes < 2 || o.classes > SHAPE_CLASSES.length)
    bad(`classes must be an integer in [2, ${SHAPE_CLASSES.length}], got ${o.classes}`);
  if (!(o.noise >= 0 && o.noise <= 1)) bad(`noise must be in [0, 1], got ${o.noise}`);
  if (!Number.isSafeInteger(o.seed)) bad(`seed must be a safe integer, got ${o.seed}`);
  if (o.split !== 'train' && o.split !== 'test') bad(`split must be 'train' or 'test', got ${String(o.split)}`);
  return o;
}

/**
 * Draws a labelled split of shape images: `count` images (N, C, size, size) with values in [0, 1] and
 * labels in [0, classes), each class exactly count/classes times (up to rounding), in cyclic order.
 */
export function makeShapes(opts: ShapesOptions): ShapesData {
  const o = resolve(opts);
  const per = o.channels * o.size * o.size;
  const images = new Float32Array(o.count * per);
  const labels = new Int32Array(o.count);
  for (let i = 0; i < o.count; i++) labels[i] = drawImage(images, i * per, i, o);
  return { images, labels, count: o.count, channels: o.channels, size: o.size, classes: o.classes };
}

/** Copies images `idx` of `data` into one batch. */
function gather(data: ShapesData, idx: ArrayLike<number>): HostImageBatch {
  const per = data.channels * data.size * data.size;
  const B = idx.length;
  const x = new Float32Array(B * per);
  const y = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const i = idx[b]!;
    x.set(data.images.subarray(i * per, (i + 1) * per), b * per);
    y[b] = data.labels[i]!;
  }
  return { x, y, shape: [B, data.channels, data.size, data.size] };
}

/**
 * Random batches of a split (uniform sampling with replacement), drawn with a xorshift32 generator whose
 * single-number state is checkpointed so a resumed run continues with the same batches.
 */
export class ImageBatchSampler {
  private readonly rng: Xorshift32;

  constructor(
    readonly data: ShapesData,
    readonly batchSize: number,
    seed = 1,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new TensorloomError(`ImageBatchSampler: batch size must be a positive integer, got ${batchSize}`);
    this.rng = new Xorshift32(seed);
  }

  /** The generator state (for resuming). */
  getState(): number {
    return this.rng.getState();
  }

  /** Restores a state from `getState()`. */
  setState(s: number): void {
    this.rng.setState(s);
  }

  /** The next random batch. */
  next(): HostImageBatch {
    const idx = Array.from({ length: this.batchSize }, () => this.rng.nextU32() % this.data.count);
    return gather(this.data, idx);
  }
}

/** The images [start, start + count) of a split as one batch (for evaluation in a fixed order). */
export function imageBatchAt(data: ShapesData, start: number, count: number): HostImageBatch {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 || start + count > data.count)
    throw new TensorloomError(
      `imageBatchAt: images [${start}, ${start + count}) are out of range for a split of ${data.count}`,
    );
  return gather(
    data,
    Array.from({ length: count }, (_, k) => start + k),
  );
}
