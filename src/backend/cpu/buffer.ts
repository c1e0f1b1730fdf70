// CPU device memory: a zero-filled ArrayBuffer with lazily cached typed views, and `view()`, the one
// way kernels reach a buffer's elements (it refuses foreign and freed buffers with a clear error).
import type { DType, DTypeArrayMap, TypedArray } from '../../core/dtype.js';
import type { DeviceBuffer } from '../backend.js';

/** A CPU buffer. `bytes` is a multiple of 4 (at least 4), so every dtype's view covers it exactly. */
export class CpuBuffer implements DeviceBuffer {
  readonly bytes: number;
  /** The storage; zero-filled at creation. */
  readonly data: ArrayBuffer;
  /** Set by `free`; any later use throws. */
  freed = false;
  private readonly views: Partial<DTypeArrayMap> = {};

  constructor(bytes: number) {
    this.bytes = Math.max(4, Math.ceil(bytes / 4) * 4);
    this.data = new ArrayBuffer(this.bytes);
  }

  /** The typed view of the whole buffer for dtype `d` (cached; float16 is the raw Uint16Array bits). */
  view<D extends DType>(d: D): DTypeArrayMap[D];
  view(d: DType): TypedArray {
    const cached = this.views[d];
    if (cached) return cached;
    let v: TypedArray;
    switch (d) {
      case 'float32':
        v = this.views.float32 = new Float32Array(this.data);
        break;
      case 'float16':
        v = this.views.float16 = new Uint16Array(this.data);
        break;
      case 'int32':
        v = this.views.int32 = new Int32Array(this.data);
        break;
      case 'uint32':
        v = this.views.uint32 = new Uint32Array(this.data);
        break;
      case 'bool':
        v = this.views.bool = new Uint8Array(this.data);
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
