// Per-kernel profiling of the WebGPU runtime: dispatches and host time per kernel and, with the
// 'timestamp-query' feature, the GPU time of each dispatch: while profiling each dispatch gets its own
// compute pass whose begin/end timestamps land in a query set, resolved and read back by take().
import type { KernelProfile } from '../backend.js';
import { KernelTally } from '../profiling.js';
import type { GpuDevice } from './device.js';

/** Timed dispatches per query set (WebGPU allows at most 4096 queries per set: two per dispatch). */
const PAIRS_PER_SET = 2048;
/** Kernel names longer than this are cut (the table stays readable; keys of one op still group). */
const MAX_NAME = 56;
/** Dawn's timestamp quantization (on unless its 'timestamp_quantization' toggle is disabled) zeroes the low 16 bits. */
const QUANTUM_NS = 65536n;

/** A query set with its resolve and readback buffers; `names[i]` is the kernel timed by queries 2i, 2i+1. */
interface QueryChunk {
  readonly set: GPUQuerySet;
  readonly resolve: GPUBuffer;
  readonly readback: GPUBuffer;
  names: string[];
}

const names = new Map<string, string>();

/**
 * The kernel name of a WGSL program key: the op and its specialization, with dtype words shortened
 * (`ew.add|float32|v4|...` -> `ew.add|f32|v4`; `matmul_64x64x16_..._float32_...` -> `matmul_64x64x16_..._f32_...`).
 * Keys with `|` fields keep their first three (the rest is binding layout detail).
 */
export function kernelName(key: string): string {
  let n = names.get(key);
  if (n !== undefined) return n;
  const fields = key.split('|');
  n = (fields.length > 3 ? fields.slice(0, 3).join('|') : key)
    .replace(/float(32|16)/g, 'f$1')
    .replace(/uint32/g, 'u32')
    .replace(/int32/g, 'i32')
    .replace(/\|+$/, '');
  if (n.length > MAX_NAME) n = `${n.slice(0, MAX_NAME - 1)}…`;
  names.set(key, n);
  return n;
}

/**
 * Adds the GPU time of each timed dispatch to `tally`: `stamps` holds begin/end nanoseconds in pairs,
 * `kernels[i]` names pair i. A pair whose end precedes its begin (a driver quirk) counts as 0. Returns
 * how many pairs had a positive duration and whether every one of them was a multiple of 65.536 µs
 * (the timestamps were quantized).
 */
export function addTimestamps(
  tally: KernelTally,
  kernels: readonly string[],
  stamps: BigUint64Array,
): { timed: number; quantized: boolean } {
  let timed = 0;
  let quantized = true;
  for (let i = 0; i < kernels.length; i++) {
    const begin = stamps[2 * i]!;
    const end = stamps[2 * i + 1]!;
    const ns = end > begin ? end - begin : 0n;
    if (ns > 0n) {
      timed++;
      if (ns % QUANTUM_NS !== 0n) quantized = false;
    }
    tally.addDevice(kernels[i]!, Number(ns) / 1e6);
  }
  return { timed, quantized };
}

/** Profiling state of one device's runtime. `active` is false by default and then nothing here runs. */
export class GpuProfiler {
  /** True while profiling is on (the runtime checks it once per dispatch). */
  active = false;
  /** True when the device has 'timestamp-query' (dispatches are timed on the GPU while profiling). */
  readonly timestamps: boolean;
  private readonly dev: GpuDevice;
  private readonly tally = new KernelTally();
  private readonly chunks: QueryChunk[] = [];
  /** Chunks in `chunks[0..used)` hold queries not yet read back; the last one may have room left. */
  private used = 0;
  /** Kernel names of the dispatches recorded by the op in progress (they share its host time). */
  private opKernels: string[] = [];
  /** Host time of submits since the last take(), and the part of it inside the op in progress. */
  private submitMs = 0;
  private opSubmitMs = 0;

  constructor(dev: GpuDevice) {
    this.dev = dev;
    this.timestamps = dev.timestampQuery;
  }

  /** Turns profiling on (clearing earlier records and unread timestamps) or off (keeping them for take()). */
  set(on: boolean): void {
    if (on) {
      this.tally.clear();
      for (let i = 0; i < this.used; i++) this.chunks[i]!.names = [];
      this.used = 0;
      this.opKernels = [];
      this.submitMs = 0;
      this.opSubmitMs = 0;
    }
    this.active = on;
  }

