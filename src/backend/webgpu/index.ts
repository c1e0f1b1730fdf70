// The WebGPU backend: memory from the buffer pool, kernels from the WGSL kernel table recorded into
// batched command buffers, reads through pooled staging buffers. `initWebGPU()` creates it (the frontend
// registers it); `destroyWebGPU()` releases the device.
import { makeTypedArray, type DType, type TypedArray } from '../../core/dtype.js';
import { isContiguous, numel } from '../../core/shape.js';
import type { Attrs, KernelOp } from '../../ops/opcodes.js';
import {
  emptyStats,
  isScalar,
  type Backend,
  type BackendCaps,
  type BackendStats,
  type DeviceBuffer,
  type KernelProfile,
  type Operand,
  type TensorSpec,
} from '../backend.js';
import { CHECK_BYTES, DeviceChecks } from './checks.js';
import { acquireDevice, type AcquireOptions, type AdapterSummary, type GpuDevice } from './device.js';
import type { Dispatch, KernelContext, WebGPUKernel } from './kernel.js';
import { KERNELS } from './kernels/index.js';
import { BufferPool, asGpuBuffer, type GpuBuffer, type PoolStats } from './pool.js';
import { Runtime } from './runtime.js';

export type { AdapterSummary, AcquireOptions } from './device.js';
export type { PoolStats } from './pool.js';

/** Bytes per element in WebGPU storage: bool is a 32-bit word (WGSL has no 8-bit storage type). */
export const WEBGPU_ELEMENT_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  int32: 4,
  uint32: 4,
  bool: 4,
};

