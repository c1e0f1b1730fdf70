// Node helpers that save and load the tokenizer of a model folder, whatever its kind: a CharTokenizer as
// chars.json, a byte-level BPE as vocab.json + merges.txt (or a Hugging Face tokenizer.json on load).
// Node-only like bpefiles.ts, so it is imported by path rather than through data/index.ts.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { TensorloomError } from '../core/errors.js';
import type { BPETokenizer } from './bpe.js';
import { loadBPE, saveBPE } from './bpefiles.js';
import { CharTokenizer } from './chars.js';

/** A tokenizer that a model folder can hold. */
export type Tokenizer = CharTokenizer | BPETokenizer;

/** The file a CharTokenizer is saved in. */
export const CHARS_FILE = 'chars.json';
const BPE_FILES = ['vocab.json', 'merges.txt', 'tokenizer.json'] as const;

/** The JSON layout of chars.json; `type` guards against reading some other JSON file as a vocabulary. */
interface CharsJson {
  readonly type: 'chars';
  readonly chars: readonly string[];
}

/**
 * Writes `tok` into folder `dir` (created if missing). A folder holds one tokenizer: the files of the
 * other kind are removed, so that `loadTokenizer` cannot pick up a stale one left by an earlier save.
 */
export function saveTokenizer(dir: string, tok: Tokenizer): void {
  mkdirSync(dir, { recursive: true });
  if (tok instanceof CharTokenizer) {
    const body: CharsJson = { type: 'chars', chars: tok.chars };
    const file = join(dir, CHARS_FILE);
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(body));
    renameSync(tmp, file);
    for (const f of BPE_FILES) rmSync(join(dir, f), { force: true });
  } else {
    saveBPE(tok, dir);
    rmSync(join(dir, CHARS_FILE), { force: true });
    // vocab.json + merges.txt take precedence on load; an old tokenizer.json would only mislead readers.
    rmSync(join(dir, 'tokenizer.json'), { force: true });
  }
}

/** Parses chars.json, with errors naming the file. */
function readChars(file: string): CharTokenizer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new TensorloomError(`${file}: cannot read a character vocabulary: ${(e as Error).message}`);
  }
  const body = parsed as Partial<CharsJson> | null;
  if (
    typeof body !== 'object' ||
    body === null ||
    body.type !== 'chars' ||
    !Array.isArray(body.chars) ||
    !body.chars.every((c) => typeof c === 'string' && [...c].length === 1)
  )
    throw new TensorloomError(
      `${file}: expected {"type":"chars","chars":[...]} with one character per entry; got ${JSON.stringify(parsed).slice(0, 80)}`,
    );
  try {
    return new CharTokenizer(body.chars);
  } catch (e) {
    throw new TensorloomError(`${file}: ${(e as Error).message}`);
  }
}

/**
 * Loads the tokenizer saved in folder `dir`: chars.json (CharTokenizer), else vocab.json + merges.txt or
 * tokenizer.json (BPETokenizer). A missing folder, or a folder with none of these, is an error naming it.
 */
export function loadTokenizer(dir: string): Tokenizer {
  if (!existsSync(dir)) throw new TensorloomError(`tokenizer folder ${dir} does not exist`);
  const chars = join(dir, CHARS_FILE);
  if (existsSync(chars)) return readChars(chars);
  const hasBPE =
    (existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt'))) ||
    existsSync(join(dir, 'tokenizer.json'));
  if (hasBPE) return loadBPE(dir);
  throw new TensorloomError(
    `${dir}: no tokenizer found (expected ${CHARS_FILE}, vocab.json + merges.txt, or tokenizer.json)`,
  );
}