  /** Counts one recorded dispatch of program `key`. */
  dispatched(key: string): void {
    const name = kernelName(key);
    this.tally.add(name, 0);
    this.opKernels.push(name);
  }

  /** Counts the host time of one queue submit (kept out of the kernel that happened to trigger it). */
  submitted(ms: number): void {
    this.submitMs += ms;
    this.opSubmitMs += ms;
  }

  /** Spreads an op's host time (its run() call, less any submit inside it) over the dispatches it recorded. */
  opDone(ms: number): void {
    const n = this.opKernels.length;
    const own = Math.max(0, ms - this.opSubmitMs);
    for (const name of this.opKernels) this.tally.addHost(name, own / n);
    this.opKernels = [];
    this.opSubmitMs = 0;
  }

  /** The descriptor of a compute pass that times one dispatch of program `key` (timestamps only). */
  timedPass(key: string): GPUComputePassDescriptor {
    let c = this.used > 0 ? this.chunks[this.used - 1]! : undefined;
    if (!c || c.names.length === PAIRS_PER_SET) {
      c = this.chunks[this.used] ?? this.newChunk();
      this.used++;
    }
    const i = c.names.length;
    c.names.push(kernelName(key));
    return {
      label: key,
      timestampWrites: { querySet: c.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    };
  }

  /** True when timestamps were written that take() has not read yet. */
  get unread(): boolean {
    return this.used > 0;
  }

  /** Encodes the resolve of every written query and the copy into its readback buffer (once per take). */
  resolve(enc: GPUCommandEncoder): void {
    for (let i = 0; i < this.used; i++) {
      const c = this.chunks[i]!;
      const q = 2 * c.names.length;
      enc.resolveQuerySet(c.set, 0, q, c.resolve, 0);
      enc.copyBufferToBuffer(c.resolve, 0, c.readback, 0, q * 8);
    }
  }

  /**
   * Reads back the resolved timestamps (the caller submitted `resolve()`'s commands), and returns and
   * clears what was collected.
   */
  async take(): Promise<KernelProfile> {
    const pending = this.chunks.slice(0, this.used);
    this.used = 0;
    let timed = 0;
    let quantized = true;
    for (const c of pending) {
      const bytes = c.names.length * 16;
      await c.readback.mapAsync(GPUMapMode.READ, 0, bytes);
      try {
        const r = addTimestamps(this.tally, c.names, new BigUint64Array(c.readback.getMappedRange(0, bytes)));
        timed += r.timed;
        quantized &&= r.quantized;
      } finally {
        c.readback.unmap();
        c.names = [];
      }
    }
    const kernels = this.tally.rows(this.timestamps);
    const submitMs = this.submitMs;
    this.tally.clear();
    this.submitMs = 0;
    this.opSubmitMs = 0;
    const a = this.dev.adapter;
    return this.timestamps
      ? {
          timing: 'gpu-timestamps',
          note:
            'GPU time per dispatch from timestamp-query (one compute pass per dispatch while profiling)' +
            (quantized && timed >= 4
              ? "; the timestamps are quantized to 65.5 µs (Dawn's timestamp_quantization toggle), so short kernels are coarse"
              : ''),
          kernels,
          submitMs,
        }
      : {
          timing: 'host-record',
          note:
            `GPU timestamps unavailable: the adapter (${a.backend}${a.software ? ', software' : ''}) has no ` +
            `timestamp-query; kernel times are host time to record dispatches, not GPU time`,
          kernels,
          submitMs,
        };
  }

  private newChunk(): QueryChunk {
    const bytes = PAIRS_PER_SET * 16;
    const c: QueryChunk = {
      set: this.dev.device.createQuerySet({ type: 'timestamp', count: 2 * PAIRS_PER_SET, label: 'profile' }),
      resolve: this.dev.createBuffer(
        bytes,
        GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        'profile timestamp resolve buffer',
      ),
      readback: this.dev.createBuffer(
        bytes,
        GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        'profile timestamp readback buffer',
      ),
      names: [],
    };
    this.chunks.push(c);
    return c;
  }
}
