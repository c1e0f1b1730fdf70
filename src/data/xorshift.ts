// The samplers' random source: xorshift32, small and fast, with a state that is a single number so that
// checkpoints can store it and a resumed run draws the same batches.

/** A seeded xorshift32 generator of uint32 values. */
export class Xorshift32 {
  private state: number;

  constructor(seed = 1) {
    this.state = seed >>> 0;
  }

  /** The next uint32 (a zero state is replaced by a fixed non-zero one: xorshift never leaves zero). */
  nextU32(): number {
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
}
