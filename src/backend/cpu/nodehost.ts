// Node-only helpers of the CPU backend, loaded by dynamic import (browsers never load this file):
// turning on relaxed SIMD in Node 20's V8, the core count, and worker_threads workers for the pool.
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { WORKER_SOURCE, type WorkerInit } from './threads.js';

/**
 * Enables WebAssembly relaxed SIMD when `probe` (a tiny module using it) does not validate yet: Node 20
 * (V8 11.3) has it behind --experimental-wasm-relaxed-simd; V8 reads the flag when it compiles, so setting
 * it before compiling our module is enough. Returns whether the probe validates afterwards.
 */
export function enableRelaxedSimd(probe: Uint8Array<ArrayBuffer>): boolean {
  if (WebAssembly.validate(probe)) return true;
  setFlagsFromString('--experimental-wasm-relaxed-simd');
  return WebAssembly.validate(probe);
}

/** Logical cores available to this process. */
export function cpuCount(): number {
  return availableParallelism();
}

/**
 * Starts a worker thread running the pool's worker program. It is unreferenced, so an idle pool never
 * keeps the process alive, and it loads no loader hooks (execArgv: []): it needs nothing but the module.
 */
export function spawnNodeWorker(init: WorkerInit): void {
  const w = new Worker(`${WORKER_SOURCE}\nrun(require('node:worker_threads').workerData);`, {
    eval: true,
    workerData: init,
    execArgv: [],
    name: 'tensorloom-gemm',
  });
  w.on('error', () => {
    // A worker that fails to start never reports ready, so the pool stays single-threaded.
  });
  w.unref();
}
