// Token shard files: round trips in both dtypes, atomic writes, and a clear error naming the file for each
// kind of corruption (short file, bad magic, unknown version, bad id width, truncated body, extra bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SHARD_HEADER_BYTES,
  decodeShard,
  encodeShard,
  readShard,
  shardDTypeFor,
  writeShard,
} from '../../src/io/shards.js';

function withDir(f: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'loom-shards-'));
  try {
    f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('shards round-trip uint16 and uint32 ids, with the documented little-endian header', () => {
  withDir((dir) => {
    const small = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 65536);
    const file = join(dir, 'a.bin');
    writeShard(file, small);
    const bytes = readFileSync(file);
    assert.equal(bytes.length, SHARD_HEADER_BYTES + 2 * 1000);
    assert.equal(bytes.subarray(0, 8).toString('latin1'), 'LOOMTOKS');
    assert.deepEqual([...bytes.subarray(8, 24)], [1, 0, 0, 0, 2, 0, 0, 0, 0xe8, 0x03, 0, 0, 0, 0, 0, 0]);
    assert.equal(bytes.readUInt16LE(SHARD_HEADER_BYTES + 2), 7919); // ids little-endian
    const s = readShard(file);
    assert.equal(s.dtype, 'uint16');
    assert.ok(s.tokens instanceof Uint16Array);
    assert.deepEqual([...s.tokens], small);

    const big = [0, 65536, 4294967295, 50256];
    assert.equal(shardDTypeFor(big), 'uint32');
    writeShard(file, big);
    const t = readShard(file);
    assert.equal(t.dtype, 'uint32');
    assert.deepEqual([...t.tokens], big);
    writeShard(file, [1, 2, 3], 'uint32'); // an explicit dtype wins
    assert.equal(readShard(file).dtype, 'uint32');
    writeShard(file, []);
    assert.equal(readShard(file).tokens.length, 0);
    assert.deepEqual(readdirSync(dir), ['a.bin']); // no temp files left behind
  });
});

test('encodeShard refuses ids that do not fit the dtype', () => {
  assert.throws(() => encodeShard([1, 70000], 'uint16'), /token 70000 at position 1 does not fit uint16/);
  assert.throws(() => encodeShard([-1]), /token -1/);
  assert.throws(() => encodeShard([1.5]), /token 1.5/);
});

test('every kind of corrupt shard gets a clear error naming the file', () => {
  const good = encodeShard([1, 2, 3, 4], 'uint16');
  const bad = (f: (b: Uint8Array) => Uint8Array) => f(good.slice());
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, 20), /shorter than the 32-byte header/],
    [bad((b) => ((b[0] = 0x58), b)), /not a token shard \(magic "XOOMTOKS"/],
    [bad((b) => ((b[8] = 2), b)), /version 2 is not supported/],
    [bad((b) => ((b[12] = 3), b)), /3 bytes per id/],
    [good.subarray(0, good.length - 1), /39 bytes but its header says 4 tokens \(40 bytes\); the file is truncated/],
    [Uint8Array.of(...good, 0, 0), /42 bytes but its header says 4 tokens/],
    [bad((b) => ((b[16] = 200), b)), /header says 200 tokens/],
  ];
  for (const [bytes, re] of cases)
    assert.throws(
      () => decodeShard(bytes, 'x/train.bin'),
      (e: Error) => re.test(e.message) && e.message.startsWith('x/train.bin: '),
    );
  withDir((dir) => {
    const file = join(dir, 'cut.bin');
    writeFileSync(file, good.subarray(0, 35));
    assert.throws(
      () => readShard(file),
      (e: Error) => e.message.startsWith(`${file}: token shard is 35 bytes`),
    );
    assert.throws(() => readShard(join(dir, 'missing.bin')), /cannot read token shard .*missing\.bin/);
    assert.throws(() => writeShard(join(dir, 'no-dir', 'x.bin'), [1]), /cannot write token shard .*x\.bin/);
  });
});
