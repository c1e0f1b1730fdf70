// The browser host of the CPU worker pool (src/backend/cpu/webhost.ts), exercised in Node: a shim Web
// Worker runs the Blob-URL worker program on worker_threads with a browser-like `self`, and the pool
// computes a row job on it. What a real browser adds (COOP/COEP headers, its Worker) is not tested here.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveObjectURL } from 'node:buffer';
import { Worker as NodeWorker } from 'node:worker_threads';
import { GemmPool, type GemmFn } from '../../src/backend/cpu/threads.js';
import { mayBlock, webSpawner, webThreadSupport, type WebWorkerLike } from '../../src/backend/cpu/webhost.js';
import { GEMM_SHARED_MAX_PAGES, GEMM_WASM } from '../../src/backend/cpu/wasm/kernels.generated.js';

const started: NodeWorker[] = [];
after(() => Promise.all(started.map((w) => w.terminate())));

/** A DOM-like Worker for a classic script at a blob: URL, on worker_threads (messages queue until it runs). */
class ShimWorker implements WebWorkerLike {
  static urls: string[] = [];
  private worker: NodeWorker | null = null;
  private readonly queue: unknown[] = [];
  private readonly errors: ((e: unknown) => void)[] = [];
  constructor(url: string | URL) {
    ShimWorker.urls.push(String(url));
    const blob = resolveObjectURL(String(url));
    if (!blob) throw new Error(`shim worker: no blob at ${String(url)}`);
    void blob.text().then((src) => {
      const prelude =
        "const { parentPort } = require('node:worker_threads'); const self = globalThis;" +
        'parentPort.on("message", (data) => self.onmessage && self.onmessage({ data }));\n';
      const w = new NodeWorker(prelude + src, { eval: true, execArgv: [] });
      w.on('error', (e) => this.errors.forEach((f) => f(e)));
      started.push(w);
      this.worker = w;
      for (const m of this.queue.splice(0)) w.postMessage(m);
    });
  }
  postMessage(message: unknown): void {
    if (this.worker) this.worker.postMessage(message);
    else this.queue.push(message);
  }
  addEventListener(_type: 'error', listener: (event: unknown) => void): void {
    this.errors.push(listener);
  }
}

describe('cpu backend web host', () => {
  test('threads need a Worker, cross-origin isolation and more than one core', () => {
    const Worker = function () {};
    const base = { Worker, SharedArrayBuffer, crossOriginIsolated: true, navigator: { hardwareConcurrency: 8 } };
    assert.equal(webThreadSupport(base).workers, 7);
    assert.equal(webThreadSupport(base).reason, null);
    assert.equal(webThreadSupport({ ...base, Worker: undefined }).workers, 0);
    const notIsolated = webThreadSupport({ ...base, crossOriginIsolated: false });
    assert.equal(notIsolated.workers, 0);
    assert.match(notIsolated.reason ?? '', /cross-origin isolated/);
    assert.equal(webThreadSupport({ ...base, navigator: { hardwareConcurrency: 1 } }).workers, 0);
    assert.equal(webThreadSupport({ ...base, navigator: {} }).workers, 0, 'unknown core count: one');
    // Node's main thread may block (a browser's main thread may not: it spins instead)
    assert.equal(mayBlock(), true);
  });

  test('a pool of Web Workers runs a row job over shared memory, workers included', async () => {
    const module = new WebAssembly.Module(Buffer.from(GEMM_WASM.simdShared, 'base64'));
    const memory = new WebAssembly.Memory({ initial: 64, maximum: GEMM_SHARED_MAX_PAGES, shared: true });
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, GemmFn>;
    const pool = new GemmPool(2, webSpawner(ShimWorker), module, memory, false); // spins, as a page would
    pool.start();
    assert.equal(ShimWorker.urls.length, 2);
    assert.equal(new Set(ShimWorker.urls).size, 1, 'one Blob URL for all workers');
    assert.match(ShimWorker.urls[0]!, /^blob:/);
    for (let i = 0; i < 500 && !pool.ready; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(pool.ready, 'the web workers reported ready');

    const rows = 4096;
    const c = 37;
    const f32 = new Float32Array(memory.buffer);
    const f64 = new Float64Array(memory.buffer);
    const xB = 1024; // byte addresses
    const sB = xB + rows * c * 4 + 64;
    for (let i = 0; i < rows * c; i++) f32[xB / 4 + i] = Math.sin(i * 0.37) * 4;
    f64.fill(NaN, sB / 8, sB / 8 + rows * 3);
    // several jobs, so that the workers (not only this thread) claim panels
    for (let rep = 0; rep < 20 && pool.workerPanels === 0; rep++)
      pool.run(exports.ceStatsRows!, [xB, c, sB], rows, 'ceStatsRows', 1);
    assert.ok(pool.workerPanels > 0, 'the Web Workers computed rows');
    for (let r = 0; r < rows; r++) {
      let max = -Infinity;
      let sz = 0;
      for (let j = 0; j < c; j++) {
        const v = f32[xB / 4 + r * c + j]!;
        max = Math.max(max, v);
        sz += v;
      }
      assert.equal(f64[sB / 8 + 3 * r], max, `row ${r} max`);
      assert.ok(Math.abs(f64[sB / 8 + 3 * r + 2]! - sz) <= 1e-9 * (1 + Math.abs(sz)), `row ${r} sum`);
    }
  });
});
