// Device-side check failures: a shader cannot throw, so kernels that validate data (index ranges)
// record a failure code, value and position in a small device buffer; the backend reads it back with
// the next read()/sync() and throws an OpError naming the op, as the CPU backend would have at once.
import { OpError, fmtShape } from '../../core/errors.js';
import type { GpuDevice } from './device.js';
import { GpuBuffer } from './pool.js';

/** Distinct (op, message, format) entries kept before the registry restarts (a code then reads as generic). */
const MAX_MESSAGES = 4096;

/**
 * Bytes of the check buffer and of its readback: word 0 the failure code (0 = none), word 1 the
 * offending value, word 2 its position, word 3 unused (16 bytes keep vec4-friendly alignment).
 */
export const CHECK_BYTES = 16;

/** How the reported words are written into a failure message. */
export interface CheckFormat {
  /** `{value}` is the reported word as u32 (default: as i32). */
  readonly unsigned?: boolean;
  /**
   * `{position}` is the reported position (a row-major flat index) written as coordinates of this
   * shape, e.g. `[1, 0]` (default: the flat index as `[i]`).
   */
  readonly positionShape?: readonly number[];
}

interface Entry {
  readonly op: string;
  readonly message: string;
  readonly format: CheckFormat;
}

/** The check buffer and the code registry. */
export class DeviceChecks {
  /** Bound read_write by checking kernels (KernelContext.checks.buffer). */
  readonly buffer: GpuBuffer;
  /** True when a checking kernel was recorded since the last readback of the buffer. */
  armed = false;
  private readonly messages = new Map<number, Entry>();
  private readonly codes = new Map<string, number>();
  private next = 1;

  constructor(dev: GpuDevice) {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.buffer = new GpuBuffer(dev.createBuffer(CHECK_BYTES, usage, 'device check flags'), CHECK_BYTES);
    this.buffer.requested = CHECK_BYTES;
  }

  /**
   * The code a kernel reports for failure `message` of `op`: `{value}` is replaced by the reported
   * value and `{position}` by the reported position, both written as `format` says.
   */
  code(op: string, message: string, format: CheckFormat = {}): number {
    this.armed = true;
    const shape = format.positionShape ? fmtShape(format.positionShape) : '';
    const key = `${op}\u0000${message}\u0000${format.unsigned ? 'u' : 'i'}${shape}`;
    let c = this.codes.get(key);
    if (c === undefined) {
      if (this.codes.size >= MAX_MESSAGES) {
        this.codes.clear();
        this.messages.clear();
      }
      c = this.next++;
      this.codes.set(key, c);
      this.messages.set(c, { op, message, format });
    }
    return c;
  }

  /** Throws the failure recorded in `words` (code, value, position), if any. */
  raise(words: Uint32Array): void {
    const code = words[0]!;
    if (code === 0) return;
    const m = this.messages.get(code);
    const value = m?.format.unsigned ? words[1]! >>> 0 : words[1]! | 0;
    if (!m) throw new OpError('webgpu', `a device-side check failed (code ${code}, value ${value})`);
    const position = fmtShape(coordinates(words[2]! >>> 0, m.format.positionShape ?? [Infinity]));
    throw new OpError(m.op, m.message.replaceAll('{value}', String(value)).replaceAll('{position}', position));
  }
}

/** The coordinates of row-major flat index `flat` in `shape`. */
function coordinates(flat: number, shape: readonly number[]): number[] {
  const pos = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    pos[d] = d === 0 ? flat : flat % n;
    flat = Math.floor(flat / n);
  }
  return pos;
}
