// The safetensors format, platform-neutral (bytes in, tensors out): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__?}, then the raw data.
// Every field is validated before use; tensors are read lazily, one byte range each.
import { TensorloomError } from '../core/errors.js';
import type { DType, TypedArray } from '../core/dtype.js';
import { f16DecodeTable, f32ToF16Bits } from '../core/float16.js';
import { fromFloat16Bits, tensor, toArray, type DeviceLike, type Tensor } from '../tensor/index.js';

/** Bytes per element of every dtype the format names (read support is narrower, see `readTensor`). */
const ITEM_SIZE: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
}; // prettier-ignore

/** The safetensors dtype written for each tensorloom dtype. */
const FILE_DTYPE: Readonly<Record<DType, string>> = {
  float32: 'F32',
  float16: 'F16',
  int32: 'I32',
  uint32: 'U32',
  bool: 'BOOL',
};

/** The tensorloom dtype each readable file dtype loads as (BF16 and F64 widen/narrow to float32). */
const LOAD_DTYPE: Readonly<Record<string, DType>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'float32',
  F64: 'float32',
  I32: 'int32',
  U32: 'uint32',
  BOOL: 'bool',
};

/** A header larger than this is refused as corrupt (the HF libraries use the same 100 MB limit). */
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor's entry in the header. `begin`/`end` are absolute byte offsets in the file. */
export interface SafetensorsEntry {
  name: string;
  /** The file's dtype string (F32, F16, BF16, I32, ...). */
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** A parsed, validated header. */
export interface SafetensorsHeader {
  /** Entries in file order (by data offset). */
  entries: SafetensorsEntry[];
  /** The `__metadata__` strings ({} when absent). */
  metadata: Record<string, string>;
  /** Absolute offset of the data section (8 + header length). */
  dataStart: number;
}

/** Random access to the bytes of a file or buffer: the lazy reader needs nothing else. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly byteLength: number;
  /** Reads `length` bytes at `offset` into a new buffer (refuses a short read). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the source (closes the file); reads afterwards fail. */
  close?(): Promise<void>;
}

/** A ByteSource over bytes already in memory. */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return {
    byteLength: bytes.byteLength,
    read: (offset, length) => {
      if (offset < 0 || offset + length > bytes.byteLength)
        return Promise.reject(new TensorloomError(`read of ${length} bytes at ${offset} is past the end`));
      return Promise.resolve(bytes.slice(offset, offset + length));
    },
  };
}

function fail(file: string, msg: string): never {
  throw new TensorloomError(`safetensors: ${file}: ${msg}`);
}

/**
 * Validates a header: `prefix` is the file's first 8 bytes, `json` the header bytes, `fileSize` the
 * total size. Checks the JSON, every dtype, shape and offset pair, that each byte span equals
 * shape × itemsize, that spans lie inside the file and do not overlap. `file` names the source in errors.
 */
