// The streaming shard loader: every window is the slice of the written ids it claims to be (across shard
// boundaries, uint16 and uint32 files), each epoch visits each window once in a seeded order, state resumes
// the exact batch sequence, errors name the file, and a loader never keeps the process from exiting.
// Also the (B, T+1) batch layout: WindowSampler's windows and uploadBatch's single host-to-device write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeShard } from '../../src/io/shards.js';
import { ShardLoader, listShards, type LoaderState } from '../../src/data/loader.js';
import { WindowOrder } from '../../src/data/loaderworker.js';
import { WindowSampler, getBackend, uploadBatch, type HostBatch } from '../../src/index.js';

async function withDir(f: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'loom-loader-'));
  try {
    await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Distinct ids (so a window's first id says where it starts); those in [bigFrom, bigTo) exceed 65535. */
function makeIds(n: number, bigFrom = 0, bigTo = 0): number[] {
  return Array.from({ length: n }, (_, i) => (i >= bigFrom && i < bigTo ? 70000 + 3 * i : 5 + 2 * i));
}

/** Writes `ids` cut at `cuts` into shard files a.bin, b.bin, ... (each the smallest dtype that fits). */
function writeParts(dir: string, ids: number[], cuts: number[]): string[] {
  const bounds = [0, ...cuts, ids.length];
  return bounds.slice(1).map((end, i) => {
    const file = join(dir, `${String.fromCharCode(97 + i)}.bin`);
    writeShard(file, ids.slice(bounds[i], end));
    return file;
  });
}

/** The index w of the window `row` (T+1 ids) in `ids`, after checking it is exactly ids[w*T .. w*T+T]. */
function windowIndex(row: Int32Array, ids: number[], T: number): number {
  const start = ids.indexOf(row[0]!);
  assert.ok(start >= 0 && start % T === 0, `window starting with ${row[0]} is not at a multiple of T=${T}`);
  assert.deepEqual([...row], ids.slice(start, start + T + 1), `window ${start / T} is the slice of the ids`);
  return start / T;
}

/** Checks x/y against the windows' columns and returns the window index of each row. */
function batchWindows(batch: HostBatch, ids: number[]): number[] {
  const { batchSize: B, blockSize: T } = batch;
  assert.equal(batch.windows.length, B * (T + 1));
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    const row = batch.windows.subarray(b * (T + 1), (b + 1) * (T + 1));
    assert.deepEqual([...batch.x.subarray(b * T, (b + 1) * T)], [...row.subarray(0, T)], 'x is windows[:, :-1]');
    assert.deepEqual([...batch.y.subarray(b * T, (b + 1) * T)], [...row.subarray(1)], 'y is windows[:, 1:]');
    out.push(windowIndex(row, ids, T));
  }
  return out;
}

async function take(loader: ShardLoader, n: number): Promise<HostBatch[]> {
  const out: HostBatch[] = [];
  for (let i = 0; i < n; i++) out.push(await loader.next());
  return out;
}

const flat = (bs: HostBatch[]) => bs.flatMap((b) => [...b.windows]);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

test(
  'windows are slices of the ids across uint16/uint32 shards; each epoch visits each window once',
  { timeout: 60_000 },
  async () => {
    await withDir(async (dir) => {
      const ids = makeIds(213, 41, 90);
      // uint16, uint32, empty, uint16 files: windows cross every boundary (the files are one stream)
      const files = writeParts(dir, ids, [41, 90, 90]);
      assert.deepEqual(
        files.map((f) => readFileSync(f)[12]),
        [2, 4, 2, 2],
        'bytes per id of each file',
      );
      const B = 3;
      const T = 8;
      const loader = await ShardLoader.open(files, { batchSize: B, blockSize: T, seed: 7 });
      try {
        assert.equal(loader.tokens, 213);
        assert.equal(loader.windowsPerEpoch, Math.floor(212 / 8)); // 26: not a multiple of B, so batches straddle epochs
        const N = loader.windowsPerEpoch;
        const batches = await take(loader, Math.ceil((3 * N) / B) + 1);
        const seq = batches.flatMap((b) => batchWindows(b, ids));
        for (let e = 0; e < 3; e++) {
          const epoch = seq.slice(e * N, (e + 1) * N);
          assert.deepEqual(
            [...epoch].sort((a, b) => a - b),
            range(N),
            `epoch ${e} visits every window once`,
          );
          assert.notDeepEqual(epoch, range(N), `epoch ${e} is shuffled`);
        }
        assert.notDeepEqual(seq.slice(0, N), seq.slice(N, 2 * N), 'each epoch has its own order');
        assert.deepEqual(loader.getState(), {
          epoch: Math.floor((batches.length * B) / N),
          position: (batches.length * B) % N,
          seed: 7,
          windowsPerEpoch: N,
        });
      } finally {
        await loader.close();
      }
    });
  },
);

test(
  'without shuffle the windows come in stream order; the same seed repeats the order, another changes it',
  { timeout: 60_000 },
  async () => {
    await withDir(async (dir) => {
      const ids = makeIds(101);
      const files = writeParts(dir, ids, [50]);
      const opts = { batchSize: 4, blockSize: 5, seed: 1 };
      const plain = await ShardLoader.open(files, { ...opts, shuffle: false, prefetch: 2 });
      const a = await ShardLoader.open(files, opts);
      const b = await ShardLoader.open(files, { ...opts, prefetch: 4 });
      const c = await ShardLoader.open(files, { ...opts, seed: 2 });
      try {
        const N = plain.windowsPerEpoch;
        assert.equal(N, 20);
        const seq = (await take(plain, 10)).flatMap((x) => batchWindows(x, ids));
        assert.deepEqual(seq, [...range(N), ...range(N)]);
        const [ra, rb, rc] = await Promise.all([take(a, 10), take(b, 10), take(c, 10)]);
        assert.deepEqual(flat(rb), flat(ra), 'same seed, same batches (whatever the prefetch depth)');
        assert.notDeepEqual(flat(rc), flat(ra), 'another seed, another order');
        const wc = rc.flatMap((x) => batchWindows(x, ids));
        assert.deepEqual(
          wc.slice(0, N).sort((p, q) => p - q),
          range(N),
          'still each window once',
        );
      } finally {
        await Promise.all([plain.close(), a.close(), b.close(), c.close()]);
      }
    });
  },
);

test('the window order is a bijection for many sizes, keyed by seed and epoch', () => {
  for (const n of [1, 2, 3, 5, 16, 17, 100, 255, 256, 257, 1000]) {
    const order = new WindowOrder(n, 123, 4);
    const seen = range(n).map((i) => order.at(i));
    assert.deepEqual(
      [...seen].sort((p, q) => p - q),
      range(n),
      `n=${n}`,
    );
  }
  const at = (seed: number, epoch: number) => range(64).map((i) => new WindowOrder(64, seed, epoch).at(i));
  assert.deepEqual(at(9, 0), at(9, 0));
  assert.notDeepEqual(at(9, 0), at(10, 0));
  assert.notDeepEqual(at(9, 0), at(9, 1));
  assert.notDeepEqual(at(2 ** 40, 0), at(2 ** 40 + 2 ** 33, 0), 'high seed bits matter');
  const fixed = at(9, 0).filter((v, i) => v === i).length;
  assert.ok(fixed < 8, `a shuffle moves almost every window (${fixed} of 64 stayed)`);
});

test(
  'getState/setState resume the exact batch sequence mid-epoch, across epochs, and after reading ahead',
  { timeout: 60_000 },
  async () => {
    await withDir(async (dir) => {
      const ids = makeIds(140);
      const files = writeParts(dir, ids, [33, 70]);
      const opts = { batchSize: 3, blockSize: 6, seed: 11, prefetch: 3 };
      const ref = await ShardLoader.open(files, opts);
      const N = ref.windowsPerEpoch; // 23 windows: epochs end inside batches
      const want = await take(ref, 20);
      await ref.close();
      want.forEach((b) => batchWindows(b, ids));
      for (const k of [4, 9]) {
        const a = await ShardLoader.open(files, opts);
        await take(a, k);
        const state = JSON.parse(JSON.stringify(a.getState())) as LoaderState;
        assert.deepEqual(state, {
          epoch: Math.floor((k * 3) / N),
          position: (k * 3) % N,
          seed: 11,
          windowsPerEpoch: N,
        });
        const more = await take(a, 5); // the prefetcher is now well past `state`
        assert.deepEqual(flat(more), flat(want.slice(k, k + 5)));
        a.setState(state);
        assert.deepEqual(a.getState(), state);
        assert.deepEqual(flat(await take(a, 6)), flat(want.slice(k, k + 6)), `rewound to batch ${k}`);
        await a.close();
        const b = await ShardLoader.open(files, { ...opts, seed: 999, prefetch: 2 }); // the state carries the seed
        b.setState(state);
        assert.deepEqual(flat(await take(b, 20 - k)), flat(want.slice(k)), `a new loader resumed at batch ${k}`);
        await b.close();
      }
    });
  },
);

test(
  'next() calls made before earlier ones resolve return consecutive batches; the state counts calls',
  { timeout: 60_000 },
  async () => {
    await withDir(async (dir) => {
      const ids = makeIds(90);
      const files = writeParts(dir, ids, []);
      const opts = { batchSize: 2, blockSize: 4, seed: 5, prefetch: 2 };
      const ref = await ShardLoader.open(files, opts);
      const want = await take(ref, 6);
      await ref.close();
      const a = await ShardLoader.open(files, opts);
      const got = await Promise.all(range(6).map(() => a.next()));
      assert.deepEqual(flat(got), flat(want));
      assert.deepEqual(a.getState().position, 12);
      await a.close();
      await assert.rejects(a.next(), /next\(\) after close\(\)/);
    });
  },
);

test(
  'open refuses missing and corrupt files, too few tokens and bad options, naming the file and the numbers',
  { timeout: 60_000 },
  async () => {
    await withDir(async (dir) => {
      const good = join(dir, 'good.bin');
      writeShard(good, makeIds(30));
      const opts = { batchSize: 2, blockSize: 4, seed: 1 };
      const missing = join(dir, 'missing.bin');
      await assert.rejects(ShardLoader.open([good, missing], opts), (e: Error) => e.message.includes(missing));
      const corrupt = join(dir, 'corrupt.bin');
      writeFileSync(corrupt, Buffer.concat([Buffer.from('NOTTOKEN'), Buffer.alloc(40)]));
      await assert.rejects(ShardLoader.open([good, corrupt], opts), (e: Error) => {
        assert.match(e.message, /corrupt\.bin: not a token shard \(magic "NOTTOKEN"/);
        return true;
      });
      const short = join(dir, 'short.bin');
      writeShard(short, makeIds(10));
      truncateSync(short, 32 + 2 * 9);
      await assert.rejects(
        ShardLoader.open([short], opts),
        /short\.bin: token shard is 50 bytes but its header says 10 tokens/,
      );
      const tiny = join(dir, 'tiny.bin');
      writeShard(tiny, [1, 2, 3]);
      await assert.rejects(ShardLoader.open([tiny, tiny], { ...opts, blockSize: 6 }), (e: Error) => {
        assert.ok(e.message.includes(tiny), e.message);
        assert.match(e.message, /hold 6 tokens \(3 \+ 3\), too few for one window of blockSize \+ 1 = 7 tokens/);
        return true;
      });
      await assert.rejects(ShardLoader.open([], opts), /no shard files/);
      await assert.rejects(
        ShardLoader.open([good], { ...opts, batchSize: 0 }),
        /batchSize must be an integer in \[1, .*got 0/,
      );
      await assert.rejects(
        ShardLoader.open([good], { ...opts, prefetch: 40 }),
        /prefetch must be an integer in \[1, 16\], got 40/,
      );
      const a = await ShardLoader.open([good], opts);
      assert.throws(
        () => a.setState({ ...a.getState(), windowsPerEpoch: 99 }),
        /state is for 99 windows per epoch.*make 7/,
      );
      assert.throws(
        () => a.setState({ ...a.getState(), position: 7 }),
        /state.position must be an integer in \[0, 6\], got 7/,
      );
      await a.close();
    });
  },
);

test(
  'a shard that changes under the loader rejects next() with a message naming it; others keep going',
  { timeout: 60_000 },
  async () => {
    await withDir(async (dir) => {
      const ids = makeIds(60);
      const [first, second] = writeParts(dir, ids, [30]);
      const a = await ShardLoader.open([first!, second!], {
        batchSize: 2,
        blockSize: 4,
        seed: 3,
        prefetch: 2,
        shuffle: false,
      });
      batchWindows(await a.next(), ids); // windows 0-1 live in the first file
      truncateSync(second!, 32); // its ids are gone
      a.setState({ ...a.getState(), position: 8 }); // windows 8-9: tokens 32..40, in the second file
      await assert.rejects(a.next(), (e: Error) => {
        assert.ok(e.message.includes(second!), e.message);
        assert.match(e.message, /truncated or replaced after the loader opened it/);
        return true;
      });
      a.setState({ ...a.getState(), position: 0 });
      assert.deepEqual(batchWindows(await a.next(), ids), [0, 1], 'the reader thread survives a failed batch');
      await a.close();
    });
  },
);

test(
  'listShards returns the files loom prepare writes, in order, and names what is missing',
  { timeout: 60_000 },
  async () => {
    await withDir((dir) => {
      for (const name of ['train.bin', 'val.bin', 'train-10.bin', 'train-2.bin', 'vocab.json'])
        writeFileSync(join(dir, name), '');
      assert.deepEqual(
        listShards(dir, 'train'),
        ['train.bin', 'train-2.bin', 'train-10.bin'].map((n) => join(dir, n)),
      );
      assert.deepEqual(listShards(dir, 'val'), [join(dir, 'val.bin')]);
      rmSync(join(dir, 'val.bin'));
      assert.throws(
        () => listShards(dir, 'val'),
        (e: Error) => e.message.includes(join(dir, 'val.bin')),
      );
      assert.throws(() => listShards(join(dir, 'nope'), 'train'), /data folder .*nope does not exist/);
    });
  },
);

test('close() lets the process exit, and a loader left open does not keep it alive', { timeout: 60_000 }, async () => {
  await withDir(async (dir) => {
    writeShard(join(dir, 'train.bin'), makeIds(200));
    const loaderUrl = new URL('../../src/data/loader.ts', import.meta.url).href;
    const script = join(dir, 'run.mts'); // .mts: an ES module outside the package
    writeFileSync(
      script,
      `import { ShardLoader, listShards } from ${JSON.stringify(loaderUrl)};\n` +
        `const files = listShards(${JSON.stringify(dir)}, 'train');\n` +
        `const a = await ShardLoader.open(files, { batchSize: 2, blockSize: 8, seed: 1 });\n` +
        `await a.next();\nawait a.close();\n` +
        `const b = await ShardLoader.open(files, { batchSize: 2, blockSize: 8, seed: 1, prefetch: 4 });\n` +
        `const batch = await b.next();\nconsole.log('got', batch.windows.length);\n`,
    );
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
      cwd: root,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.error, undefined, 'the process exited by itself (no timeout)');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'got 18');
  });
});

test('WindowSampler batches hold (B, T+1) windows of the stream, and x/y are their columns', () => {
  const tokens = Int32Array.from(makeIds(300));
  const ids = [...tokens];
  const s = new WindowSampler(tokens, 4, 7, 3);
  for (let i = 0; i < 5; i++) {
    const batch = s.next();
    assert.equal(batch.windows.length, 4 * 8);
    for (let b = 0; b < 4; b++) {
      const row = [...batch.windows.subarray(b * 8, b * 8 + 8)];
      const at = ids.indexOf(row[0]!);
      assert.deepEqual(row, ids.slice(at, at + 8));
      assert.deepEqual([...batch.x.subarray(b * 7, b * 7 + 7)], row.slice(0, 7));
      assert.deepEqual([...batch.y.subarray(b * 7, b * 7 + 7)], row.slice(1));
    }
  }
});

test(
  'uploadBatch makes one host-to-device write of the windows; x and y are views of it',
  { timeout: 60_000 },
  async () => {
    const B = 3;
    const T = 5;
    const ids = makeIds(B * (T + 1));
    const windows = Int32Array.from(ids);
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    const batch: HostBatch = { windows, x, y, batchSize: B, blockSize: T };
    const backend = getBackend('cpu');
    const own = Object.getOwnPropertyDescriptor(backend, 'write');
    const original = backend.write.bind(backend);
    let writes = 0;
    backend.write = (...args: Parameters<typeof backend.write>) => {
      writes++;
      original(...args);
    };
    try {
      const before = backend.stats().bytesUploaded;
      const t = uploadBatch(batch, 'cpu');
      assert.equal(writes, 1, 'one write');
      assert.equal(backend.stats().bytesUploaded - before, B * (T + 1) * 4, 'of B*(T+1) int32 ids');
      assert.deepEqual(t.windows.shape, [B, T + 1]);
      assert.deepEqual(t.x.shape, [B, T]);
      assert.deepEqual(t.y.shape, [B, T]);
      const rows = range(B).map((b) => ids.slice(b * (T + 1), (b + 1) * (T + 1)));
      assert.deepEqual(
        [...(await t.x.toArray())],
        rows.flatMap((r) => r.slice(0, T)),
      );
      assert.deepEqual(
        [...(await t.y.toArray())],
        rows.flatMap((r) => r.slice(1)),
      );
      assert.equal(writes, 1, 'reading the views wrote nothing more');
      t.windows.dispose();
      t.x.dispose();
      t.y.dispose();
    } finally {
      if (own) Object.defineProperty(backend, 'write', own);
      else delete (backend as Partial<typeof backend>).write; // back to the prototype's method
    }
    assert.throws(() => uploadBatch({ ...batch, blockSize: 4 }, 'cpu'), /needs 15 ids, got 18/);
  },
);
