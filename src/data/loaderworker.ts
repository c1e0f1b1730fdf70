// The reader thread of the shard loader (see loader.ts), and the pure functions both sides share: the
// window count of a token stream and the seeded per-epoch window order. Given (epoch, position, seed) for
// a batch, the thread reads its B windows from the shard files (already opened and validated by the main
// thread), assembles windows/x/y and transfers the buffers back. It keeps no cursor: every request says
// where its batch starts, so a seek on the main thread needs nothing from here.
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { SHARD_HEADER_BYTES } from '../io/shards.js';

/** What the main thread passes when it starts the reader thread. */
export interface LoaderWorkerInit {
  readonly kind: 'tensorloom-loader';
  readonly files: readonly string[];
  /** Open file descriptors of `files` (process-wide, so the main thread closes them after the thread ends). */
  readonly fds: readonly number[];
  /** Token count of each file. */
  readonly counts: readonly number[];
  /** Bytes per id of each file: 2 or 4. */
  readonly widths: readonly number[];
  readonly batchSize: number;
  readonly blockSize: number;
  readonly shuffle: boolean;
}

/** A request for the batch whose first window is entry `position` of epoch `epoch`'s order. */
export interface LoaderRequest {
  readonly id: number;
  readonly epoch: number;
  readonly position: number;
  readonly seed: number;
}

/** The reader thread's messages. */
export type LoaderReply =
  | { readonly type: 'ready' }
  | {
      readonly type: 'batch';
      readonly id: number;
      readonly windows: Int32Array;
      readonly x: Int32Array;
      readonly y: Int32Array;
    }
  | { readonly type: 'error'; readonly id: number; readonly message: string };

/**
 * Windows of `blockSize + 1` tokens at stride `blockSize` in a stream of `tokens` tokens: consecutive
 * windows share one token, so every token but the first is a target exactly once per epoch.
 */
export function windowCount(tokens: number, blockSize: number): number {
  return tokens > blockSize ? Math.floor((tokens - 1) / blockSize) : 0;
}