export function parseHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const dataStart = 8 + json.byteLength;
  const dataSize = fileSize - dataStart;
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    fail(file, `the header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, 'the header is not a JSON object');
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(file, '__metadata__ must be an object');
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') fail(file, `__metadata__.${k} must be a string, got ${typeof s}`);
        metadata[k] = s;
      }
      continue;
    }
    const bad = (msg: string): never => fail(file, `tensor '${name}': ${msg}`);
    if (typeof v !== 'object' || v === null) bad('the entry is not an object');
    const { dtype, shape, data_offsets: offs } = v as Record<string, unknown>;
    if (typeof dtype !== 'string' || ITEM_SIZE[dtype] === undefined) bad(`unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0))
      bad(`shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0))
      bad(`data_offsets must be [begin, end], got ${JSON.stringify(offs)}`);
    const [b, e] = offs as [number, number];
    const dims = shape as number[];
    if (e < b) bad(`data_offsets [${b}, ${e}] end before they begin`);
    if (e > dataSize)
      bad(`data_offsets [${b}, ${e}] run past the end of the data (${dataSize} bytes): the file is truncated`);
    const want = dims.reduce((a, d) => a * d, 1) * ITEM_SIZE[dtype as string]!;
    if (e - b !== want)
      bad(`shape [${dims.join(', ')}] of ${dtype as string} needs ${want} bytes, data_offsets span ${e - b}`);
    entries.push({ name, dtype: dtype as string, shape: dims, begin: dataStart + b, end: dataStart + e });
  }
  entries.sort((x, y) => x.begin - y.begin || x.end - y.end);
  for (let i = 1; i < entries.length; i++) {
    const [p, q] = [entries[i - 1]!, entries[i]!];
    if (q.begin < p.end && q.end > q.begin) fail(file, `tensors '${p.name}' and '${q.name}' overlap`);
  }
  return { entries, metadata, dataStart };
}

/** Lazily reads tensors from a safetensors source: the header at open, each tensor's bytes on demand. */
export class SafetensorsReader {
  private readonly byName: Map<string, SafetensorsEntry>;

  private constructor(
    readonly source: ByteSource,
    readonly header: SafetensorsHeader,
    /** The name used in error messages (a path, or 'buffer'). */
    readonly file: string,
  ) {
    this.byName = new Map(header.entries.map((e) => [e.name, e]));
  }

  /** Reads and validates the header of `source` (`file` names it in errors). */
  static async open(source: ByteSource, file = 'buffer'): Promise<SafetensorsReader> {
    const size = source.byteLength;
    if (size < 8) fail(file, `the file is truncated: ${size} bytes, the header length alone takes 8`);
    const prefix = await source.read(0, 8);
    const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
    if (n > BigInt(size - 8)) fail(file, `the header length ${n} runs past the end of the file (${size} bytes)`);
    if (n > BigInt(MAX_HEADER_BYTES)) fail(file, `the header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit`);
    const json = await source.read(8, Number(n));
    return new SafetensorsReader(source, parseHeader(json, size, file), file);
  }

  /** Tensor names in file order. */
  names(): string[] {
    return this.header.entries.map((e) => e.name);
  }

  /** The entry of `name`, or undefined. */
  entry(name: string): SafetensorsEntry | undefined {
    return this.byName.get(name);
  }

  /** The dtype tensorloom loads `name` as (undefined when the file dtype is not readable). */
  loadDType(name: string): DType | undefined {
    const e = this.byName.get(name);
    return e && LOAD_DTYPE[e.dtype];
  }

  /** The raw bytes of one tensor (reads only its span). */
  async readBytes(name: string): Promise<Uint8Array> {
    const e = this.byName.get(name);
    if (!e) fail(this.file, `no tensor named '${name}'`);
    return this.source.read(e.begin, e.end - e.begin);
  }

  /**
   * Reads one tensor onto `device`; BF16 and F64 load as float32, and so does F16 with
   * `{ float32: true }` (widened on the host, for devices without float16).
   */
  async read(name: string, opts: { device?: DeviceLike; float32?: boolean } = {}): Promise<Tensor> {
    const e = this.byName.get(name);
    if (!e) fail(this.file, `no tensor named '${name}'`);
    if (!LOAD_DTYPE[e.dtype]) fail(this.file, `tensor '${name}': dtype ${e.dtype} is not supported for loading`);
    const bytes = await this.readBytes(name);
    if (opts.float32 && e.dtype === 'F16') {
      const table = f16DecodeTable();
      const h = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
      return tensor(
        Float32Array.from(h, (x) => table[x]!),
        { shape: e.shape, device: opts.device },
      );
    }
    return decodeTensor(e, bytes, opts.device);
  }

  /** Closes the source. */
  async close(): Promise<void> {
    await this.source.close?.();
  }
}

/** Builds a tensor from the (copied, hence aligned) little-endian bytes of entry `e`. */
function decodeTensor(e: SafetensorsEntry, b: Uint8Array, device: DeviceLike | undefined): Tensor {
  const buf = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.slice().buffer;
  const shape = e.shape;
  switch (e.dtype) {
    case 'F32':
      return tensor(new Float32Array(buf), { shape, device });
    case 'F16':
      return fromFloat16Bits(new Uint16Array(buf), shape, { device });
    case 'BF16': {
      const h = new Uint16Array(buf);
      const w = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) w[i] = h[i]! << 16; // bfloat16 is the top half of a float32
      return tensor(new Float32Array(w.buffer), { shape, device });
    }
    case 'F64':
      return tensor(Float32Array.from(new Float64Array(buf)), { shape, device });
    case 'I32':
      return tensor(new Int32Array(buf), { shape, device });
    case 'U32':
      return tensor(new Uint32Array(buf), { shape, device });
    default: // BOOL
      return tensor(new Uint8Array(buf), { shape, device, dtype: 'bool' });
  }
}

/** A tensor to write: its values as host bytes. */
interface Blob {
  name: string;
  dtype: string;
  shape: readonly number[];
  bytes: Uint8Array;
}

/** Host bytes of `t` in its file dtype (float16 as binary16 words). */
async function tensorBytes(t: Tensor): Promise<Uint8Array> {
  const a = await toArray(t);
  let out: TypedArray = a;
  if (t.dtype === 'float16') out = Uint16Array.from(a, (x) => f32ToF16Bits(x));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Serializes `tensors` to safetensors bytes. The header's keys are sorted (`__metadata__` first) and
 * padded with spaces to a multiple of 8; the data has no holes (as the format requires) and is laid out
 * by element size, largest first, then by name, so every tensor starts aligned to its element size.
 */
export async function serializeSafetensors(
  tensors: ReadonlyMap<string, Tensor>,
  metadata: Readonly<Record<string, string>> = {},
): Promise<Uint8Array> {
  const blobs: Blob[] = [];
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new TensorloomError(`safetensors: '__metadata__' cannot name a tensor`);
    blobs.push({ name, dtype: FILE_DTYPE[t.dtype], shape: t.shape, bytes: await tensorBytes(t) });
  }
  blobs.sort((x, y) => ITEM_SIZE[y.dtype]! - ITEM_SIZE[x.dtype]! || (x.name < y.name ? -1 : 1));
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const b of blobs) {
    header[b.name] = { dtype: b.dtype, shape: [...b.shape], data_offsets: [off, off + b.bytes.byteLength] };
    off += b.bytes.byteLength;
  }
  const keys = Object.keys(header).sort();
  const ordered: Record<string, unknown> = Object.keys(metadata).length ? { __metadata__: sortKeys(metadata) } : {};
  for (const k of keys) ordered[k] = header[k];
  let json = new TextEncoder().encode(JSON.stringify(ordered));
  const pad = (8 - (json.byteLength % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(ordered) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.byteLength + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const b of blobs) {
    out.set(b.bytes, at);
    at += b.bytes.byteLength;
  }
  return out;
}

function sortKeys(o: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]!]),
  );
}

/** Parses safetensors bytes held in memory and reads every tensor (the eager convenience path). */
export async function loadSafetensors(
  bytes: Uint8Array,
  opts: { device?: DeviceLike } = {},
): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  const r = await SafetensorsReader.open(bufferSource(bytes));
  const tensors = new Map<string, Tensor>();
  for (const name of r.names()) tensors.set(name, await r.read(name, opts));
  return { tensors, metadata: r.header.metadata };
}
