// Which CPU kernel paths ran: deterministic counters that tests use to prove a fast path is taken.

/** Calls per path, one per single-matrix product (a batched matmul counts each batch item). Only grow. */
export interface CpuKernelCounters {
  /** Products computed by the JS kernels (gemm.ts). */
  matmulJs: number;
  /** Products computed by the WASM SIMD kernel (threaded or not). */
  matmulWasm: number;
  /** WASM products split over the worker pool. */
  matmulThreaded: number;
  /**
   * Rows of C (in 4-row panels) that worker threads computed, as opposed to the calling thread: how much
   * the pool actually helped (timing-dependent: a worker the OS did not schedule in time does less).
   */
  matmulWorkerPanels: number;
  /** Row chunks of WASM products whose long K ran in chunks added into C (see wasmgemm.ts SPLIT_K_MIN). */
  matmulSplitK: number;
  /** Row chunks of pooled WASM products split by column panels (few rows against a wide B). */
  matmulByColumns: number;
  /** WASM GEMMs that added into their output in place (C += A @ B: a weight gradient into its .grad). */
  matmulAccumulated: number;
  /** Batched matmul calls whose small items ran as pooled jobs of whole items (wasmGemmBatch). */
  matmulBatched: number;
  /** Small-M products (M <= 8) computed by the WASM GEMV kernels (wasmgemv.ts), B streamed unpacked. */
  matmulGemv: number;
  /** Of those, the products whose chunks were split over the worker pool. */
  matmulGemvThreaded: number;
  /** AdamW steps (one per kernel call) run by the WASM SIMD kernel. */
  adamwWasm: number;
  /** Contiguous float32 gelu and geluGrad calls run by the WASM SIMD kernels. */
  geluWasm: number;
  /** Of those, the calls split over the worker pool. */
  geluThreaded: number;
  /** Contiguous same-shape float32 add, sub and mul calls run by the WASM SIMD kernel (wasmelementwise.ts). */
  binaryWasm: number;
  /** float32 add, sub, mul and div calls against a broadcast row, column or scalar run on WASM SIMD. */
  binaryBcastWasm: number;
  /** float32 sums (leading dims or the last dim) and layerNormParamsBackward calls run on WASM SIMD. */
  reduceWasm: number;
  /** crossEntropyRows and crossEntropyRowsBackward calls run by the WASM SIMD row kernels (long float32 rows). */
  crossEntropyWasm: number;
  /** Of those, the calls whose rows were split over the worker pool. */
  crossEntropyThreaded: number;
  /** conv2d kernel calls (forward or either gradient) run by the direct JS loops (small, float16, no WASM). */
  convDirect: number;
  /** conv2d forward calls run as plain GEMMs (1x1, stride 1, no padding). */
  convGemm: number;
  /** conv2d kernel calls (forward or either gradient) run on WASM SIMD: the implicit GEMM or depthwise loops. */
  convWasm: number;
  /** Of those, the calls whose work was split over the worker pool. */
  convThreaded: number;
  /**
   * Threaded WASM conv2d calls whose calling thread staged or copied images (or finished forward tiles)
   * while the workers computed.
   */
  convCopyOverlapped: number;
  /** WASM conv2d input-gradient calls run in two phases of output-row bands (few images and groups). */
  convBanded: number;
  /** WASM conv2d forward and weight-gradient calls whose gathers read a zero-padded copy of the input. */
  convPadded: number;
  /** Contiguous float32 softmax / logSoftmax and layerNorm (forward or backward) calls run on WASM SIMD. */
  rowsWasm: number;
  /** Of those, the softmax / logSoftmax calls whose rows were split over the worker pool. */
  rowsThreaded: number;
}

/** The live counters (mutated by the kernels). */
export const counters: CpuKernelCounters = {
  matmulJs: 0,
  matmulWasm: 0,
  matmulThreaded: 0,
  matmulWorkerPanels: 0,
  matmulSplitK: 0,
  matmulByColumns: 0,
  matmulAccumulated: 0,
  matmulBatched: 0,
  matmulGemv: 0,
  matmulGemvThreaded: 0,
  adamwWasm: 0,
  geluWasm: 0,
  geluThreaded: 0,
  binaryWasm: 0,
  binaryBcastWasm: 0,
  reduceWasm: 0,
  crossEntropyWasm: 0,
  crossEntropyThreaded: 0,
  convDirect: 0,
  convGemm: 0,
  convWasm: 0,
  convThreaded: 0,
  convCopyOverlapped: 0,
  convBanded: 0,
  convPadded: 0,
  rowsWasm: 0,
  rowsThreaded: 0,
};

/** A snapshot of the CPU kernel counters. */
export function cpuKernelCounters(): CpuKernelCounters {
  return { ...counters };
}
