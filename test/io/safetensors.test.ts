// safetensors: exact round trips (every dtype, metadata, layout rules), every corruption refused with
// a message naming the problem and the tensor, lazy per-tensor reads, atomic file writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, fromFloat16Bits } from '../../src/tensor/index.js';
import { SafetensorsReader, bufferSource, loadSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import { openSafetensors, saveSafetensors } from '../../src/io/safetensors-node.js';

/** A safetensors file from a raw header object and data bytes (for the corruption cases). */
function rawFile(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

const sample = () =>
  new Map([
    ['b.f32', tensor(new Float32Array([1.5, -2, 3.25, 1e-30, -0, 7]), { shape: [2, 3] })],
    ['a.i32', tensor(new Int32Array([-5, 2147483647]), { shape: [2] })],
    ['c.u32', tensor(new Uint32Array([4294967295]), { shape: [1] })],
    ['d.f16', fromFloat16Bits(new Uint16Array([0x3c00, 0xc000, 0x7bff]), [3])],
    ['e.bool', tensor([true, false, true])],
    ['f.scalar', tensor(new Float32Array([42]), { shape: [] })],
    ['g.empty', tensor(new Float32Array(0), { shape: [0, 4] })],
  ]);

test('round trip is exact for every dtype, with metadata', async () => {
  const src = sample();
  const bytes = await serializeSafetensors(src, { format: 'pt', note: 'x' });
  const { tensors, metadata } = await loadSafetensors(bytes);
  assert.deepEqual(metadata, { format: 'pt', note: 'x' });
  assert.deepEqual([...tensors.keys()].sort(), [...src.keys()].sort());
  for (const [k, t] of src) {
    const u = tensors.get(k)!;
    assert.equal(u.dtype, t.dtype, k);
    assert.deepEqual(u.shape, t.shape, k);
    assert.deepEqual(Array.from(await u.toArray()), Array.from(await t.toArray()), k);
  }
  // serializing what was loaded gives the same bytes
  assert.deepEqual(await serializeSafetensors(tensors, metadata), bytes);
});

test('layout: sorted header keys, header padded to 8, no holes, each tensor aligned to its element size', async () => {
  const bytes = await serializeSafetensors(sample(), { format: 'pt' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  const keys = Object.keys(header);
  assert.deepEqual(keys, ['__metadata__', ...keys.slice(1).sort()]);
  const r = await SafetensorsReader.open(bufferSource(bytes));
  let at = r.header.dataStart;
  for (const e of r.header.entries) {
    assert.equal(e.begin, at, `${e.name} starts where the previous ended`);
    const size = { F32: 4, I32: 4, U32: 4, F16: 2, BOOL: 1 }[e.dtype]!;
    assert.equal(e.begin % size, 0, `${e.name} aligned`);
    at = e.end;
  }
  assert.equal(at, bytes.byteLength);
});

test('BF16 and F64 load as float32', async () => {
  const bf = new Uint16Array([0x3f80, 0xc040, 0x4049]); // 1, -3, 3.140625
  const f64 = new Float64Array([0.5, -1e10]);
  const data = new Uint8Array(6 + 2 + 16);
  data.set(new Uint8Array(f64.buffer), 0);
  data.set(new Uint8Array(bf.buffer), 16);
  const file = rawFile(
    {
      x: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
      y: { dtype: 'BF16', shape: [3], data_offsets: [16, 22] },
    },
    data,
  );
  const { tensors } = await loadSafetensors(file);
  assert.equal(tensors.get('y')!.dtype, 'float32');
  assert.deepEqual(Array.from(await tensors.get('y')!.toArray()), [1, -3, 3.140625]);
  assert.deepEqual(Array.from(await tensors.get('x')!.toArray()), [0.5, -1e10]);
});

const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
const CORRUPT: { name: string; file: () => Uint8Array; message: RegExp }[] = [
  { name: 'shorter than 8 bytes', file: () => new Uint8Array(5), message: /truncated: 5 bytes/ },
  {
    name: 'header length past the end',
    file: () => rawFile(ok, new Uint8Array(8)).subarray(0, 20),
    message: /header length \d+ runs past the end of the file \(20 bytes\)/,
  },
  { name: 'bad JSON', file: () => rawFile(null, new Uint8Array(8), '{"w": {'), message: /not valid JSON/ },
  { name: 'not an object', file: () => rawFile([1, 2], new Uint8Array(0)), message: /not a JSON object/ },
  {
    name: 'unknown dtype',
    file: () => rawFile({ w: { dtype: 'Q7', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)),
    message: /tensor 'w': unknown dtype "Q7"/,
  },
  {
    name: 'bad shape',
    file: () => rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, new Uint8Array(8)),
    message: /tensor 'w': shape must be a list of non-negative integers/,
  },
  {
    name: 'truncated data',
    file: () => rawFile(ok, new Uint8Array(6)),
    message: /tensor 'w': data_offsets \[0, 8\] run past the end of the data \(6 bytes\): the file is truncated/,
  },
  {
    name: 'size mismatch',
    file: () => rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
    message: /tensor 'w': shape \[3\] of F32 needs 12 bytes, data_offsets span 8/,
  },
  {
    name: 'reversed offsets',
    file: () => rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, new Uint8Array(8)),
    message: /tensor 'w': data_offsets \[8, 0\] end before they begin/,
  },
  {
    name: 'overlapping tensors',
    file: () =>
      rawFile(
        {
          w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          v: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        new Uint8Array(12),
      ),
    message: /tensors 'w' and 'v' overlap/,
  },
  {
    name: 'bad metadata',
    file: () => rawFile({ __metadata__: { a: 1 }, ...ok }, new Uint8Array(8)),
    message: /__metadata__\.a must be a string/,
  },
];

for (const c of CORRUPT) {
  test(`refused: ${c.name}`, async () => {
    await assert.rejects(SafetensorsReader.open(bufferSource(c.file()), 'bad.safetensors'), (e: Error) => {
      assert.match(e.message, /^safetensors: bad\.safetensors: /);
      assert.match(e.message, c.message);
      return true;
    });
  });
}

test('files: lazy reads touch only the header and the tensor asked for; writes are atomic', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tl-st-'));
  try {
    const path = join(dir, 'm.safetensors');
    const src = sample();
    await saveSafetensors(path, src, { format: 'pt' });
    assert.deepEqual(await readdir(dir), ['m.safetensors'], 'no temp file left');
    assert.deepEqual(new Uint8Array(await readFile(path)), await serializeSafetensors(src, { format: 'pt' }));
    const r = await openSafetensors(path);
    const reads = (r.source as unknown as { reads: { offset: number; length: number }[] }).reads;
    assert.equal(reads.length, 2, 'open reads the length prefix and the header only');
    const e = r.entry('a.i32')!;
    const t = await r.read('a.i32');
    assert.deepEqual(Array.from(await t.toArray()), [-5, 2147483647]);
    assert.deepEqual(reads.slice(2), [{ offset: e.begin, length: 8 }], 'one read, of that tensor only');
    await assert.rejects(r.read('nope'), /no tensor named 'nope'/);
    await r.close();
    // a corrupt file on disk names its path
    await writeFile(path, new Uint8Array(3));
    await assert.rejects(openSafetensors(path), new RegExp(`safetensors: ${path}: the file is truncated`));
    // a failed write keeps the old file and leaves no temp file
    await assert.rejects(saveSafetensors(path, new Map([['__metadata__', tensor([1])]])), /cannot name a tensor/);
    await mkdir(join(dir, 'sub.safetensors'));
    await assert.rejects(saveSafetensors(join(dir, 'sub.safetensors'), src));
    assert.deepEqual((await readdir(dir)).sort(), ['m.safetensors', 'sub.safetensors']);
    assert.deepEqual(new Uint8Array(await readFile(path)), new Uint8Array(3));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
