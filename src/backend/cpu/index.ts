// The CPU backend: memory in ArrayBuffers, kernels in TypeScript (matmul in WebAssembly SIMD, threaded
// when large), dispatched through one table typed over every KernelOp (a missing kernel is a compile
// error). Work runs synchronously in run(). Loading this module compiles the WASM kernels first.
import { BYTES_PER_ELEMENT, DTYPES, makeTypedArray, type DType, type TypedArray } from '../../core/dtype.js';
import type { Attrs, KernelOp } from '../../ops/opcodes.js';
import {
  emptyStats,
  type Backend,
  type BackendCaps,
  type BackendStats,
  type DeviceBuffer,
  type KernelProfile,
  type Operand,
  type TensorSpec,
} from '../backend.js';
import { KernelTally } from '../profiling.js';
import { adamw } from './adamw.js';
import { CpuBuffer, StoragePool, asCpuBuffer } from './buffer.js';
import { binary, cast, copy, unary, where } from './elementwise.js';
import { gather, indexAdd, indexSelect, scatterAdd } from './indexing.js';
import { matmul } from './matmul.js';
import { arange, concat, fill, randNormal, randUniform } from './misc.js';
import { reduce } from './reduce.js';
import { softmax } from './softmax.js';
import { crossEntropyRows, crossEntropyRowsBackward } from './crossentropy.js';
import { layerNorm, layerNormBackward, layerNormParamsBackward } from './layernorm.js';
import { conv2d, conv2dBackwardInput, conv2dBackwardWeight } from './conv.js';
import { avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward } from './pool.js';
import { batchNorm, batchNormBackward, batchNormParamsBackward, batchNormStats } from './batchnorm.js';
import { attention } from './attention.js';
import { cpuKernelInfo, initWasmKernels } from './wasmgemm.js';

export { CpuBuffer, view } from './buffer.js';
export { cpuKernelCounters, type CpuKernelCounters } from './counters.js';
export {
  cpuKernelInfo,
  cpuThreadsReady,
  setCpuKernelOptions,
  type CpuKernelInfo,
  type CpuKernelOptions,
} from './wasmgemm.js';

// Top-level await: the WASM kernels (and, in Node, the relaxed-SIMD switch) are ready before any kernel
// runs, so which path a matmul takes never depends on timing. It never throws; see cpuKernelInfo().
await initWasmKernels();

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
  matmul: (i, o, attrs) => matmul(i, o, attrs),
  softmax: (i, o, a) => softmax(false, i, o, a.axis, a.causal ?? null),
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
  crossEntropyRows: (i, o, a) => crossEntropyRows(i, o, a),
  crossEntropyRowsBackward: (i, o, a) => crossEntropyRowsBackward(i, o, a),
  layerNorm: (i, o, a) => layerNorm(i, o, a.eps),
  layerNormBackward: (i, o) => layerNormBackward(i, o),
  layerNormParamsBackward: (i, o) => layerNormParamsBackward(i, o),
  adamw: (i, o, a) => adamw(i, o, a),
  maxPool2d: (i, o, a) => maxPool2d(i, o, a),
  maxPool2dBackward: (i, o) => maxPool2dBackward(i, o),
  avgPool2d: (i, o, a) => avgPool2d(i, o, a),
  avgPool2dBackward: (i, o, a) => avgPool2dBackward(i, o, a),
  batchNormStats: (i, o) => batchNormStats(i, o),
  batchNorm: (i, o, a) => batchNorm(i, o, a.eps, a.relu === true, a.residual === true),
  batchNormParamsBackward: (i, o, a) => batchNormParamsBackward(i, o, a.eps),
  batchNormBackward: (i, o, a) => batchNormBackward(i, o, a.eps),
  conv2d: (i, o, a) => conv2d(i, o, a),
  conv2dBackwardInput: (i, o, a) => conv2dBackwardInput(i, o, a),
  conv2dBackwardWeight: (i, o, a) => conv2dBackwardWeight(i, o, a),
  attention: (i, o, a) => attention(i, o, a),
}; // prettier-ignore

