// Batches of (B, T+1) token windows on the host, the sampler that draws random windows from an in-memory
// stream with a seeded generator (reproducible, resumable), and the one-transfer upload of a batch.
import { TensorloomError } from '../core/errors.js';
import { type DeviceLike, type Tensor, slice, tensor } from '../tensor/index.js';
import { Xorshift32 } from './xorshift.js';

/**
 * A batch on the host. `windows` holds the B*(T+1) ids of the batch, row-major (B, T+1): row b is a window
 * of T+1 consecutive tokens. `x` (inputs) and `y` (next-token targets) are host copies of its columns
 * [:, :T] and [:, 1:], each B*T ids, kept for code that wants them on the host. To train, upload the batch
 * once as `windows` and take x/y as views on the device (`uploadBatch`): one transfer instead of two.
 */
export interface HostBatch {
  readonly windows: Int32Array;
  readonly x: Int32Array;
  readonly y: Int32Array;
  readonly batchSize: number;
  readonly blockSize: number;
}

/** Fills `x` and `y` (each B*T) from `windows` (B*(T+1)): the inputs and the targets shifted by one. */
export function splitWindows(windows: Int32Array, B: number, T: number, x: Int32Array, y: Int32Array): void {
  for (let b = 0; b < B; b++) {
    const row = windows.subarray(b * (T + 1), (b + 1) * (T + 1));
    x.set(row.subarray(0, T), b * T);
    y.set(row.subarray(1), b * T);
  }
}

/** The batch's tensors: `windows` (B, T+1) int32, and `x`/`y` (B, T), views of its columns [:, :-1] and [:, 1:]. */
export interface DeviceBatch {
  readonly windows: Tensor;
  readonly x: Tensor;
  readonly y: Tensor;
}

/**
 * Uploads `batch` to `device` in ONE host-to-device write (its `windows`) and returns x and y as views of it,
 * sharing its storage. Dispose all three (or create them inside `tidy`); the storage lives while any does.
 */
export function uploadBatch(batch: HostBatch, device?: DeviceLike): DeviceBatch {
  const { batchSize: B, blockSize: T } = batch;
  if (batch.windows.length !== B * (T + 1))
    throw new TensorloomError(
      `uploadBatch (data/batches.ts): a batch of ${B} windows of ${T + 1} tokens needs ${B * (T + 1)} ids, got ${batch.windows.length}`,
    );
  const windows = tensor(batch.windows, { shape: [B, T + 1], dtype: 'int32', device });
  return { windows, x: slice(windows, 1, 0, T), y: slice(windows, 1, 1, T + 1) }; // (B, T) each
}

/** Samples windows of `blockSize + 1` tokens at uniform random offsets. */
export class WindowSampler {
  private readonly rng: Xorshift32;
  constructor(
    private readonly tokens: Int32Array,
    readonly batchSize: number,
    readonly blockSize: number,
    seed = 1,
  ) {
    if (tokens.length < blockSize + 2) {
      throw new TensorloomError(`WindowSampler: ${tokens.length} tokens are too few for windows of ${blockSize + 1}`);
    }
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

  /** The next batch. */
  next(): HostBatch {
    const { batchSize: B, blockSize: T } = this;
    const windows = new Int32Array(B * (T + 1));
    const span = this.tokens.length - T - 1;
    for (let b = 0; b < B; b++) {
      const at = this.rng.nextU32() % span;
      windows.set(this.tokens.subarray(at, at + T + 1), b * (T + 1));
    }
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    splitWindows(windows, B, T, x, y);
    return { windows, x, y, batchSize: B, blockSize: T };
  }
}
