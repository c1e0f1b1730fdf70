// Device memory for the WebGPU backend: tensor buffers pooled by size class (free lists per class, so a
// steady-state step creates no buffer), a small pool of MAP_READ staging buffers for readback, and the
// statistics behind Backend.stats(). Reuse after free is safe: every command runs in order on one queue.
import type { BackendStats, DeviceBuffer } from '../backend.js';
import type { GpuDevice } from './device.js';

/** Below this, size classes are powers of two; above, quarter-power-of-two steps (waste <= 25%). */
const FINE_ABOVE = 1 << 20;
/** Smallest class (bytes): a multiple of 16, so vec4 bindings of any pooled buffer are valid. */
const MIN_CLASS = 64;
/** Staging buffers kept per size class (readbacks in flight at once are few). */
const STAGING_PER_CLASS = 4;

/**
 * The pooled size class of a request: the next power of two up to 1 MiB, then the next multiple of
 * a quarter of the enclosing power of two (1, 1.25, 1.5, 1.75, 2 MiB, ...). Always a multiple of 16.
 */
export function sizeClass(bytes: number): number {
  if (bytes <= MIN_CLASS) return MIN_CLASS;
  if (bytes <= FINE_ABOVE) return 2 ** Math.ceil(Math.log2(bytes));
  const step = 2 ** Math.floor(Math.log2(bytes)) / 4;
  return Math.ceil(bytes / step) * step;
}

let nextId = 1;

/** A pooled storage buffer handed to the frontend (usage STORAGE | COPY_SRC | COPY_DST). */
export class GpuBuffer implements DeviceBuffer {
  /** Usable size: the size class (at least the bytes requested). */
  readonly bytes: number;
  readonly gpu: GPUBuffer;
  /** Stable id (bind-group cache keys). */
  readonly id: number;
  /** Bytes asked for by the current owner. */
  requested = 0;
  /** Set by free(); any later use throws. */
  freed = false;
  /**
   * True while the contents are stale pool data that the owner has not overwritten yet: the runtime
   * zeroes the buffer before a partial write or a read (alloc promises zero-filled memory).
   */
  needsZero = false;
  /** Serial of the last unsubmitted batch that touched the buffer (host writes must not jump ahead of it). */
  batch = -1;

  constructor(gpu: GPUBuffer, bytes: number) {
    this.gpu = gpu;
    this.bytes = bytes;
    this.id = nextId++;
  }
}

/** Checks that `buf` is a live buffer of this backend and returns it. */
export function asGpuBuffer(buf: DeviceBuffer, what: string): GpuBuffer {
  if (!(buf instanceof GpuBuffer)) throw new Error(`${what}: buffer was not allocated by the webgpu backend`);
  if (buf.freed) throw new Error(`${what}: buffer of ${buf.bytes} bytes was used after free()`);
  return buf;
}

/** Pool statistics beyond BackendStats. */
export interface PoolStats {
  hits: number;
  misses: number;
  /** Bytes held in free lists (ready for reuse). */
  pooledBytes: number;
  stagingCreated: number;
}

/** The buffer pool of one device. Counters are written into the backend's shared stats record. */
export class BufferPool {
  readonly poolStats: PoolStats = { hits: 0, misses: 0, pooledBytes: 0, stagingCreated: 0 };
  private readonly free = new Map<number, GpuBuffer[]>();
  private readonly staging = new Map<number, GPUBuffer[]>();
  private readonly dev: GpuDevice;
  private readonly counters: BackendStats;

  constructor(dev: GpuDevice, counters: BackendStats) {
    this.dev = dev;
    this.counters = counters;
  }

  /**
   * A buffer of at least `bytes` bytes. Pool hits come back flagged `needsZero`; new buffers are zero.
   * With `avoidBatch`, a pooled buffer touched by that (open) batch is not handed out (upload staging).
   */
  alloc(bytes: number, avoidBatch = -1): GpuBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`webgpu: cannot allocate ${bytes} bytes`);
    const cls = this.classOf(bytes);
    const list = this.free.get(cls);
    let buf: GpuBuffer | undefined;
    if (list && avoidBatch >= 0) {
      for (let i = list.length - 1; i >= 0 && !buf; i--) if (list[i]!.batch !== avoidBatch) buf = list.splice(i, 1)[0];
    } else {
      buf = list?.pop();
    }
    if (buf) {
      this.poolStats.hits++;
      this.poolStats.pooledBytes -= cls;
      buf.needsZero = true;
      buf.freed = false;
    } else {
      const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
      buf = new GpuBuffer(this.dev.createBuffer(cls, usage, 'tensor buffer'), cls);
      this.poolStats.misses++;
      this.counters.buffersCreated++;
    }
    buf.requested = bytes;
    this.counters.liveBuffers++;
    this.counters.liveBytes += cls;
    return buf;
  }

  /** Returns a buffer to its free list (commands already recorded that use it still see their data). */
  release(buf: GpuBuffer): void {
    buf.freed = true;
    this.counters.liveBuffers--;
    this.counters.liveBytes -= buf.bytes;
    let list = this.free.get(buf.bytes);
    if (!list) this.free.set(buf.bytes, (list = []));
    list.push(buf);
    this.poolStats.pooledBytes += buf.bytes;
  }

  /** A MAP_READ | COPY_DST staging buffer of at least `bytes` bytes (unmapped). */
  acquireStaging(bytes: number): GPUBuffer {
    const cls = this.classOf(bytes);
    const hit = this.staging.get(cls)?.pop();
    if (hit) return hit;
    this.poolStats.stagingCreated++;
    return this.dev.createBuffer(cls, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'readback staging buffer');
  }

  /** Returns an unmapped staging buffer (kept for reuse up to a few per size, else destroyed). */
  releaseStaging(buf: GPUBuffer): void {
    let list = this.staging.get(buf.size);
    if (!list) this.staging.set(buf.size, (list = []));
    if (list.length < STAGING_PER_CLASS) list.push(buf);
    else buf.destroy();
  }

  /** The size class, or the exact size (rounded to 16) when the class would pass the device's maxBufferSize. */
  private classOf(bytes: number): number {
    const cls = sizeClass(bytes);
    return cls > this.dev.limits.maxBufferSize ? Math.ceil(bytes / 16) * 16 : cls;
  }

  /** Destroys every pooled (free) buffer and staging buffer; returns the bytes released. */
  trim(): number {
    let n = 0;
    for (const list of this.free.values()) {
      for (const b of list) {
        n += b.bytes;
        b.gpu.destroy();
      }
    }
    for (const list of this.staging.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.staging.clear();
    this.poolStats.pooledBytes = 0;
    return n;
  }
}
