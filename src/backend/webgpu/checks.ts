// Device-side check failures: a shader cannot throw, so kernels that validate data (index ranges)
// record a failure code and value in a small device buffer; the backend reads it back with the next
// read()/sync() and throws an OpError naming the op, as the CPU backend would have at once.
import { OpError } from '../../core/errors.js';
import type { GpuDevice } from './device.js';
import { GpuBuffer } from './pool.js';

/** Distinct (op, message) pairs kept before the registry restarts (a code then reads as generic). */
const MAX_MESSAGES = 4096;

/** The check buffer (word 0: failure code, 0 = none; word 1: the offending value) and the code registry. */
export class DeviceChecks {
  /** Bound read_write by checking kernels (KernelContext.checks.buffer). */
  readonly buffer: GpuBuffer;
  /** True when a checking kernel was recorded since the last readback of the buffer. */
  armed = false;
  private readonly messages = new Map<number, { op: string; message: string }>();
  private readonly codes = new Map<string, number>();
  private next = 1;

  constructor(dev: GpuDevice) {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.buffer = new GpuBuffer(dev.createBuffer(16, usage, 'device check flags'), 16);
    this.buffer.requested = 16;
  }

  /** The code a kernel reports for failure `message` of `op` (`{value}` is replaced by the reported value). */
  code(op: string, message: string): number {
    this.armed = true;
    const key = `${op}\u0000${message}`;
    let c = this.codes.get(key);
    if (c === undefined) {
      if (this.codes.size >= MAX_MESSAGES) {
        this.codes.clear();
        this.messages.clear();
      }
      c = this.next++;
      this.codes.set(key, c);
      this.messages.set(c, { op, message });
    }
    return c;
  }

  /** Throws the failure recorded in `words` (code, value), if any. */
  raise(words: Uint32Array): void {
    const code = words[0]!;
    if (code === 0) return;
    const value = words[1]! | 0;
    const m = this.messages.get(code);
    if (!m) throw new OpError('webgpu', `a device-side check failed (code ${code}, value ${value})`);
    throw new OpError(m.op, m.message.replaceAll('{value}', String(value)));
  }
}
