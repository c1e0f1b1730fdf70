// A persistent pool of workers that run the WASM GEMM on row panels of one job, over a shared
// WebAssembly.Memory. Synchronization is Atomics on a small shared control block, because the CPU
// backend runs kernels synchronously: the caller blocks until the job is done (no event-loop turn).
// Platform-neutral: a Spawner (Node worker_threads in nodehost.ts) starts the workers.
//
// Work is claimed, not assigned: every thread (the caller included) takes the next chunk of row panels
// with a compare-and-swap on TICKET until none is left, so a thread that the OS descheduled (a shared
// machine, a busy laptop) simply does less, and the caller never waits for a worker that has not woken.
// TICKET holds the job's generation (11 bits) above the next free panel (20 bits); a claim succeeds only
// for the current generation, and the caller closes the ticket before it rewrites the job's arguments,
// so a late worker can never run a chunk with arguments it read half-way through a rewrite.

/** Control block slots (Int32Array indices). Workers wait on GEN; the caller waits on DONE. */
const GEN = 0;
const TICKET = 1;
const DONE = 2;
const READY = 3;
const FAILED = 4;
const PANELS = 5;
const CHUNK = 6;
/** Row panels computed by workers (not the caller), ever: evidence that the pool does work. */
const WORKER_PANELS = 7;
/** The job's arguments (at most GEMM_ARGS of them) start here. */
const ARGS = 8;
/** Which export the job runs (its index in WebAssembly.Module.exports) and how many arguments it takes. */
const FN = 30;
const NARGS = 31;
const CTRL_INTS = 32;
/** Panel bits of TICKET; a closed ticket's panel field is PANEL_MASK, past any job. */
const PANEL_BITS = 20;
const PANEL_MASK = (1 << PANEL_BITS) - 1;
const GEN_MASK = 0x7ff;

/** Most workers a pool holds. */
export const MAX_WORKERS = 64;
/**
 * Arguments of the WASM `gemm` export before its (r0, r1) row-panel range: the most a job may pass. Every
 * job's export is called as fn(...args, r0, r1, tid) with tid the thread's index (0: the caller, workers
 * 1..size), so that an export can give each thread its own scratch; `gemm` ignores tid.
 */
export const GEMM_ARGS = 10;
/** Most row panels one pooled job may have (the TICKET panel field, less a closed marker). */
export const MAX_POOLED_PANELS = PANEL_MASK - 1;

/**
 * The worker's program, as plain JavaScript source (it runs in a fresh isolate without our modules):
 * `run(init)` instantiates the module on the shared memory, reports ready, then waits for jobs and claims
 * chunks like GemmPool.run's caller. It never returns (workers are unreferenced, so an idle pool does not
 * keep the process alive).
 */
export const WORKER_SOURCE = `
function run({ module, memory, ctrl: sab, tid }) {
  const ctrl = new Int32Array(sab);
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const fns = WebAssembly.Module.exports(module).map((e) => exports[e.name]);
  Atomics.add(ctrl, ${READY}, 1);
  let gen = Atomics.load(ctrl, ${GEN});
  for (;;) {
    Atomics.wait(ctrl, ${GEN}, gen);
    gen = Atomics.load(ctrl, ${GEN});
    const panels = ctrl[${PANELS}], chunk = ctrl[${CHUNK}];
    const fn = fns[ctrl[${FN}]];
    const a = Array.from(ctrl.subarray(${ARGS}, ${ARGS} + ctrl[${NARGS}]));
    for (;;) {
      const t = Atomics.load(ctrl, ${TICKET});
      const start = t & ${PANEL_MASK};
      if (((t >>> ${PANEL_BITS}) & ${GEN_MASK}) !== gen || start >= panels) break;
      const end = Math.min(start + chunk, panels);
      if (Atomics.compareExchange(ctrl, ${TICKET}, t, (t & ~${PANEL_MASK}) | end) !== t) continue;
      try {
        fn(...a, start, end, tid);
      } catch (e) {
        Atomics.store(ctrl, ${FAILED}, 1);
      }
      Atomics.add(ctrl, ${WORKER_PANELS}, end - start);
      if (Atomics.add(ctrl, ${DONE}, end - start) + end - start >= panels) Atomics.notify(ctrl, ${DONE});
    }
  }
}
`;

/** What a worker's `run` receives. */
export interface WorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly ctrl: SharedArrayBuffer;
  /** The worker's thread index (1..size; the calling thread is 0). */
  readonly tid: number;
}

