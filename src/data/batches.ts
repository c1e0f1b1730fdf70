// Random (B, T) input/target windows from a token stream, drawn with a seeded generator so a run
// is reproducible and can resume at the same position.
import { TensorloomError } from '../core/errors.js';

/** A batch on the host: inputs and next-token targets, each B*T ids in row-major order. */
export interface HostBatch {
  readonly x: Int32Array;
  readonly y: Int32Array;
  readonly batchSize: number;
  readonly blockSize: number;
}

/** Samples windows of `blockSize + 1` tokens at uniform random offsets. */
export class WindowSampler {
  private state: number;
  constructor(
    private readonly tokens: Int32Array,
    readonly batchSize: number,
    readonly blockSize: number,
    seed = 1,
  ) {
    if (tokens.length < blockSize + 2) {
      throw new TensorloomError(`WindowSampler: ${tokens.length} tokens are too few for windows of ${blockSize + 1}`);
    }
    this.state = seed >>> 0;
  }

  private nextU32(): number {
    // xorshift32: small, fast, and its state is a single number that checkpoints can store
    let x = this.state || 0x9e3779b9;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  /** The generator state (for resuming). */
  getState(): number {
    return this.state;
  }

  /** Restores a state from `getState()`. */
  setState(s: number): void {
    this.state = s >>> 0;
  }

  /** The next batch. */
  next(): HostBatch {
    const { batchSize: B, blockSize: T } = this;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    const span = this.tokens.length - T - 1;
    for (let b = 0; b < B; b++) {
      const at = this.nextU32() % span;
      x.set(this.tokens.subarray(at, at + T), b * T);
      y.set(this.tokens.subarray(at + 1, at + T + 1), b * T);
    }
    return { x, y, batchSize: B, blockSize: T };
  }
}
