// The CPU backend: memory in ArrayBuffers, kernels in plain TypeScript, dispatched through one table
// typed over every KernelOp (a missing kernel is a compile error). Work runs synchronously in run().
import { BYTES_PER_ELEMENT, DTYPES, makeTypedArray, type DType, type TypedArray } from '../../core/dtype.js';
import type { Attrs, KernelOp } from '../../ops/opcodes.js';
import {
  emptyStats,
  type Backend,
  type BackendCaps,
  type BackendStats,
  type DeviceBuffer,
  type Operand,
  type TensorSpec,
} from '../backend.js';
import { CpuBuffer, asCpuBuffer } from './buffer.js';
import { binary, cast, copy, unary, where } from './elementwise.js';
import { gather, indexAdd, indexSelect, scatterAdd } from './indexing.js';
import { matmul } from './matmul.js';
import { arange, concat, fill, randNormal, randUniform } from './misc.js';
import { reduce } from './reduce.js';
import { softmax } from './softmax.js';

export { CpuBuffer, view } from './buffer.js';

/** A CPU kernel: reads `inputs`, writes `out`; `op` lets one function serve a whole op family. */
export type CpuKernel<K extends KernelOp> = (
  inputs: readonly Operand[],
  out: TensorSpec,
  attrs: Attrs<K>,
  op: K,
) => void;

const un =
  <K extends KernelOp & Parameters<typeof unary>[0]>(): CpuKernel<K> =>
  (i, o, _a, op) =>
    unary(op, i, o);
const bin =
  <K extends KernelOp & Parameters<typeof binary>[0]>(): CpuKernel<K> =>
  (i, o, _a, op) =>
    binary(op, i, o);
const red =
  <K extends KernelOp & Parameters<typeof reduce>[0]>(): CpuKernel<K> =>
  (i, o, a, op) =>
    reduce(op, i, o, a);

/** Every kernel op's CPU implementation. */
const KERNELS: { [K in KernelOp]: CpuKernel<K> } = {
  neg: un(), abs: un(), sign: un(), exp: un(), log: un(), sqrt: un(), rsqrt: un(), reciprocal: un(),
  sin: un(), cos: un(), tanh: un(), sigmoid: un(), relu: un(), gelu: un(), floor: un(), ceil: un(),
  round: un(), logicalNot: un(),
  add: bin(), sub: bin(), mul: bin(), div: bin(), pow: bin(), maximum: bin(), minimum: bin(),
  eq: bin(), ne: bin(), lt: bin(), le: bin(), gt: bin(), ge: bin(), logicalAnd: bin(), logicalOr: bin(),
  geluGrad: bin(),
  sum: red(), max: red(), min: red(), argmax: red(), argmin: red(),
  where: (i, o) => where(i, o),
  cast: (i, o) => cast(i, o),
  copy: (i, o) => copy(i, o),
  matmul: (i, o) => matmul(i, o),
  softmax: (i, o, a) => softmax(false, i, o, a.axis),
  logSoftmax: (i, o, a) => softmax(true, i, o, a.axis),
  gather: (i, o, a) => gather(i, o, a.dim),
  scatterAdd: (i, o, a) => scatterAdd(i, o, a.dim),
  indexSelect: (i, o, a) => indexSelect(i, o, a.dim),
  indexAdd: (i, o, a) => indexAdd(i, o, a.dim),
  concat: (i, o, a) => concat(i, o, a.axis),
  fill: (_i, o, a) => fill(o, a.value),
  arange: (_i, o, a) => arange(o, a.start, a.step),
  randUniform: (_i, o, a) => randUniform(o, a),
  randNormal: (_i, o, a) => randNormal(o, a),
}; // prettier-ignore

/** The CPU backend (single-threaded JavaScript; every dtype). */
export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly caps: BackendCaps = {
    dtypes: DTYPES,
    description: 'CPU (JavaScript)',
    software: false,
    elementBytes: BYTES_PER_ELEMENT,
  };
  private readonly counters: BackendStats = emptyStats();

  alloc(bytes: number): DeviceBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`cpu backend: cannot allocate ${bytes} bytes`);
    let buf: CpuBuffer;
    try {
      buf = new CpuBuffer(bytes);
    } catch (e) {
      throw new RangeError(`cpu backend: out of memory allocating ${bytes} bytes (${(e as Error).message})`);
    }
    this.counters.liveBuffers++;
    this.counters.liveBytes += buf.bytes;
    this.counters.buffersCreated++;
    return buf;
  }

  free(buf: DeviceBuffer): void {
    const b = asCpuBuffer(buf, 'cpu backend free');
    b.freed = true;
    this.counters.liveBuffers--;
    this.counters.liveBytes -= b.bytes;
  }

  write(buf: DeviceBuffer, dtype: DType, data: TypedArray, offset: number): void {
    const b = asCpuBuffer(buf, 'cpu backend write');
    const byteOffset = offset * BYTES_PER_ELEMENT[dtype];
    if (byteOffset < 0 || byteOffset + data.byteLength > b.bytes) {
      throw new RangeError(
        `cpu backend write: ${data.byteLength} bytes at offset ${byteOffset} overflow a buffer of ${b.bytes} bytes`,
      );
    }
    new Uint8Array(b.data, byteOffset, data.byteLength).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    this.counters.bytesUploaded += data.byteLength;
  }

  read(buf: DeviceBuffer, dtype: DType, offset: number, count: number): Promise<TypedArray> {
    const b = asCpuBuffer(buf, 'cpu backend read');
    const size = BYTES_PER_ELEMENT[dtype];
    if (count === 0) return Promise.resolve(makeTypedArray(dtype, 0)); // an empty view may sit past the end
    if (offset < 0 || count < 0 || (offset + count) * size > b.bytes) {
      throw new RangeError(
        `cpu backend read: ${count} ${dtype} elements at ${offset} overflow a buffer of ${b.bytes} bytes`,
      );
    }
    const out = b.view(dtype).slice(offset, offset + count);
    this.counters.bytesDownloaded += count * size;
    return Promise.resolve(out);
  }

  prepare<K extends KernelOp>(_op: K, _inputs: readonly Operand[], _output: TensorSpec, _attrs: Attrs<K>): void {
    // Nothing to compile on the CPU.
  }

  run<K extends KernelOp>(op: K, inputs: readonly Operand[], output: TensorSpec, attrs: Attrs<K>): void {
    const kernel: CpuKernel<K> = KERNELS[op];
    this.counters.dispatches++;
    kernel(inputs, output, attrs, op);
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  stats(): BackendStats {
    return { ...this.counters };
  }
}

/** Creates a CPU backend with its own counters. */
export function createCpuBackend(): CpuBackend {
  return new CpuBackend();
}

/** The shared CPU backend instance. */
export const cpuBackend: CpuBackend = createCpuBackend();