/** Starts one worker that calls WORKER_SOURCE's `run(init)`; it must not keep its host alive when idle. */
export type Spawner = (init: WorkerInit) => void;

/** The WASM `gemm` export's signature (byte addresses and element counts, all i32). */
export type GemmFn = (...args: number[]) => void;

/**
 * A pool of `size` workers plus the calling thread. Workers start lazily on the first `start()` and
 * take part once all of them have instantiated the module (`ready`); until then callers run alone.
 */
export class GemmPool {
  readonly size: number;
  private readonly ctrl: Int32Array;
  private started = false;
  private gen = 0;
  /** The module's export names, in the order workers index them (ctrl[FN]). */
  private readonly exportNames: readonly string[];
  /** True when the caller may block in Atomics.wait (Node's main thread, any worker); else it spins. */
  private readonly canBlock: boolean;

  constructor(
    size: number,
    private readonly spawn: Spawner,
    private readonly module: WebAssembly.Module,
    private readonly memory: WebAssembly.Memory,
    canBlock: boolean,
  ) {
    this.size = Math.max(0, Math.min(MAX_WORKERS, size));
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_INTS * 4));
    this.ctrl[TICKET] = PANEL_MASK; // closed
    this.canBlock = canBlock;
    this.exportNames = WebAssembly.Module.exports(module).map((e) => e.name);
  }

  /** Spawns the workers (once). They report ready asynchronously. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (let i = 0; i < this.size; i++) {
      this.spawn({ module: this.module, memory: this.memory, ctrl: this.ctrl.buffer as SharedArrayBuffer, tid: i + 1 });
    }
  }

  /** Row panels the workers (not callers) have computed since the pool started. */
  get workerPanels(): number {
    return Atomics.load(this.ctrl, WORKER_PANELS);
  }

  /** True when every worker has instantiated the module and waits for jobs. */
  get ready(): boolean {
    return this.started && Atomics.load(this.ctrl, READY) === this.size;
  }

  /**
   * Runs gemm(args..., r0, r1, tid) over the row panels [0, panels) (at most MAX_POOLED_PANELS), in chunks
   * claimed by the calling thread and the workers; returns when every chunk is done. Each panel is
   * computed the same way whichever thread runs it, so results do not depend on the thread count.
   * `gemm` is the module's export named `name` (workers look it up by name; at most GEMM_ARGS args);
   * a claim takes at most `maxChunk` panels (coarse units, such as conv2d's tiles, want 1).
   */
  run(gemm: GemmFn, args: readonly number[], panels: number, name = 'gemm', maxChunk = 24): void {
    const c = this.ctrl;
    const fn = this.exportNames.indexOf(name);
    if (fn < 0 || args.length > GEMM_ARGS) throw new Error(`cpu backend: no pooled export ${name}/${args.length}`);
    const gen = (this.gen = (this.gen + 1) & GEN_MASK);
    // ~4 chunks per thread balance the load; at most 24 panels (96 rows) keep the kernel's A block whole.
    const chunk = Math.max(1, Math.min(maxChunk, Math.ceil(panels / (4 * (this.size + 1)))));
    for (let i = 0; i < args.length; i++) c[ARGS + i] = args[i]!;
    c[FN] = fn;
    c[NARGS] = args.length;
    c[PANELS] = panels;
    c[CHUNK] = chunk;
    Atomics.store(c, DONE, 0);
    Atomics.store(c, FAILED, 0);
    Atomics.store(c, TICKET, gen << PANEL_BITS); // open at panel 0
    Atomics.store(c, GEN, gen);
    Atomics.notify(c, GEN);
    let failed: Error | null = null;
    for (;;) {
      const t = Atomics.load(c, TICKET);
      const start = t & PANEL_MASK;
      if (start >= panels) break;
      const end = Math.min(start + chunk, panels);
      if (Atomics.compareExchange(c, TICKET, t, (t & ~PANEL_MASK) | end) !== t) continue;
      try {
        gemm(...args, start, end, 0);
      } catch (e) {
        failed ??= e instanceof Error ? e : new Error(String(e));
      }
      Atomics.add(c, DONE, end - start);
    }
    for (let d = Atomics.load(c, DONE); d < panels; d = Atomics.load(c, DONE)) {
      if (this.canBlock) Atomics.wait(c, DONE, d);
    }
    Atomics.store(c, TICKET, (gen << PANEL_BITS) | PANEL_MASK); // closed: late workers claim nothing
    if (failed !== null) throw failed;
    if (Atomics.load(c, FAILED) !== 0) throw new Error('cpu backend: a matmul worker thread failed');
  }
}
