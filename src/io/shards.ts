// Token shard files: a fixed little-endian header followed by the token ids, written by `loom prepare`
// and read by the data loader. Writes are atomic (temp file + rename); reads validate everything.
//
// Layout (all little-endian), 32-byte header so the ids start 8-byte aligned:
//   offset  size  field
//   0       8     magic, ASCII "LOOMTOKS"
//   8       4     version, uint32 = 1
//   12      4     bytes per id, uint32: 2 (uint16 ids) or 4 (uint32 ids)
//   16      8     token count, uint64
//   24      8     reserved, zero
//   32      n*b   the ids
// The file size must be exactly 32 + count * bytes-per-id.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { TensorloomError } from '../core/errors.js';

/** The element type of a shard's ids. */
export type ShardDType = 'uint16' | 'uint32';

/** A shard's ids, as stored. */
export interface Shard {
  readonly dtype: ShardDType;
  readonly tokens: Uint16Array | Uint32Array;
}

/** The magic bytes that open every shard file. */
export const SHARD_MAGIC = 'LOOMTOKS';
/** The shard format version this code writes and reads. */
export const SHARD_VERSION = 1;
/** Size of the header in bytes. */
export const SHARD_HEADER_BYTES = 32;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The smallest dtype that holds every id in `ids` (uint16 when all are below 65536). */
export function shardDTypeFor(ids: ArrayLike<number>): ShardDType {
  for (let i = 0; i < ids.length; i++) if (ids[i]! > 0xffff) return 'uint32';
  return 'uint16';
}

/** The bytes of a shard file holding `ids` (each an integer in the dtype's range). */
export function encodeShard(ids: ArrayLike<number>, dtype: ShardDType = shardDTypeFor(ids)): Uint8Array {
  const width = dtype === 'uint16' ? 2 : 4;
  const max = dtype === 'uint16' ? 0xffff : 0xffffffff;
  const out = new Uint8Array(SHARD_HEADER_BYTES + ids.length * width);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = SHARD_MAGIC.charCodeAt(i);
  view.setUint32(8, SHARD_VERSION, true);
  view.setUint32(12, width, true);
  view.setBigUint64(16, BigInt(ids.length), true);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (!Number.isInteger(v) || v < 0 || v > max)
      throw new TensorloomError(`shard: token ${v} at position ${i} does not fit ${dtype}`);
    if (width === 2) view.setUint16(SHARD_HEADER_BYTES + 2 * i, v, true);
    else view.setUint32(SHARD_HEADER_BYTES + 4 * i, v, true);
  }
  return out;
}

/** Parses shard bytes; `name` (the file) appears in every error. Refuses a bad magic, version, dtype or size. */
export function decodeShard(bytes: Uint8Array, name: string): Shard {
  if (bytes.length < SHARD_HEADER_BYTES)
    throw new TensorloomError(`${name}: not a token shard (${bytes.length} bytes, shorter than the 32-byte header)`);
  const magic = String.fromCharCode(...bytes.subarray(0, 8));
  if (magic !== SHARD_MAGIC)
    throw new TensorloomError(`${name}: not a token shard (magic ${JSON.stringify(magic)}, expected "${SHARD_MAGIC}")`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== SHARD_VERSION)
    throw new TensorloomError(`${name}: token shard version ${version} is not supported (expected ${SHARD_VERSION})`);
  const width = view.getUint32(12, true);
  if (width !== 2 && width !== 4)
    throw new TensorloomError(`${name}: token shard has ${width} bytes per id (expected 2 or 4)`);
  const count = view.getBigUint64(16, true);
  const expected = BigInt(SHARD_HEADER_BYTES) + count * BigInt(width);
  if (BigInt(bytes.length) !== expected)
    throw new TensorloomError(
      `${name}: token shard is ${bytes.length} bytes but its header says ${count} tokens (${expected} bytes); the file is truncated or corrupt`,
    );
  const n = Number(count);
  const tokens = width === 2 ? new Uint16Array(n) : new Uint32Array(n);
  const body = bytes.subarray(SHARD_HEADER_BYTES);
  if (LITTLE_ENDIAN) new Uint8Array(tokens.buffer).set(body);
  else
    for (let i = 0; i < n; i++)
      tokens[i] = width === 2 ? view.getUint16(32 + 2 * i, true) : view.getUint32(32 + 4 * i, true);
  return { dtype: width === 2 ? 'uint16' : 'uint32', tokens };
}

/** Writes `ids` to `file` as a shard, atomically (a temp file beside it, then a rename). */
export function writeShard(file: string, ids: ArrayLike<number>, dtype?: ShardDType): void {
  const bytes = encodeShard(ids, dtype);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new TensorloomError(`cannot write token shard ${file}: ${(e as Error).message}`);
  }
}

/** Reads and validates the shard `file`. */
export function readShard(file: string): Shard {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new TensorloomError(`cannot read token shard ${file}: ${(e as Error).message}`);
  }
  return decodeShard(bytes, file);
}
