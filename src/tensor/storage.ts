// Refcounted device storage shared by a tensor and all of its views. The buffer goes back to its
// backend when the last handle lets go. The version counter is bumped by every in-place write.
import type { Backend, DeviceBuffer } from '../backend/backend.js';

/** A device buffer with a reference count and an in-place version counter. */
export class Storage {
  /** Number of tensor handles (user-facing or saved-for-backward) using this storage. */
  refs = 1;
  /** Bumped on every in-place write; autograd compares it with the value recorded at save time. */
  version = 0;
  constructor(
    readonly backend: Backend,
    readonly buffer: DeviceBuffer,
  ) {}

  /** Adds a reference. */
  retain(): void {
    if (this.refs <= 0) throw new Error('internal: retain of freed storage');
    this.refs++;
  }

  /** Drops a reference; frees the buffer when none is left. */
  release(): void {
    if (--this.refs === 0) this.backend.free(this.buffer);
  }
}