/** The WebGPU backend over one device. */
export class WebGPUBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly caps: BackendCaps;
  /** What was found: adapter identity, backend, features. */
  readonly adapter: AdapterSummary;
  private readonly gpu: GpuDevice;
  private readonly counters: BackendStats = emptyStats();
  private readonly pool: BufferPool;
  private readonly runtime: Runtime;
  private readonly ctx: KernelContext;
  private readonly checks: DeviceChecks;
  private scratch: GpuBuffer[] = [];

  constructor(gpu: GpuDevice) {
    this.gpu = gpu;
    this.adapter = gpu.adapter;
    const a = gpu.adapter;
    const name =
      [a.vendor, a.architecture, a.device, a.description].filter((s) => s !== '').join(' ') || 'unknown adapter';
    this.caps = {
      dtypes: gpu.f16 ? ['bool', 'uint32', 'int32', 'float16', 'float32'] : ['bool', 'uint32', 'int32', 'float32'],
      description: `${name} (${a.backend}${a.software ? ', software' : ''})`,
      software: a.software,
      elementBytes: WEBGPU_ELEMENT_BYTES,
    };
    this.pool = new BufferPool(gpu, this.counters);
    this.runtime = new Runtime(gpu, this.counters);
    this.checks = new DeviceChecks(gpu);
    const checks = this.checks;
    const l = gpu.limits;
    this.ctx = {
      limits: {
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      },
      f16: gpu.f16,
      scratch: (bytes) => {
        const b = this.pool.alloc(bytes);
        this.scratch.push(b);
        return b;
      },
      checks: { buffer: checks.buffer, code: (op, message, format) => checks.code(op, message, format) },
    };
  }

  /** Allocates at least `bytes` bytes (pooled; reads as zero until written). */
  alloc(bytes: number): DeviceBuffer {
    this.gpu.check();
    return this.pool.alloc(bytes);
  }

  /** Returns a buffer to the pool; work already enqueued on it still sees its data. */
  free(buf: DeviceBuffer): void {
    this.pool.release(asGpuBuffer(buf, 'webgpu free'));
  }

  /** Uploads host-format data (bool as 0/1 bytes) at element `offset`, ordered after all enqueued work. */
  write(buf: DeviceBuffer, dtype: DType, data: TypedArray, offset: number): void {
    this.gpu.check();
    this.checkDType(dtype, 'write');
    const b = asGpuBuffer(buf, 'webgpu write');
    const eb = WEBGPU_ELEMENT_BYTES[dtype];
    const start = offset * eb;
    const len = data.length * eb;
    if (offset < 0 || start + len > b.bytes) {
      throw new RangeError(
        `webgpu write: ${data.length} ${dtype} elements at ${offset} overflow a buffer of ${b.bytes} bytes`,
      );
    }
    if (len === 0) return;
    let src: ArrayBufferView = dtype === 'bool' ? Uint32Array.from(data, (v) => (v !== 0 ? 1 : 0)) : data;
    const end = start + len;
    if (start % 4 !== 0 || (end % 4 !== 0 && end < b.requested)) return this.writeUnaligned(b, dtype, data, offset);
    if (end % 4 !== 0) {
      const padded = new Uint16Array(data.length + 1); // float16 tail: the pad lands past the tensor's bytes
      padded.set(data);
      src = padded;
    }
    if (b.needsZero) {
      if (start === 0 && len >= b.requested) b.needsZero = false;
      else this.runtime.zero(b);
    }
    const size = Math.ceil(len / 4) * 4;
    if (b.batch !== this.runtime.serial) {
      // the open batch does not touch b, so a queue write (which lands before the batch) is in order
      this.gpu.device.queue.writeBuffer(b.gpu, start, src.buffer, src.byteOffset, size);
    } else {
      // b is used by recorded, unsubmitted work: stage through a buffer the batch does not touch and copy in order
      const tmp = this.pool.alloc(size, this.runtime.serial);
      this.gpu.device.queue.writeBuffer(tmp.gpu, 0, src.buffer, src.byteOffset, size);
      this.runtime.copyEncoder().copyBufferToBuffer(tmp.gpu, 0, b.gpu, start, size);
      tmp.batch = this.runtime.serial;
      this.pool.release(tmp);
    }
    this.counters.bytesUploaded += data.byteLength;
  }

  /** Reads `count` elements from element `offset` as host-format data (captured at call time). */
  async read(buf: DeviceBuffer, dtype: DType, offset: number, count: number): Promise<TypedArray> {
    this.gpu.check();
    this.checkDType(dtype, 'read');
    if (count === 0) return makeTypedArray(dtype, 0);
    const b = asGpuBuffer(buf, 'webgpu read');
    const eb = WEBGPU_ELEMENT_BYTES[dtype];
    const start = offset * eb;
    const len = count * eb;
    if (offset < 0 || count < 0 || start + len > b.bytes) {
      throw new RangeError(
        `webgpu read: ${count} ${dtype} elements at ${offset} overflow a buffer of ${b.bytes} bytes`,
      );
    }
    this.counters.bytesDownloaded += count * (dtype === 'bool' ? 1 : eb);
    if (b.needsZero) return makeTypedArray(dtype, count);
    const s0 = start - (start % 4);
    const size = Math.ceil((start + len - s0) / 4) * 4;
    let out: TypedArray | undefined;
    const failed = await this.download(b.gpu, s0, size, (bytes) => (out = hostCopy(dtype, bytes, start - s0, count)));
    if (failed) this.checks.raise(failed);
    return out!;
  }

  /** Compiles the pipelines `run` would use for this signature (warmup; records nothing). */
  prepare<K extends KernelOp>(
    op: K,
    inputs: readonly Operand[],
    output: TensorSpec,
    attrs: Attrs<K>,
    aux: readonly TensorSpec[] = [],
  ): void {
    this.gpu.check();
    if (aux.length > 0) inputs = [...inputs, ...aux]; // auxiliary outputs follow the inputs (see Backend.run)
    this.checkOperands(op, inputs, output);
    try {
      this.runtime.prepare(this.dispatches(op, inputs, output, attrs));
    } finally {
      this.releaseScratch();
    }
  }

  /** Records op `op`'s dispatches into the open batch. */
  run<K extends KernelOp>(
    op: K,
    inputs: readonly Operand[],
    output: TensorSpec,
    attrs: Attrs<K>,
    aux: readonly TensorSpec[] = [],
  ): void {
    this.gpu.check();
    const t0 = this.runtime.profiler.active ? performance.now() : 0;
    this.checkOperands(op, inputs, output);
    for (const x of inputs) {
      if (isScalar(x)) continue;
      const b = asGpuBuffer(x.buffer, `webgpu ${op}`);
      if (b.needsZero) this.runtime.zero(b);
    }
    // auxiliary outputs are fresh contiguous tensors the kernel writes whole; it sees them after the inputs
    for (const a of aux) {
      this.checkDType(a.dtype, op);
      asGpuBuffer(a.buffer, `webgpu ${op}`).needsZero = false;
    }
    if (aux.length > 0) inputs = [...inputs, ...aux];
    const ob = asGpuBuffer(output.buffer, `webgpu ${op}`);
    const eb = WEBGPU_ELEMENT_BYTES[output.dtype];
    const whole =
      output.offset === 0 && numel(output.shape) * eb >= ob.requested && isContiguous(output.shape, output.strides);
    if (ob.needsZero && !whole) this.runtime.zero(ob);
    try {
      for (const d of this.dispatches(op, inputs, output, attrs)) this.runtime.record(d);
    } finally {
      this.releaseScratch();
    }
    ob.needsZero = false; // fully written by the op (or zeroed above)
    if (this.runtime.profiler.active) this.runtime.profiler.opDone(performance.now() - t0);
  }

  /** Submits the open batch and resolves when the device has finished all work (throws recorded errors). */
  async sync(): Promise<void> {
    this.gpu.check();
    if (this.checks.armed) {
      const failed = await this.download(null, 0, 0, () => undefined);
      if (failed) this.checks.raise(failed);
      return;
    }
    this.runtime.flush();
    await this.gpu.device.queue.onSubmittedWorkDone();
    await this.gpu.settle();
  }

  /** Current counters. */
  stats(): BackendStats {
    return { ...this.counters };
  }

  /** Starts (clearing earlier records) or stops per-kernel profiling; GPU-timed where timestamp-query exists. */
  setProfiling(on: boolean): void {
    this.runtime.profiler.set(on);
  }

  /** Submits enqueued work, reads back the timestamps, and returns and clears the per-kernel records. */
  async takeProfile(): Promise<KernelProfile> {
    this.gpu.check();
    const p = this.runtime.profiler;
    if (p.unread) p.resolve(this.runtime.copyEncoder());
    this.runtime.flush();
    const profile = await p.take();
    await this.gpu.settle();
    return profile;
  }

  /** Pool statistics (hits, misses, bytes held for reuse). */
  poolStats(): PoolStats {
    return { ...this.pool.poolStats };
  }

  /** Submits enqueued work, then destroys every pooled (free) buffer; returns the bytes released. */
  trimPool(): number {
    this.runtime.flush();
    this.runtime.clearBindGroups();
    return this.pool.trim();
  }

  /** Destroys the device; the backend is unusable afterwards. */
  destroy(): void {
    this.gpu.destroy();
  }

  /**
   * Submits the open batch with a copy of `size` bytes of `src` at `offset` (and of the check words when
   * armed) into a staging buffer, maps it, hands the bytes to `consume`, and returns the check words
   * when one was recorded (the caller raises after its own bookkeeping).
   */
  private async download(
    src: GPUBuffer | null,
    offset: number,
    size: number,
    consume: (bytes: ArrayBuffer) => void,
  ): Promise<Uint32Array | null> {
    const armed = this.checks.armed;
    const total = size + (armed ? CHECK_BYTES : 0);
    const staging = this.pool.acquireStaging(total);
    const enc = this.runtime.copyEncoder();
    if (src && size > 0) enc.copyBufferToBuffer(src, offset, staging, 0, size);
    if (armed) {
      enc.copyBufferToBuffer(this.checks.buffer.gpu, 0, staging, size, CHECK_BYTES);
      enc.clearBuffer(this.checks.buffer.gpu, 0, CHECK_BYTES);
      this.checks.armed = false;
    }
    this.runtime.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, total);
    } catch (e) {
      await this.gpu.settle();
      throw new Error(`webgpu: reading back ${size} bytes failed: ${(e as Error).message}`);
    }
    let words: Uint32Array | null = null;
    try {
      const bytes = staging.getMappedRange(0, total);
      consume(bytes);
      if (armed) words = new Uint32Array(bytes, size, CHECK_BYTES / 4).slice();
    } finally {
      staging.unmap();
      this.pool.releaseStaging(staging);
    }
    await this.gpu.settle(); // a failed batch must not hand back stale data
    return words && words[0] !== 0 ? words : null;
  }

  /** Refuses dtypes the device cannot hold before anything is compiled or recorded. */
  private checkOperands(op: KernelOp, inputs: readonly Operand[], output: TensorSpec): void {
    this.checkDType(output.dtype, op);
    for (const x of inputs) if (!isScalar(x)) this.checkDType(x.dtype, op);
  }

  private checkDType(dtype: DType, what: string): void {
    if (!this.caps.dtypes.includes(dtype)) {
      throw new Error(
        `webgpu ${what}: ${dtype} is not supported on this device (supported: ${this.caps.dtypes.join(', ')}${dtype === 'float16' ? '; float16 needs shader-f16' : ''})`,
      );
    }
  }

  private dispatches<K extends KernelOp>(
    op: K,
    inputs: readonly Operand[],
    output: TensorSpec,
    attrs: Attrs<K>,
  ): readonly Dispatch[] {
    const kernel = KERNELS[op] as WebGPUKernel<K>;
    return kernel(inputs, output, attrs, this.ctx);
  }

  private releaseScratch(): void {
    for (const b of this.scratch) this.pool.release(b);
    this.scratch = [];
  }

  /** A float16 write that does not start/end on a 4-byte boundary: upload to scratch, then copy on the GPU. */
  private writeUnaligned(b: GpuBuffer, dtype: DType, data: TypedArray, offset: number): void {
    const tmp = this.pool.alloc(data.length * WEBGPU_ELEMENT_BYTES[dtype]);
    try {
      tmp.needsZero = false;
      this.write(tmp, dtype, data, 0);
      const src: TensorSpec = { buffer: tmp, dtype, shape: [data.length], strides: [1], offset: 0 };
      this.run('copy', [src], { buffer: b, dtype, shape: [data.length], strides: [1], offset }, {});
    } finally {
      this.pool.release(tmp);
    }
  }
}

