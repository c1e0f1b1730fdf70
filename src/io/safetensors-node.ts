// Node file access for safetensors: a lazy reader over an open file (each tensor read at its offset,
// nothing else loaded) and atomic writes (temp file + fsync + rename, so a crash never leaves a partial file).
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { TensorloomError } from '../core/errors.js';
import type { Tensor } from '../tensor/index.js';
import { SafetensorsReader, serializeSafetensors, type ByteSource } from './safetensors.js';

/** A ByteSource over an open file; `reads` counts the byte ranges read (for tests and stats). */
export interface FileSource extends ByteSource {
  readonly reads: { offset: number; length: number }[];
  close(): Promise<void>;
}

/** Opens `path` as a ByteSource (reads go to the file at their offset). */
export async function fileSource(path: string): Promise<FileSource> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw new TensorloomError(`safetensors: cannot open ${path}: ${e instanceof Error ? e.message : String(e)}`);
  });
  const { size } = await fh.stat();
  const reads: { offset: number; length: number }[] = [];
  return {
    byteLength: size,
    reads,
    async read(offset, length) {
      const buf = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new TensorloomError(`safetensors: ${path}: short read at ${offset + got}`);
        got += bytesRead;
      }
      reads.push({ offset, length });
      return buf;
    },
    close: () => fh.close(),
  };
}

/** Opens a safetensors file lazily: only the header is read now. Call `close()` when done. */
export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  const src = await fileSource(path);
  try {
    return await SafetensorsReader.open(src, path);
  } catch (e) {
    await src.close();
    throw e;
  }
}

/** Writes `bytes` to `path` atomically: a temp file beside it, fsync, then rename over `path`. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now().toString(36)}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Serializes `tensors` (see `serializeSafetensors`) and writes them to `path` atomically. */
export async function saveSafetensors(
  path: string,
  tensors: ReadonlyMap<string, Tensor>,
  metadata: Readonly<Record<string, string>> = {},
): Promise<void> {
  await writeFileAtomic(path, await serializeSafetensors(tensors, metadata));
}

/** Reads a UTF-8 text file, with an error naming the path when it is missing or unreadable. */
export async function readTextFile(path: string): Promise<string> {
  return readFile(path, 'utf8').catch((e: unknown) => {
    throw new TensorloomError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  });
}

/** Creates folder `path` and its parents (no error when it exists). */
export async function makeDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
}
