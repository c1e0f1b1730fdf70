// CPU device memory: a zero-filled ArrayBuffer with lazily cached typed views, `view()`, the one way
// kernels reach a buffer's elements (it refuses foreign and freed buffers with a clear error), and the
// pool that hands freed storage to the next allocation of its size class.
import type { DType, DTypeArrayMap, TypedArray } from '../../core/dtype.js';
import type { DeviceBuffer } from '../backend.js';

/** A CPU buffer. `bytes` is a multiple of 4 (at least 4), so every dtype's view covers it exactly. */
export class CpuBuffer implements DeviceBuffer {
  readonly bytes: number;
  /** The storage (zero-filled at creation); at least `bytes` long (pooled storage may be longer). */
  readonly data: ArrayBuffer;
  /** Set by `free`; any later use throws. */
  freed = false;
  private readonly views: Partial<DTypeArrayMap> = {};

  /** A buffer of `bytes` (rounded up to 4) over `storage`, or over a new ArrayBuffer. */
  constructor(bytes: number, storage?: ArrayBuffer) {
    this.bytes = cpuBufferBytes(bytes);
    this.data = storage ?? new ArrayBuffer(this.bytes);
  }

  /** The typed view of the whole buffer for dtype `d` (cached; float16 is the raw Uint16Array bits). */
  view<D extends DType>(d: D): DTypeArrayMap[D];
  view(d: DType): TypedArray {
    const cached = this.views[d];
    if (cached) return cached;
    let v: TypedArray;
    switch (d) {
      case 'float32':
        v = this.views.float32 = new Float32Array(this.data, 0, this.bytes >> 2);
        break;
      case 'float16':
        v = this.views.float16 = new Uint16Array(this.data, 0, this.bytes >> 1);
        break;
      case 'int32':
        v = this.views.int32 = new Int32Array(this.data, 0, this.bytes >> 2);
        break;
      case 'uint32':
        v = this.views.uint32 = new Uint32Array(this.data, 0, this.bytes >> 2);
        break;
      case 'bool':
        v = this.views.bool = new Uint8Array(this.data, 0, this.bytes);
        break;
    }
    return v;
  }
}

/** Checks that `buf` is a live CPU buffer and returns it. */
export function asCpuBuffer(buf: DeviceBuffer, what = 'cpu backend'): CpuBuffer {
  if (!(buf instanceof CpuBuffer)) throw new Error(`${what}: buffer was not allocated by the cpu backend`);
  if (buf.freed) throw new Error(`${what}: buffer of ${buf.bytes} bytes was used after free()`);
  return buf;
}

/** The typed view of a live CPU buffer for dtype `d` (float16: raw Uint16Array bits). */
export function view<D extends DType>(buf: DeviceBuffer, d: D): DTypeArrayMap[D] {
  return asCpuBuffer(buf).view(d);
}

/** Raw storage words of a dtype's element size, for bit-exact copies: Int32Array, Uint16Array or Uint8Array. */
export function rawView(buf: DeviceBuffer, d: DType): Int32Array | Uint16Array | Uint8Array {
  const b = asCpuBuffer(buf);
  return d === 'float16' ? b.view('float16') : d === 'bool' ? b.view('bool') : b.view('int32');
}

/** The usable size of a CPU buffer asked for `bytes`: a multiple of 4, at least 4. */
export function cpuBufferBytes(bytes: number): number {
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

/**
 * Freed storage kept for reuse, binned by size class (steps of 1/8 of a power of two, so at most 12.5%
 * is wasted). Fresh large ArrayBuffers cost a page fault per 4 KiB page on first touch, which on this
 * project's VMs measured ~40x the cost of zero-filling a reused one (200 MB: 740 ms vs 18 ms); a training
 * step frees and re-allocates the same sizes every step. Only storage of at least MIN_BYTES is pooled,
 * and at most `maxIdleBytes` waits in the pool (beyond that freed storage is left to the GC).
 */
export class StoragePool {
  /** Smaller buffers come from V8's heap cheaply and are not pooled. */
  static readonly MIN_BYTES = 64 * 1024;
  private readonly bins = new Map<number, ArrayBuffer[]>();
  /** Bytes of storage waiting in the pool. */
  idleBytes = 0;

  constructor(readonly maxIdleBytes: number) {}

  /** The storage size used for a request of `bytes` (its size class; small requests: exact). */
  static classBytes(bytes: number): number {
    const b = cpuBufferBytes(bytes);
    if (b < StoragePool.MIN_BYTES) return b;
    const step = 2 ** (Math.floor(Math.log2(b)) - 3);
    return Math.ceil(b / step) * step;
  }

  /** Zero-filled storage of `classBytes(bytes)` from the pool, or null when the class has none. */
  take(bytes: number): ArrayBuffer | null {
    const size = StoragePool.classBytes(bytes);
    if (size < StoragePool.MIN_BYTES) return null;
    const buf = this.bins.get(size)?.pop();
    if (!buf) return null;
    this.idleBytes -= size;
    new Uint8Array(buf).fill(0);
    return buf;
  }

  /** Keeps freed storage for reuse when it is poolable and the pool has room. */
  give(buf: ArrayBuffer): void {
    const size = buf.byteLength;
    if (size < StoragePool.MIN_BYTES || StoragePool.classBytes(size) !== size) return;
    if (this.idleBytes + size > this.maxIdleBytes) return;
    let bin = this.bins.get(size);
    if (!bin) this.bins.set(size, (bin = []));
    bin.push(buf);
    this.idleBytes += size;
  }

  /** Drops every idle buffer (the GC frees them). */
  clear(): void {
    this.bins.clear();
    this.idleBytes = 0;
  }
}
