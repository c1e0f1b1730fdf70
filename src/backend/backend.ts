// The backend interface and registry. A backend is memory (alloc, free, write, read) plus kernels
// (prepare, run) plus capabilities as data. Backends import only this file, ops/ and core/.
import type { DType, TypedArray } from '../core/dtype.js';
import type { Attrs, KernelOp } from '../ops/opcodes.js';

/** Device names. */
export type DeviceName = 'cpu' | 'webgpu';

/** A block of device memory. Opaque to the frontend; `bytes` is its usable size. */
export interface DeviceBuffer {
  readonly bytes: number;
}

/**
 * A tensor as a kernel sees it: a buffer plus an element offset, shape and element strides.
 * Inputs of elementwise ops arrive already broadcast to the output shape (stride 0 on stretched dims).
 */
export interface TensorSpec {
  readonly buffer: DeviceBuffer;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

/** A JS number operand of an elementwise op (passed as a kernel constant, never uploaded as a tensor). */
export interface ScalarSpec {
  readonly scalar: number;
  readonly dtype: DType;
}

/** An input of a kernel. */
export type Operand = TensorSpec | ScalarSpec;

/** True when an operand is a scalar constant. */
export function isScalar(o: Operand): o is ScalarSpec {
  return (o as ScalarSpec).scalar !== undefined;
}

/** What a backend can do, as data. */
export interface BackendCaps {
  /** Dtypes the backend stores and computes. */
  readonly dtypes: readonly DType[];
  /** Human-readable description (adapter name, software or not, threads, ...). */
  readonly description: string;
  /** True when the device is a software emulation (e.g. llvmpipe / lavapipe). */
  readonly software: boolean;
  /** Bytes per element in device storage (WebGPU stores bool as 32-bit words); the frontend allocates numel * this. */
  readonly elementBytes: Readonly<Record<DType, number>>;
}

/** Live-memory and activity counters of a backend. Counters only grow; live values go up and down. */
export interface BackendStats {
  liveBuffers: number;
  liveBytes: number;
  buffersCreated: number;
  bytesUploaded: number;
  bytesDownloaded: number;
  dispatches: number;
  submits: number;
  compiles: number;
}

/** Where a kernel profile's times come from. */
export type ProfileTiming =
  /** GPU timestamps around each dispatch (WebGPU with 'timestamp-query'). */
  | 'gpu-timestamps'
  /** Host wall time of each kernel, which is its execution time (CPU kernels run synchronously). */
  | 'host-wall'
  /** Host time to record each kernel's dispatches, not their execution (WebGPU without timestamps). */
  | 'host-record';

/** One kernel's profile, aggregated over the profiled work. */
export interface KernelTiming {
  /** Kernel name: the op name, plus its specialization where the backend has several (WebGPU programs). */
  readonly name: string;
  /** Times it ran: run() calls on the CPU, dispatches on WebGPU. */
  readonly count: number;
  /** Host milliseconds spent in run() for it (see ProfileTiming for what that covers). */
  readonly hostMs: number;
  /** Device milliseconds from GPU timestamps; null when there are none. */
  readonly deviceMs: number | null;
}

/** What a backend's per-kernel profiling collected. */
export interface KernelProfile {
  readonly timing: ProfileTiming;
  /** What the times mean, in words (and why there are no GPU timestamps when there are none). */
  readonly note: string;
  /** One row per kernel name, in no particular order. */
  readonly kernels: readonly KernelTiming[];
  /**
   * Host milliseconds spent submitting command buffers (0 on the CPU), kept out of the kernel rows. A
   * software adapter may run the submitted work inside submit, so there it holds most of the GPU time.
   */
  readonly submitMs: number;
}

/** The interface every backend implements. */
export interface Backend {
  readonly name: DeviceName;
  readonly caps: BackendCaps;
  /** Allocates at least `bytes` bytes, zero-filled. */
  alloc(bytes: number): DeviceBuffer;
  /** Returns a buffer; using it afterwards is an error. */
  free(buf: DeviceBuffer): void;
  /**
   * Copies host data in host storage format (Float32Array, Uint16Array of float16 bits, Int32Array,
   * Uint32Array, Uint8Array of 0/1 for bool) into a buffer, starting at element `offset`.
   */
  write(buf: DeviceBuffer, dtype: DType, data: TypedArray, offset: number): void;
  /**
   * Reads `count` elements of dtype `dtype` from element `offset`, in host storage format. The values
   * are those at call time: the caller may free the buffer right after calling (read is the only sync point).
   */
  read(buf: DeviceBuffer, dtype: DType, offset: number, count: number): Promise<TypedArray>;
  /** Compiles/caches whatever `run` with the same signature needs, so `run` never compiles. */
  prepare<K extends KernelOp>(
    op: K,
    inputs: readonly Operand[],
    output: TensorSpec,
    attrs: Attrs<K>,
    aux?: readonly TensorSpec[],
  ): void;
  /**
   * Enqueues op `op` writing `output` (contiguous unless op is elementwise or copy). `indexAdd` may
   * be called with `output` identical to input 0 (same buffer, offset and contiguous layout): it then
   * accumulates in place (how embedding gradients avoid a dense temporary). `aux` are the auxiliary
   * outputs of ops that have them (SAVES[op].aux: crossEntropyRows, layerNorm, maxPool2d), contiguous and fully
   * written like `output`; kernels see them appended to `inputs`. `adamw` updates `output` (the
   * parameter) in place and also writes its moment inputs (all but input 0, the gradient); its operands
   * are contiguous float32 segments of equal length in distinct buffers.
   */
  run<K extends KernelOp>(
    op: K,
    inputs: readonly Operand[],
    output: TensorSpec,
    attrs: Attrs<K>,
    aux?: readonly TensorSpec[],
  ): void;
  /** Resolves when all enqueued work has finished. */
  sync(): Promise<void>;
  /** Current counters. */
  stats(): BackendStats;
  /**
   * Turns per-kernel profiling on (clearing what was collected) or off (keeping it for takeProfile).
   * Off by default; when off it costs a branch per run() and changes no dispatch, submit or buffer.
   */
  setProfiling(on: boolean): void;
  /**
   * Waits for the enqueued work, then returns the per-kernel records collected since profiling was
   * turned on or since the last call, and clears them (empty when profiling never ran).
   */
  takeProfile(): Promise<KernelProfile>;
}

const registry = new Map<DeviceName, Backend>();

/** Registers (or replaces) the backend for a device name. */
export function registerBackend(b: Backend): void {
  registry.set(b.name, b);
}

/** The backend registered for `name`, or undefined. */
export function findBackend(name: DeviceName): Backend | undefined {
  return registry.get(name);
}

/** Names of all registered backends. */
export function registeredBackends(): DeviceName[] {
  return [...registry.keys()];
}

/** A zeroed stats record. */
export function emptyStats(): BackendStats {
  return {
    liveBuffers: 0,
    liveBytes: 0,
    buffersCreated: 0,
    bytesUploaded: 0,
    bytesDownloaded: 0,
    dispatches: 0,
    submits: 0,
    compiles: 0,
  };
}
