// `loom prepare`: turns the user's text into token shards for training: trains a byte-level BPE on it
// (or loads a GPT-2 tokenizer folder), encodes every document, and writes train/val shards plus the
// tokenizer files (vocab.json, merges.txt) and a prepare.json summary into the output folder.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { TensorloomError } from '../core/errors.js';
import { type BPETokenizer, END_OF_TEXT, trainBPE } from '../data/index.js';
import { loadBPE, saveBPE } from '../data/bpefiles.js';
import { encodeParallel } from '../data/bpeworkers.js';
import { shardDTypeFor, writeShard } from '../io/shards.js';
import { helpText, parseArgs, type OptionSpec } from './args.js';

const OPTIONS = {
  input: { kind: 'string', help: 'a text file, or a folder whose files (recursively, sorted) are the documents' },
  out: { kind: 'string', help: 'output folder for train.bin, val.bin, vocab.json, merges.txt, prepare.json' },
  'vocab-size': { kind: 'number', help: 'train a BPE with this many ids on the input (default 4096)' },
  tokenizer: { kind: 'string', help: 'use this tokenizer folder instead (vocab.json + merges.txt, or tokenizer.json)' },
  'val-fraction': { kind: 'number', help: 'fraction of the tokens held out for validation, at the end (default 0.1)' },
  threads: {
    kind: 'number',
    help: 'worker threads for encoding (default: cores - 1, up to 8, used from 16M characters; 1: none)',
  },
  help: { kind: 'boolean', help: 'show this help' },
} satisfies Record<string, OptionSpec>;

const DESCRIPTION =
  'Tokenizes text for training: trains a byte-level BPE on the input (or loads a GPT-2 tokenizer with\n' +
  '--tokenizer), encodes each document followed by <|endoftext|>, and writes token shards for training\n' +
  '(train.bin) and validation (val.bin) with the tokenizer files, so that a run can decode its samples.';

/** The files under `dir`, recursively, sorted by path, skipping hidden names. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

/** Reads the documents of `input` (a file, or every file in a folder). */
function readDocuments(input: string): { files: string[]; docs: string[] } {
  if (!existsSync(input)) throw new TensorloomError(`loom prepare: --input ${input} does not exist`);
  const files = statSync(input).isDirectory() ? listFiles(input) : [input];
  const docs = files.map((f) => readFileSync(f, 'utf8'));
  return { files, docs };
}

/** Returns a reporter that prints `label [#####.....] 50% detail` through `out` each time another 10% is done. */
function progress(out: (s: string) => void, label: string): (done: number, total: number, detail?: string) => void {
  let shown = -1;
  return (done, total, detail = '') => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const tenth = Math.floor(frac * 10);
    if (tenth === shown) return;
    shown = tenth;
    const bar = '#'.repeat(tenth * 2).padEnd(20, '.');
    out(`${label} [${bar}] ${String(Math.floor(frac * 100)).padStart(3)}%${detail ? ' ' + detail : ''}`);
  };
}

const isSpace = (c: string | undefined) => c !== undefined && /\p{White_Space}/u.test(c);

/**
 * A position in (at, end] where the text can be cut without changing its encoding: after a newline
 * followed by a non-space, else before a single space between two non-spaces (both are always boundaries
 * of GPT-2's pre-tokens), else `end` itself (a very long run with neither: still an exact round trip).
 */
function cutAt(doc: string, at: number, end: number): number {
  if (end >= doc.length) return doc.length;
  for (let p = end; p > at + 1; p--) if (doc[p - 1] === '\n' && !isSpace(doc[p])) return p;
  for (let p = end; p > at + 1; p--) if (doc[p] === ' ' && !isSpace(doc[p - 1]) && !isSpace(doc[p + 1])) return p;
  // do not split a surrogate pair
  return end - (/[\ud800-\udbff]/.test(doc[end - 1] ?? '') ? 1 : 0);
}

/** Corpora smaller than this many characters are encoded on this thread (worker start-up would cost more). */
const PARALLEL_MIN_CHARS = 16 << 20;

/**
 * Encodes the documents (each followed by <|endoftext|>) in chunks of about 1M characters cut at pre-token
 * boundaries (so the ids equal encoding each document whole), on worker threads when `threads` > 1 and
 * the corpus is large (or `forceThreads`), reporting progress per chunk.
 */
async function encodeAll(
  tok: BPETokenizer,
  docs: readonly string[],
  threads: number,
  forceThreads: boolean,
  out: (s: string) => void,
): Promise<Uint32Array> {
  const eot = tok.specialId(END_OF_TEXT);
  const chunks: string[] = [];
  const docEnds: number[] = []; // chunk count after each document
  for (const doc of docs) {
    for (let at = 0; at < doc.length;) {
      const end = cutAt(doc, at, Math.min(doc.length, at + (1 << 20)));
      chunks.push(doc.slice(at, end));
      at = end;
    }
    docEnds.push(chunks.length);
  }
  const total = chunks.reduce((s, c) => s + c.length, 0);
  const parallel = threads > 1 && chunks.length > 1 && (forceThreads || total >= PARALLEL_MIN_CHARS);
  out(
    `encoding ${chunks.length} chunk(s) ${parallel ? `on ${Math.min(threads, chunks.length)} worker threads` : 'on this thread'}`,
  );
  const report = progress(out, 'encoding');
  let done = 0;
  const tick = (i: number) => {
    done += chunks[i]!.length;
    report(done, total, `${(done / 1e6).toFixed(1)}M of ${(total / 1e6).toFixed(1)}M characters`);
  };
  let encoded: Int32Array[];
  if (parallel) encoded = await encodeParallel(tok, chunks, threads, tick);
  else
    encoded = chunks.map((c, i) => {
      const ids = tok.encode(c, { allowSpecial: false });
      tick(i);
      return ids;
    });
  const count = encoded.reduce((s, e) => s + e.length, 0) + (eot !== undefined ? docs.length : 0);
  const all = new Uint32Array(count);
  let k = 0;
  let c = 0;
  for (const last of docEnds) {
    for (; c < last; c++) {
      all.set(encoded[c]!, k);
      k += encoded[c]!.length;
    }
    if (eot !== undefined) all[k++] = eot;
  }
  return all;
}

