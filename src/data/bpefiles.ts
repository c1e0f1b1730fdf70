// Node helpers that read and write a BPE tokenizer folder: vocab.json + merges.txt (GPT-2's layout), or a
// Hugging Face tokenizer.json. Kept apart from bpe.ts so that the tokenizer itself stays browser safe.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { TensorloomError } from '../core/errors.js';
import { BPETokenizer } from './bpe.js';

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new TensorloomError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Re-throws a parse error with the file's path in front, so the message names the file. */
function naming<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TensorloomError) throw new TensorloomError(`${file}: ${e.message}`);
    throw e;
  }
}

/**
 * Loads the tokenizer in folder `dir`: vocab.json + merges.txt if both exist, else tokenizer.json.
 * A folder with neither is an error listing what was looked for.
 */
export function loadBPE(dir: string): BPETokenizer {
  const vocab = join(dir, 'vocab.json');
  const merges = join(dir, 'merges.txt');
  const tj = join(dir, 'tokenizer.json');
  if (existsSync(vocab) && existsSync(merges)) {
    const v = read(vocab);
    const m = read(merges);
    return naming(dir, () => BPETokenizer.fromFiles(v, m));
  }
  if (existsSync(tj)) {
    const t = read(tj);
    return naming(tj, () => BPETokenizer.fromTokenizerJson(t));
  }
  throw new TensorloomError(`${dir}: no tokenizer found (expected vocab.json + merges.txt, or tokenizer.json)`);
}

/** Writes `file` atomically: a temporary file in the same folder, then a rename. */
function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** Writes vocab.json and merges.txt for `tok` into the existing folder `dir` (GPT-2's layout). */
export function saveBPE(tok: BPETokenizer, dir: string): void {
  writeAtomic(join(dir, 'vocab.json'), JSON.stringify(tok.vocabObject()));
  writeAtomic(join(dir, 'merges.txt'), tok.mergesText());
}