/** A 32-bit integer hash (xor-shift / multiply avalanche) used to derive round keys and round outputs. */
function mix32(v: number): number {
  let h = v >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

const ROUNDS = 4;

/**
 * The order in which one epoch visits `n` windows: a bijection of [0, n) keyed by (seed, epoch), computed
 * per index in O(1) memory, so a loader's state is just counters. It is a balanced Feistel network on the
 * smallest even power of two >= n, walked until it lands back inside [0, n) ("cycle walking": a permutation
 * of the larger domain restricted to the cycle through i stays a bijection of [0, n)); fewer than 4 steps
 * are expected. With `shuffle` false the order is the identity.
 */
export class WindowOrder {
  private readonly keys: number[] = [];
  private readonly half: number;
  constructor(
    readonly n: number,
    readonly seed: number,
    readonly epoch: number,
    readonly shuffle = true,
  ) {
    let bits = 0;
    while (2 ** bits < n) bits++;
    this.half = 2 ** Math.max(1, Math.ceil(bits / 2));
    // every bit of a seed or epoch up to 2^53 feeds the keys
    const seedKey = mix32(mix32(seed >>> 0) ^ Math.floor(seed / 2 ** 32));
    const epochKey = mix32(mix32(epoch >>> 0) ^ Math.floor(epoch / 2 ** 32) ^ 0x5bd1e995);
    for (let r = 0; r < ROUNDS; r++) this.keys.push(mix32(seedKey ^ mix32(epochKey + Math.imul(r + 1, 0x9e3779b9))));
  }

  /** The window visited at entry `i` (0 <= i < n) of the epoch. */
  at(i: number): number {
    if (!this.shuffle || this.n <= 1) return i;
    let v = i;
    do v = this.feistel(v);
    while (v >= this.n);
    return v;
  }

  private feistel(v: number): number {
    const size = this.half;
    let left = Math.floor(v / size);
    let right = v % size;
    for (const key of this.keys) {
      const next = left ^ (mix32(right ^ key) % size);
      left = right;
      right = next;
    }
    return left * size + right;
  }
}

/** Reads batches for the requests it gets; one instance per reader thread. */
class BatchReader {
  private readonly starts: number[] = [];
  private readonly scratch: Uint8Array;
  private readonly view: DataView;
  private readonly n: number;
  private orders: WindowOrder[] = [];

  constructor(private readonly init: LoaderWorkerInit) {
    let total = 0;
    for (const c of init.counts) {
      this.starts.push(total);
      total += c;
    }
    this.n = windowCount(total, init.blockSize);
    this.scratch = new Uint8Array((init.blockSize + 1) * 4);
    this.view = new DataView(this.scratch.buffer);
  }

  private order(epoch: number, seed: number): WindowOrder {
    let o = this.orders.find((w) => w.epoch === epoch && w.seed === seed);
    if (!o) {
      o = new WindowOrder(this.n, seed, epoch, this.init.shuffle);
      this.orders = [...this.orders.slice(-1), o]; // a batch spans at most this epoch and the next
    }
    return o;
  }

  /** The batch for `req`: B consecutive entries of the order, rolling over into the next epoch. */
  read(req: LoaderRequest): { windows: Int32Array; x: Int32Array; y: Int32Array } {
    const { batchSize: B, blockSize: T } = this.init;
    const windows = new Int32Array(B * (T + 1));
    for (let b = 0; b < B; b++) {
      const p = req.position + b;
      const epoch = req.epoch + Math.floor(p / this.n);
      const w = this.order(epoch, req.seed).at(p % this.n);
      this.readTokens(w * T, T + 1, windows, b * (T + 1));
    }
    // x/y host copies are made here, off the training thread (batches.ts's splitWindows would drag the
    // tensor layer into this thread's startup)
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const row = windows.subarray(b * (T + 1), (b + 1) * (T + 1));
      x.set(row.subarray(0, T), b * T);
      y.set(row.subarray(1), b * T);
    }
    return { windows, x, y };
  }

  /** Copies `count` tokens of the concatenated stream from `first` into `out` at `at`, across files. */
  private readTokens(first: number, count: number, out: Int32Array, at: number): void {
    let s = 0; // the last file starting at or before `first` (an empty file shares its start with the next)
    for (let lo = 0, hi = this.starts.length - 1; lo <= hi;) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= first) {
        s = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    while (count > 0) {
      const local = first - this.starts[s]!;
      const take = Math.min(count, this.init.counts[s]! - local);
      if (take > 0) this.readIds(s, local, take, out, at);
      first += take;
      at += take;
      count -= take;
      s++;
    }
  }

  private readIds(s: number, local: number, take: number, out: Int32Array, at: number): void {
    const file = this.init.files[s]!;
    const width = this.init.widths[s]!;
    const bytes = take * width;
    const offset = SHARD_HEADER_BYTES + local * width;
    let got = 0;
    while (got < bytes) {
      let r: number;
      try {
        r = readSync(this.init.fds[s]!, this.scratch, got, bytes - got, offset + got);
      } catch (e) {
        throw new Error(`cannot read token shard ${file}: ${(e as Error).message}`);
      }
      if (r === 0)
        throw new Error(
          `${file}: token shard ended at byte ${offset + got}, but ids ${local}..${local + take - 1} (bytes ${offset}..${offset + bytes - 1}) ` +
            `were expected; the file was truncated or replaced after the loader opened it`,
        );
      got += r;
    }
    for (let i = 0; i < take; i++) {
      const v = width === 2 ? this.view.getUint16(2 * i, true) : this.view.getUint32(4 * i, true);
      if (v > 0x7fffffff)
        throw new Error(`${file}: token id ${v} at position ${local + i} does not fit int32 (ids must be < 2^31)`);
      out[at + i] = v;
    }
  }
}

const init = workerData as Partial<LoaderWorkerInit> | null;
if (parentPort && init?.kind === 'tensorloom-loader') {
  const port = parentPort;
  const reader = new BatchReader(init as LoaderWorkerInit);
  port.on('message', (req: LoaderRequest) => {
    let reply: LoaderReply;
    try {
      reply = { type: 'batch', id: req.id, ...reader.read(req) };
    } catch (e) {
      port.postMessage({ type: 'error', id: req.id, message: (e as Error).message } satisfies LoaderReply);
      return;
    }
    port.postMessage(reply, [
      reply.windows.buffer as ArrayBuffer,
      reply.x.buffer as ArrayBuffer,
      reply.y.buffer as ArrayBuffer,
    ]);
  });
  port.postMessage({ type: 'ready' } satisfies LoaderReply);
}
