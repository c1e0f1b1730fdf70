// Browser helpers of the CPU backend's worker pool: Web Workers started from a Blob URL of the pool's
// worker program, the core count, and whether this thread may block. Threads need a SharedArrayBuffer,
// which browsers only give a cross-origin isolated page (served with `Cross-Origin-Opener-Policy:
// same-origin` and `Cross-Origin-Embedder-Policy: require-corp`); elsewhere the kernels run single-
// threaded. Nothing here touches Node: the file is browser safe (and is tested in Node with a shim).
import { WORKER_SOURCE, type Spawner, type WorkerInit } from './threads.js';

/** The subset of the DOM Worker this file needs (so a test can pass a shim). */
export interface WebWorkerLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

/** A Worker constructor as browsers have it: `new Worker(url)` for a classic script. */
export type WebWorkerCtor = new (url: string | URL, options?: { name?: string }) => WebWorkerLike;

/** The worker program for a Web Worker: the pool's `run`, started by the one message carrying its init. */
export const WEB_WORKER_SOURCE = `${WORKER_SOURCE}\nself.onmessage = (e) => { self.onmessage = null; run(e.data); };\n`;

/** The host facts that decide whether and how the pool runs in a browser-like global scope. */
export interface WebThreadSupport {
  /** Workers the pool may start (cores - 1), 0 when threads are unavailable. */
  readonly workers: number;
  /** True when the calling thread may block in Atomics.wait (a worker); the main thread spins instead. */
  readonly canBlock: boolean;
  /** Why threads are off, or null when they are on. */
  readonly reason: string | null;
}

/**
 * What `scope` (a browser's globalThis) allows: threads need a Worker constructor, SharedArrayBuffer and
 * cross-origin isolation, and more than one core (navigator.hardwareConcurrency).
 */
export function webThreadSupport(scope: object = globalThis): WebThreadSupport {
  const g = scope as {
    Worker?: unknown;
    SharedArrayBuffer?: unknown;
    crossOriginIsolated?: boolean;
    navigator?: { hardwareConcurrency?: number };
  };
  const off = (reason: string): WebThreadSupport => ({ workers: 0, canBlock: false, reason });
  if (typeof g.Worker !== 'function') return off('threads: no Web Worker in this scope (single-threaded)');
  if (typeof g.SharedArrayBuffer !== 'function' || g.crossOriginIsolated !== true)
    return off(
      'threads: the page is not cross-origin isolated (COOP same-origin + COEP require-corp), so no SharedArrayBuffer: single-threaded',
    );
  const cores = Math.max(1, Math.floor(g.navigator?.hardwareConcurrency ?? 1));
  if (cores <= 1) return off('threads: one core');
  return { workers: cores - 1, canBlock: mayBlock(), reason: null };
}

/** Whether Atomics.wait is allowed here: browsers refuse it on the main (window) thread with a TypeError. */
export function mayBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0); // value differs: returns at once
    return true;
  } catch {
    return false;
  }
}

/**
 * A Spawner that starts each pool worker as a classic Web Worker from a Blob URL of WEB_WORKER_SOURCE and
 * posts it its init (the module, the shared memory and control block structured-clone to the worker). A
 * worker that fails to start never reports ready, so the pool stays single-threaded rather than hanging.
 */
export function webSpawner(WorkerCtor: WebWorkerCtor): Spawner {
  let url: string | null = null;
  return (init: WorkerInit) => {
    url ??= URL.createObjectURL(new Blob([WEB_WORKER_SOURCE], { type: 'text/javascript' }));
    const w = new WorkerCtor(url, { name: `tensorloom-gemm-${init.tid}` });
    w.addEventListener('error', () => {
      // never ready: GemmPool.ready stays false and callers keep running alone
    });
    w.postMessage(init);
  };
}
