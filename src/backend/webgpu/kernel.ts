// The contract between the WebGPU runtime and its kernels. A kernel turns one op call into one or
// more dispatches of WGSL programs; the runtime caches pipelines by program key, packs uniforms into
// a shared arena, binds buffers, and records the dispatches into the open command encoder.
import type { DType } from '../../core/dtype.js';
import type { Attrs, KernelOp } from '../../ops/opcodes.js';
import type { DeviceBuffer, Operand, TensorSpec } from '../backend.js';
import type { CheckFormat } from './checks.js';

/** A compiled-once WGSL program: `key` identifies it (kernel + specialization) in the pipeline cache. */
export interface WgslProgram {
  /** Unique per distinct source; two programs with the same key must have the same code. */
  readonly key: string;
  /** Builds the WGSL source (called only on a cache miss). */
  readonly code: () => string;
  /**
   * Bindings 0..n-1 are storage buffers in the order of `Dispatch.buffers`; binding n is the
   * uniform block (omitted when the dispatch has no uniforms).
   */
  readonly entryPoint?: string;
}

/** One storage buffer binding of a dispatch. */
export interface BufferBinding {
  readonly buffer: DeviceBuffer;
  /** True for read-only inputs (`var<storage, read>`), false for outputs (`read_write`). */
  readonly readOnly: boolean;
}

/** One compute dispatch. */
export interface Dispatch {
  readonly program: WgslProgram;
  readonly buffers: readonly BufferBinding[];
  /** Uniform words (u32 bit patterns; f32 values via a Float32Array view of the same words). */
  readonly uniforms?: Uint32Array;
  readonly workgroups: readonly [number, number, number];
}

/** What kernels may ask of the runtime. */
export interface KernelContext {
  /** Adapter limits that shape kernels (requested at their real values). */
  readonly limits: {
    readonly maxComputeInvocationsPerWorkgroup: number;
    readonly maxComputeWorkgroupSizeX: number;
    readonly maxComputeWorkgroupsPerDimension: number;
    readonly maxComputeWorkgroupStorageSize: number;
    readonly maxStorageBufferBindingSize: number;
  };
  /** True when the device has shader-f16 (float16 tensors are stored as f16 in WGSL). */
  readonly f16: boolean;
  /** A scratch buffer valid until the current op's dispatches have been recorded (pooled, never freed by the kernel). */
  scratch(bytes: number): DeviceBuffer;
  /**
   * Device-side checks (e.g. an index out of range, which a shader cannot throw): bind `checks.buffer`
   * read_write (codegen.ts `checkDecl`) and on failure call `tl_fail(code, value)` or
   * `tl_fail_at(code, value, position)` with `code` from `checks.code(op, message, format)` passed in a
   * uniform. The next read()/sync() throws OpError(op, message) with `{value}` and `{position}` replaced
   * by the reported words (written as `format` says, see checks.ts); the first failure since the last
   * read wins. The failed op's output is otherwise unspecified. Contents of `scratch` buffers are
   * unspecified too (not zeroed).
   */
  readonly checks: {
    readonly buffer: DeviceBuffer;
    code(op: string, message: string, format?: CheckFormat): number;
  };
}

/** A WebGPU kernel: the dispatches that compute `output` from `inputs`. */
export type WebGPUKernel<K extends KernelOp> = (
  inputs: readonly Operand[],
  output: TensorSpec,
  attrs: Attrs<K>,
  ctx: KernelContext,
) => readonly Dispatch[];

/** The kernel table type: every op must have a kernel (a missing one fails to compile). */
export type WebGPUKernelTable = { readonly [K in KernelOp]: WebGPUKernel<K> };

/** WGSL storage type of each dtype: float16 is `f16` with shader-f16 (else unsupported); bool is stored as u32 words of 0/1. */
export function wgslType(d: DType): string {
  switch (d) {
    case 'float32':
      return 'f32';
    case 'float16':
      return 'f16';
    case 'int32':
      return 'i32';
    case 'uint32':
      return 'u32';
    case 'bool':
      return 'u32';
  }
}