/** Most bytes of freed storage the backend keeps for reuse. */
const POOL_MAX_IDLE_BYTES = 1 << 30;

/** What the CPU backend runs on, in words: the WASM variant and thread count. */
function describe(): string {
  const k = cpuKernelInfo();
  const wasm = k.wasm ? `WebAssembly ${k.wasm === 'relaxed-simd' ? 'relaxed SIMD (FMA)' : 'SIMD'} matmul` : 'no WASM';
  return `CPU (JavaScript; ${wasm}; ${k.threads} thread${k.threads === 1 ? '' : 's'})`;
}

/** The CPU backend (JavaScript, with a WebAssembly SIMD matmul; every dtype). */
export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly caps: BackendCaps = {
    dtypes: DTYPES,
    description: describe(),
    software: false,
    elementBytes: BYTES_PER_ELEMENT,
  };
  private readonly counters: BackendStats = emptyStats();
  /** Per-op wall times while profiling is on; null when off (run() then only tests this field). */
  private profile: KernelTally | null = null;
  private readonly collected = new KernelTally();

  /** Freed storage reused by alloc (zero-filled again); buffersCreated counts only new storage. */
  private readonly pool = new StoragePool(POOL_MAX_IDLE_BYTES);

  alloc(bytes: number): DeviceBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`cpu backend: cannot allocate ${bytes} bytes`);
    let buf: CpuBuffer;
    const reused = this.pool.take(bytes);
    if (reused) buf = new CpuBuffer(bytes, reused);
    else {
      try {
        buf = new CpuBuffer(bytes, new ArrayBuffer(StoragePool.classBytes(bytes)));
      } catch (e) {
        this.pool.clear(); // give the idle storage back to the GC before reporting
        throw new RangeError(`cpu backend: out of memory allocating ${bytes} bytes (${(e as Error).message})`);
      }
      this.counters.buffersCreated++;
    }
    this.counters.liveBuffers++;
    this.counters.liveBytes += buf.bytes;
    return buf;
  }

  free(buf: DeviceBuffer): void {
    const b = asCpuBuffer(buf, 'cpu backend free');
    b.freed = true;
    this.counters.liveBuffers--;
    this.counters.liveBytes -= b.bytes;
    this.pool.give(b.data);
  }

  /** Drops the idle storage the backend keeps for reuse (up to 1 GiB), so that the GC can free it. */
  releaseIdleMemory(): void {
    this.pool.clear();
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

  run<K extends KernelOp>(
    op: K,
    inputs: readonly Operand[],
    output: TensorSpec,
    attrs: Attrs<K>,
    aux: readonly TensorSpec[] = [],
  ): void {
    const kernel: CpuKernel<K> = KERNELS[op];
    if (aux.length > 0) inputs = [...inputs, ...aux]; // auxiliary outputs follow the inputs (see Backend.run)
    this.counters.dispatches++;
    if (this.profile === null) {
      kernel(inputs, output, attrs, op);
      return;
    }
    const t0 = performance.now();
    kernel(inputs, output, attrs, op);
    this.profile.add(op, performance.now() - t0);
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  stats(): BackendStats {
    return { ...this.counters };
  }

  /** Starts (clearing earlier records) or stops timing each run() by op name. */
  setProfiling(on: boolean): void {
    if (on) this.collected.clear();
    this.profile = on ? this.collected : null;
  }

  /** Per-op wall times since profiling started or the last call (kernels ran synchronously in run()). */
  takeProfile(): Promise<KernelProfile> {
    const kernels = this.collected.rows(false);
    this.collected.clear();
    return Promise.resolve({
      timing: 'host-wall',
      note: 'host wall time per kernel (CPU kernels run synchronously in run())',
      kernels,
      submitMs: 0,
    });
  }
}

/** Creates a CPU backend with its own counters. */
export function createCpuBackend(): CpuBackend {
  return new CpuBackend();
}

/** The shared CPU backend instance. */
export const cpuBackend: CpuBackend = createCpuBackend();