function writeText(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Runs `loom prepare`; returns the process exit code. */
export async function prepareCommand(argv: readonly string[], out: (s: string) => void): Promise<number> {
  const a = parseArgs('prepare', argv, OPTIONS);
  if (a.help) {
    out(helpText('prepare', DESCRIPTION, OPTIONS));
    return 0;
  }
  const input = a.input as string | undefined;
  const outDir = a.out as string | undefined;
  if (!input || !outDir)
    throw new TensorloomError('loom prepare: --input and --out are required (see loom prepare --help)');
  if (a['vocab-size'] !== undefined && a.tokenizer !== undefined)
    throw new TensorloomError(
      'loom prepare: give either --vocab-size (train a BPE) or --tokenizer (load one), not both',
    );
  const vocabSize = (a['vocab-size'] as number | undefined) ?? 4096;
  if (!Number.isInteger(vocabSize) || vocabSize < 257 || vocabSize > 65536 * 16)
    throw new TensorloomError(`loom prepare: --vocab-size must be an integer from 257 to 1048576, got ${vocabSize}`);
  if (a.threads !== undefined && !(Number.isInteger(a.threads) && (a.threads as number) >= 1))
    throw new TensorloomError(`loom prepare: --threads must be a whole number >= 1, got ${a.threads as number}`);
  const valFraction = (a['val-fraction'] as number | undefined) ?? 0.1;
  if (!(valFraction >= 0 && valFraction < 1))
    throw new TensorloomError(`loom prepare: --val-fraction must be in [0, 1), got ${valFraction}`);

  // everything is read and checked before anything is written
  const { files, docs } = readDocuments(input);
  const chars = docs.reduce((s, d) => s + d.length, 0);
  if (chars === 0)
    throw new TensorloomError(`loom prepare: the corpus ${input} is empty (${files.length} files, no text)`);
  out(`loom prepare: ${files.length} file(s), ${chars.toLocaleString('en')} characters from ${input}`);

  let tok: BPETokenizer;
  if (a.tokenizer !== undefined) {
    tok = loadBPE(a.tokenizer as string);
    out(`tokenizer: ${a.tokenizer as string} (${tok.vocabSize} ids, ${tok.merges.length} merges)`);
  } else {
    const t0 = performance.now();
    const report = progress(out, 'training BPE');
    tok = trainBPE(docs.join('\n'), vocabSize, {
      onProgress: (done, total) => report(done, total, `${done} of ${total} tokens`),
    });
    const short = tok.vocabSize < vocabSize ? `; fewer than ${vocabSize}: no pair left occurs twice in the text` : '';
    out(
      `tokenizer: trained byte-level BPE, ${tok.vocabSize} ids (${tok.merges.length} merges) in ${((performance.now() - t0) / 1000).toFixed(1)} s${short}`,
    );
  }

  const t0 = performance.now();
  const threadsOpt = a.threads as number | undefined;
  const threads = threadsOpt ?? Math.min(8, Math.max(1, availableParallelism() - 1));
  const ids = await encodeAll(tok, docs, threads, threadsOpt !== undefined, out);
  const secs = (performance.now() - t0) / 1000;
  if (ids.length < 2) throw new TensorloomError('loom prepare: the corpus encodes to fewer than 2 tokens');
  const nVal = Math.floor(ids.length * valFraction);
  const train = ids.subarray(0, ids.length - nVal);
  const val = ids.subarray(ids.length - nVal);
  const dtype = shardDTypeFor([tok.vocabSize - 1]);

  mkdirSync(outDir, { recursive: true });
  writeShard(join(outDir, 'train.bin'), train, dtype);
  writeShard(join(outDir, 'val.bin'), val, dtype);
  saveBPE(tok, outDir);
  const summary = {
    input: resolve(input),
    files: files.length,
    characters: chars,
    vocabSize: tok.vocabSize,
    tokenizer: a.tokenizer !== undefined ? resolve(a.tokenizer as string) : 'trained',
    dtype,
    trainTokens: train.length,
    valTokens: val.length,
  };
  writeText(join(outDir, 'prepare.json'), JSON.stringify(summary, null, 2) + '\n');
  out(
    `wrote ${outDir}: train.bin ${train.length.toLocaleString('en')} tokens, val.bin ${val.length.toLocaleString('en')} tokens ` +
      `(${dtype}), ${(chars / ids.length).toFixed(2)} characters/token, encoded in ${secs.toFixed(1)} s`,
  );
  return 0;
}