/** Copies `count` elements at byte `at` of mapped memory into a new host-format array (bool words -> 0/1 bytes). */
function hostCopy(dtype: DType, bytes: ArrayBuffer, at: number, count: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(bytes, at, count).slice();
    case 'float16':
      return new Uint16Array(bytes, at, count).slice();
    case 'int32':
      return new Int32Array(bytes, at, count).slice();
    case 'uint32':
      return new Uint32Array(bytes, at, count).slice();
    case 'bool':
      return Uint8Array.from(new Uint32Array(bytes, at, count), (w) => (w !== 0 ? 1 : 0));
  }
}

let current: WebGPUBackend | null = null;

/**
 * Finds a WebGPU adapter (see `acquireDevice` for the order), creates the device and returns a new
 * backend. Registers nothing: the frontend registers it. Throws when no adapter is found.
 */
export async function initWebGPU(opts: AcquireOptions = {}): Promise<WebGPUBackend> {
  const b = new WebGPUBackend(await acquireDevice(opts));
  current = b;
  return b;
}

/**
 * Destroys the device of the backend made by the last `initWebGPU()` (or of `b`). Not needed for a
 * Node process to exit; use it to release GPU memory early. The backend is unusable afterwards.
 */
export function destroyWebGPU(b: WebGPUBackend | null = current): void {
  b?.destroy();
  if (b === current) current = null;
}
