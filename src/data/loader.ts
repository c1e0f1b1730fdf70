// The streaming batch loader: token shards (io/shards.ts) read on a worker thread into (B, T+1) windows
// in a seeded per-epoch order, with a few batches kept prefetched so the training thread never waits on
// the disk. Its state is three counters, so a checkpoint resumes the exact batch sequence. Node only.
import { closeSync, existsSync, fstatSync, openSync, readSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { TensorloomError } from '../core/errors.js';
import { SHARD_HEADER_BYTES, SHARD_MAGIC, SHARD_VERSION } from '../io/shards.js';
import type { HostBatch } from './batches.js';
import { windowCount, type LoaderReply, type LoaderRequest, type LoaderWorkerInit } from './loaderworker.js';

/** Options of `ShardLoader.open`. */
export interface ShardLoaderOptions {
  /** Windows per batch (B). */
  readonly batchSize: number;
  /** Tokens per input row (T); each window holds T + 1. */
  readonly blockSize: number;
  /** Keys the window order of every epoch. */
  readonly seed: number;
  /** Batches read ahead on the worker thread, 1 to 16 (default 3; 2-4 hide the disk). */
  readonly prefetch?: number;
  /** Visit the windows in a seeded order (default true); false: in stream order. */
  readonly shuffle?: boolean;
}

/**
 * Where the loader stands: the batch the next `next()` call returns starts at entry `position` of epoch
 * `epoch`'s window order. Plain JSON; `windowsPerEpoch` identifies the data and block size it belongs to.
 */
export interface LoaderState {
  readonly epoch: number;
  readonly position: number;
  readonly seed: number;
  readonly windowsPerEpoch: number;
}

interface Cursor {
  epoch: number;
  position: number;
}

/** A requested batch: its promise settles when the worker answers. */
interface Slot {
  readonly id: number;
  readonly promise: Promise<HostBatch>;
  readonly resolve: (b: HostBatch) => void;
  readonly reject: (e: Error) => void;
}

const here = 'data/loader.ts';

/** Reads and checks the header of the open shard `file`; returns its token count and bytes per id. */
function readHeader(fd: number, file: string): { count: number; width: number } {
  const head = new Uint8Array(SHARD_HEADER_BYTES);
  const got = readSync(fd, head, 0, SHARD_HEADER_BYTES, 0);
  const size = fstatSync(fd).size;
  if (got < SHARD_HEADER_BYTES)
    throw new TensorloomError(`${file}: not a token shard (${size} bytes, shorter than the 32-byte header)`);
  const magic = String.fromCharCode(...head.subarray(0, 8));
  if (magic !== SHARD_MAGIC)
    throw new TensorloomError(`${file}: not a token shard (magic ${JSON.stringify(magic)}, expected "${SHARD_MAGIC}")`);
  const view = new DataView(head.buffer);
  const version = view.getUint32(8, true);
  if (version !== SHARD_VERSION)
    throw new TensorloomError(`${file}: token shard version ${version} is not supported (expected ${SHARD_VERSION})`);
  const width = view.getUint32(12, true);
  if (width !== 2 && width !== 4)
    throw new TensorloomError(`${file}: token shard has ${width} bytes per id (expected 2 or 4)`);
  const count = Number(view.getBigUint64(16, true));
  const expected = SHARD_HEADER_BYTES + count * width;
  if (size !== expected)
    throw new TensorloomError(
      `${file}: token shard is ${size} bytes but its header says ${count} tokens (${expected} bytes); the file is truncated or corrupt`,
    );
  return { count, width };
}

/** Starts the reader thread, from source under tsx or from the built dist/ (loader hooks do not reach workers). */
function startWorker(init: LoaderWorkerInit): Worker {
  const self = new URL(import.meta.url);
  const ext = self.pathname.endsWith('.ts') ? '.ts' : '.js';
  const entry = new URL(`./loaderworker${ext}`, self);
  const options = { workerData: init, execArgv: [], name: 'tensorloom-loader' };
  if (ext === '.js') return new Worker(entry, options);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const code = `import(${tsx}).then((t) => t.register()).then(() => import(${JSON.stringify(entry.href)}))`;
  return new Worker(code, { ...options, eval: true });
}

/** Resolves when the reader thread says it is ready; rejects if it fails or exits first. */
async function readyOf(w: Worker): Promise<void> {
  let onMessage!: (m: LoaderReply) => void;
  let onError!: (e: Error) => void;
  let onExit!: (code: number) => void;
  try {
    await new Promise<void>((resolve, reject) => {
      onMessage = (m) => (m.type === 'ready' ? resolve() : reject(new Error(`sent ${m.type} first`)));
      onError = reject;
      onExit = (code) => reject(new Error(`exited with code ${code}`));
      w.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
  } catch (e) {
    throw new TensorloomError(`ShardLoader (${here}): the reader thread did not start: ${(e as Error).message}`);
  } finally {
    // only these listeners: the Worker keeps internal ones of its own
    w.off('message', onMessage).off('error', onError).off('exit', onExit);
  }
}

function checkCount(what: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new TensorloomError(`ShardLoader (${here}): ${what} must be an integer in [${min}, ${max}], got ${v}`);
}

/**
 * Streams (B, T+1) batches from token shards. The shards are one stream (in the order given; windows cross
 * file boundaries), cut into `windowsPerEpoch` windows of T+1 tokens at stride T: consecutive windows share
 * one token, so each token is a target once per epoch (the last (tokens - 1) % T tokens, too few for a
 * window, are never read). Each epoch visits every window once, in an order computed from (seed, epoch)
 * (`WindowOrder` in loaderworker.ts); a batch is B consecutive entries of that order,
 * and epochs roll over inside a batch if need be. Files are read on a worker thread that keeps `prefetch`
 * batches in flight. Call `close()` when done; a forgotten loader does not keep the process alive.
 */
export class ShardLoader {
  private seed: number;
  /** The batch the next `next()` returns. */
  private cursor: Cursor = { epoch: 0, position: 0 };
  /** The batch the next prefetch request asks for. */
  private ahead: Cursor = { epoch: 0, position: 0 };
  /** Requested batches not yet handed to a `next()` call, in order. */
  private queue: Slot[] = [];
  /** Requests the worker has not answered, by id (handed out or not). */
  private readonly pending = new Map<number, Slot>();
  private nextId = 0;
  private waiting = 0;
  private closed = false;
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly fds: readonly number[],
    /** The shard files, in stream order. */
    readonly files: readonly string[],
    /** Tokens in all the files. */
    readonly tokens: number,
    /** Windows each epoch visits. */
    readonly windowsPerEpoch: number,
    readonly batchSize: number,
    readonly blockSize: number,
    readonly prefetch: number,
    seed: number,
  ) {
    this.seed = seed;
    worker.on('message', (m: LoaderReply) => this.onReply(m));
    worker.on('error', (e) => this.fail(`its reader thread failed: ${e.message}`));
    worker.on('exit', (code) => this.fail(`its reader thread exited (code ${code})`));
    worker.unref();
    this.refill();
  }

  /**
   * Opens `files` (token shards, validated now: a missing, unreadable or corrupt file is an error naming it)
   * and starts prefetching epoch 0. Rejects when the files hold fewer than blockSize + 1 tokens.
   */
  static async open(files: readonly string[], opts: ShardLoaderOptions): Promise<ShardLoader> {
    const { batchSize, blockSize, seed, prefetch = 3, shuffle = true } = opts;
    checkCount('batchSize', batchSize, 1);
    checkCount('blockSize', blockSize, 1);
    checkCount('prefetch', prefetch, 1, 16);
    if (!Number.isSafeInteger(seed))
      throw new TensorloomError(`ShardLoader (${here}): seed must be an integer, got ${seed}`);
    if (files.length === 0) throw new TensorloomError(`ShardLoader (${here}): no shard files given`);
    const fds: number[] = [];
    const counts: number[] = [];
    const widths: number[] = [];
    let worker: Worker | undefined;
    try {
      for (const file of files) {
        try {
          fds.push(openSync(file, 'r'));
          const { count, width } = readHeader(fds[fds.length - 1]!, file);
          counts.push(count);
          widths.push(width);
        } catch (e) {
          if (e instanceof TensorloomError) throw e;
          throw new TensorloomError(`cannot read token shard ${file}: ${(e as Error).message}`);
        }
      }
      const tokens = counts.reduce((a, b) => a + b, 0);
      const windows = windowCount(tokens, blockSize);
      if (windows < 1)
        throw new TensorloomError(
          `ShardLoader (${here}): ${files.join(', ')} hold ${tokens} tokens (${counts.join(' + ')}), ` +
            `too few for one window of blockSize + 1 = ${blockSize + 1} tokens`,
        );
      const init: LoaderWorkerInit = {
        kind: 'tensorloom-loader',
        files,
        fds,
        counts,
        widths,
        batchSize,
        blockSize,
        shuffle,
      };
      const w = startWorker(init);
      worker = w;
      await readyOf(w);
      return new ShardLoader(w, fds, [...files], tokens, windows, batchSize, blockSize, prefetch, seed);
    } catch (e) {
      if (worker) await worker.terminate();
      for (const fd of fds) closeSync(fd);
      throw e;
    }
  }

  /** The next batch. The state advances when this is called, so `getState()` then names the batch after it. */
  next(): Promise<HostBatch> {
    if (this.closed) return Promise.reject(new TensorloomError(`ShardLoader (${here}): next() after close()`));
    const slot = this.queue.shift()!;
    this.cursor = this.advance(this.cursor);
    this.refill();
    // keep the process alive only while someone awaits a batch
    if (this.waiting++ === 0) this.worker.ref();
    const settled = () => {
      if (--this.waiting === 0 && !this.closed) this.worker.unref();
    };
    slot.promise.then(settled, settled);
    return slot.promise;
  }

  /** The state of the batch the next `next()` call returns (not of what is prefetched). JSON-serializable. */
  getState(): LoaderState {
    return { ...this.cursor, seed: this.seed, windowsPerEpoch: this.windowsPerEpoch };
  }

  /**
   * Makes the next `next()` return the batch `s` names (from `getState()`, possibly of another process with
   * the same files and block size): drops what was prefetched and prefetches from there. Batches already
   * asked for by earlier `next()` calls still arrive.
   */
  setState(s: LoaderState): void {
    if (this.closed) throw new TensorloomError(`ShardLoader (${here}): setState() after close()`);
    if (s.windowsPerEpoch !== this.windowsPerEpoch)
      throw new TensorloomError(
        `ShardLoader (${here}): the state is for ${s.windowsPerEpoch} windows per epoch, but ${this.files.join(', ')} ` +
          `with blockSize ${this.blockSize} make ${this.windowsPerEpoch}; a different dataset or block size`,
      );
    checkCount('state.epoch', s.epoch, 0);
    checkCount('state.position', s.position, 0, this.windowsPerEpoch - 1);
    if (!Number.isSafeInteger(s.seed))
      throw new TensorloomError(`ShardLoader (${here}): state.seed must be an integer, got ${s.seed}`);
    for (const slot of this.queue) this.pending.delete(slot.id); // their answers will be ignored
    this.queue = [];
    this.seed = s.seed;
    this.cursor = { epoch: s.epoch, position: s.position };
    this.ahead = { ...this.cursor };
    this.refill();
  }

  /** Stops the reader thread and closes the files; pending and later `next()` calls reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new TensorloomError(`ShardLoader (${here}): closed while a batch was pending`);
    for (const slot of this.pending.values()) slot.reject(err);
    this.pending.clear();
    this.queue = [];
    await this.worker.terminate();
    for (const fd of this.fds) closeSync(fd);
  }

  private advance(c: Cursor): Cursor {
    const p = c.position + this.batchSize;
    return { epoch: c.epoch + Math.floor(p / this.windowsPerEpoch), position: p % this.windowsPerEpoch };
  }

  /** Tops the queue up to `prefetch` requested batches. */
  private refill(): void {
    while (this.queue.length < this.prefetch) {
      let resolve!: (b: HostBatch) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<HostBatch>((res, rej) => ((resolve = res), (reject = rej)));
      promise.catch(() => {}); // a prefetched batch that fails rejects only when someone asks for it
      const slot: Slot = { id: this.nextId++, promise, resolve, reject };
      this.queue.push(slot);
      if (this.failure) {
        reject(this.failure);
        continue;
      }
      this.pending.set(slot.id, slot);
      const req: LoaderRequest = { id: slot.id, ...this.ahead, seed: this.seed };
      this.worker.postMessage(req);
      this.ahead = this.advance(this.ahead);
    }
  }

  private onReply(m: LoaderReply): void {
    if (m.type === 'ready') return;
    const slot = this.pending.get(m.id);
    if (!slot) return; // dropped by setState
    this.pending.delete(m.id);
    if (m.type === 'error') slot.reject(new TensorloomError(`ShardLoader (${here}): ${m.message}`));
    else slot.resolve({ windows: m.windows, x: m.x, y: m.y, batchSize: this.batchSize, blockSize: this.blockSize });
  }

  private fail(why: string): void {
    if (this.closed || this.failure) return;
    this.failure = new TensorloomError(`ShardLoader (${here}) on ${this.files.join(', ')}: ${why}`);
    for (const slot of this.pending.values()) slot.reject(this.failure);
    this.pending.clear();
  }
}

/**
 * The shard files of `split` that `loom prepare` wrote into `dir`: `DIR/train.bin` or `DIR/val.bin`, plus
 * numbered parts (`train-0001.bin`, ...) in numeric order where a larger dataset was written in pieces.
 * Throws naming the folder and the expected file when there are none.
 */
export function listShards(dir: string, split: 'train' | 'val'): string[] {
  if (!existsSync(dir)) throw new TensorloomError(`listShards (${here}): data folder ${dir} does not exist`);
  const part = new RegExp(`^${split}-(\\d+)\\.bin$`);
  const names = readdirSync(dir);
  const parts = names
    .map((n) => ({ n, m: part.exec(n) }))
    .filter((p) => p.m)
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((p) => p.n);
  const files = [...(names.includes(`${split}.bin`) ? [`${split}.bin`] : []), ...parts].map((n) => join(dir, n));
  if (files.length === 0)
    throw new TensorloomError(
      `listShards (${here}): no ${split} shards in ${dir} (expected ${join(dir, `${split}.bin`)}, written by loom prepare)`,
    );
  return files;
}
