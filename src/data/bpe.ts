// GPT-2 byte-level BPE: the byte-to-unicode table, the pre-tokenization pattern, merges applied by
// rank with a per-word cache, and encode/decode that round-trip any valid string exactly. Pure and
// platform neutral (strings in, ids out); reading vocab/merges files from disk lives in bpefiles.ts.
import { TensorloomError } from '../core/errors.js';
import { mergeLong, pairKey } from './bpemerge.js';

/**
 * GPT-2's pre-tokenization pattern: contractions, letter runs, digit runs, punctuation runs, spaces.
 * `\s` is spelled `\p{White_Space}` (as in Hugging Face tokenizers and tiktoken): JS's `\s` would also
 * match U+FEFF and miss U+0085.
 */
export const GPT2_PATTERN =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** GPT-2's end-of-text token. */
export const END_OF_TEXT = '<|endoftext|>';

/**
 * GPT-2's `bytes_to_unicode`: entry b is the character standing for byte b. Printable Latin-1 bytes
 * ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the other 68 map to U+0100 + n in byte order, so
 * every token string is printable and never contains a space (space is 'Ġ', newline 'Ċ').
 */
export function bytesToUnicode(): string[] {
  const table = new Array<string>(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return table;
}

const BYTE_TO_CHAR = bytesToUnicode();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));
const ENCODER = new TextEncoder();

/** Splits `text` into GPT-2 pre-tokens (the pieces BPE runs on; merges never cross them). */
export function preTokenize(text: string): string[] {
  return text.match(GPT2_PATTERN) ?? [];
}

/** The byte-level string of a piece of text: its UTF-8 bytes, each as its `bytesToUnicode` character. */
export function toByteLevel(text: string): string {
  let s = '';
  for (const b of ENCODER.encode(text)) s += BYTE_TO_CHAR[b]!;
  return s;
}

/** Options for `BPETokenizer.encode`. */
export interface EncodeOptions {
  /** Whether special tokens (e.g. `<|endoftext|>`) in the text become their ids (default true); if false
   *  they are encoded as ordinary text. */
  readonly allowSpecial?: boolean;
}

/** Escapes a string for use inside a RegExp. */
function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Most words cached at once; the cache is cleared when it fills (cheap and bounded). */
const CACHE_LIMIT = 200_000;
/** Words of more bytes than this merge with the O(n log n) mergeLong (and are not cached). */
const LONG_WORD = 64;

/** A GPT-2 compatible byte-level BPE tokenizer over a vocabulary and a ranked list of merges. */
export class BPETokenizer {
  private readonly vocab: Map<string, number>;
  private readonly tokens: string[];
  private readonly ranks: Map<string, number>;
  private readonly cache = new Map<string, number[]>();
  private readonly tokenBytes: (Uint8Array | undefined)[] = [];
  private readonly specialIds: Map<string, number>;
  private readonly specialPattern: RegExp | undefined;
  /** The merges in rank order (rank 0 first). */
  readonly merges: readonly (readonly [string, string])[];

  /**
   * `vocab` maps token strings (byte-level) to ids; `merges` are pairs in rank order. `specials` are
   * tokens matched verbatim in the text before pre-tokenization; by default `<|endoftext|>` if the
   * vocabulary has it. Every single byte must be in the vocabulary, so that any text can be encoded.
   */
  constructor(
    vocab: ReadonlyMap<string, number> | Readonly<Record<string, number>>,
    merges: readonly (readonly [string, string])[],
    specials?: readonly string[],
  ) {
    this.vocab = new Map<string, number>(vocab instanceof Map ? vocab : Object.entries(vocab));
    this.tokens = [];
    for (const [tok, id] of this.vocab) {
      if (!Number.isInteger(id) || id < 0)
        throw new TensorloomError(`BPE: token ${JSON.stringify(tok)} has invalid id ${id}`);
      if (this.tokens[id] !== undefined)
        throw new TensorloomError(
          `BPE: id ${id} is used by both ${JSON.stringify(this.tokens[id])} and ${JSON.stringify(tok)}`,
        );
      this.tokens[id] = tok;
    }
    for (const c of BYTE_TO_CHAR)
      if (!this.vocab.has(c))
        throw new TensorloomError(
          `BPE: the vocabulary lacks the byte token ${JSON.stringify(c)} (byte ${CHAR_TO_BYTE.get(c)})`,
        );
    this.merges = merges.map(([a, b]) => [a, b] as const);
    this.ranks = new Map();
    this.merges.forEach(([a, b], i) => {
      const key = pairKey(a, b);
      if (!this.ranks.has(key)) this.ranks.set(key, i); // a repeated merge keeps its first (best) rank
    });
    const sp = specials ?? (this.vocab.has(END_OF_TEXT) ? [END_OF_TEXT] : []);
    this.specialIds = new Map();
    for (const s of sp) {
      const id = this.vocab.get(s);
      if (id === undefined)
        throw new TensorloomError(`BPE: special token ${JSON.stringify(s)} is not in the vocabulary`);
      this.specialIds.set(s, id);
    }
    this.specialPattern =
      sp.length > 0
        ? new RegExp(
            `(${[...sp]
              .sort((a, b) => b.length - a.length)
              .map(escapeRegExp)
              .join('|')})`,
            'u',
          )
        : undefined;
  }

  /** Number of ids (one more than the largest id). */
  get vocabSize(): number {
    return this.tokens.length;
  }

  /** The id of a token string (byte-level form), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** The token string (byte-level form) of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  /** The vocabulary as a plain object (token -> id), in id order, as vocab.json stores it. */
  vocabObject(): Record<string, number> {
    const o: Record<string, number> = {};
    this.tokens.forEach((t, id) => {
      if (t !== undefined) o[t] = id;
    });
    return o;
  }

  /** The id of a special token, e.g. `specialId('<|endoftext|>')`, or undefined. */
  specialId(token: string): number | undefined {
    return this.specialIds.get(token);
  }

  /** The ids of one pre-token, merging its bytes by rank. Cached by the pre-token's text. */
  private bpe(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    let parts = [...toByteLevel(piece)];
    if (parts.length > LONG_WORD) parts = mergeLong(parts, this.ranks);
    while (parts.length > 1) {
      // the adjacent pair of lowest rank; all its occurrences merge at once (left to right), as in GPT-2
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = this.ranks.get(pairKey(parts[i]!, parts[i + 1]!));
        if (r !== undefined && r < best) [best, first, second] = [r, parts[i]!, parts[i + 1]!];
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i + 1 < parts.length && parts[i] === first && parts[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else merged.push(parts[i]!);
      }
      parts = merged;
    }
    const ids = parts.map((p) => {
      const id = this.vocab.get(p);
      if (id === undefined)
        throw new TensorloomError(`BPE: merged token ${JSON.stringify(p)} is not in the vocabulary`);
      return id;
    });
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    if (piece.length <= LONG_WORD) this.cache.set(piece, ids);
    return ids;
  }

  /** Appends the ids of ordinary text (no special tokens) to `out`. */
  private encodeOrdinary(text: string, out: number[]): void {
    for (const piece of preTokenize(text)) for (const id of this.bpe(piece)) out.push(id);
  }

  /**
   * The ids of `text`. Any valid string round-trips through `decode` exactly; a lone surrogate (not
   * valid Unicode) is encoded as U+FFFD, as UTF-8 requires.
   */
  encode(text: string, options: EncodeOptions = {}): Int32Array {
    const out: number[] = [];
    if (!this.specialPattern || options.allowSpecial === false) this.encodeOrdinary(text, out);
    else {
      // split keeps the captured specials at the odd indices
      text.split(this.specialPattern).forEach((part, i) => {
        if (i % 2 === 1) out.push(this.specialIds.get(part)!);
        else if (part) this.encodeOrdinary(part, out);
      });
    }
    return Int32Array.from(out);
  }

  /** The bytes of token `id` (computed once per id); `at` is its position, for the error message. */
  private bytesOf(id: number, at: number): Uint8Array {
    const known = this.tokenBytes[id];
    if (known) return known;
    const tok = this.tokens[id];
    if (tok === undefined) throw new TensorloomError(`BPE: id ${id} at position ${at} is not in the vocabulary`);
    const bytes = Uint8Array.from([...tok], (c) => {
      const b = CHAR_TO_BYTE.get(c);
      if (b === undefined)
        throw new TensorloomError(`BPE: token ${JSON.stringify(tok)} has a non byte-level character`);
      return b;
    });
    this.tokenBytes[id] = bytes;
    return bytes;
  }

  /** The UTF-8 bytes of a sequence of ids (a token may end mid-character; bytes concatenate exactly). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.bytesOf(ids[i]!, i);
      parts.push(b);
      n += b.length;
    }
    const out = new Uint8Array(n);
    let at = 0;
    for (const b of parts) {
      out.set(b, at);
      at += b.length;
    }
    return out;
  }

  /** The text of a sequence of ids; bytes that are not valid UTF-8 (a cut-off character) become U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(this.decodeBytes(ids)); // keep a leading U+FEFF
  }

  /**
   * A tokenizer from vocab.json and merges.txt contents (text or already parsed). merges.txt has one
   * merge per line, `a b`, in rank order; a `#version` line and blank lines are skipped.
   */
  static fromFiles(
    vocabJson: string | Readonly<Record<string, number>>,
    mergesTxt: string | readonly string[],
  ): BPETokenizer {
    const vocab =
      typeof vocabJson === 'string' ? parseJson<Record<string, number>>(vocabJson, 'vocab.json') : vocabJson;
    const lines = typeof mergesTxt === 'string' ? mergesTxt.split(/\r?\n/) : mergesTxt;
    return new BPETokenizer(vocab, parseMerges(lines, 'merges.txt'));
  }

  /** A tokenizer from a Hugging Face tokenizer.json (its model.vocab, model.merges and added special tokens). */
  static fromTokenizerJson(json: string | object): BPETokenizer {
    const t = (typeof json === 'string' ? parseJson<object>(json, 'tokenizer.json') : json) as {
      model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
      added_tokens?: { content: string; id: number; special?: boolean }[];
    };
    const m = t.model;
    if (!m || typeof m.vocab !== 'object' || !Array.isArray(m.merges))
      throw new TensorloomError('tokenizer.json: expected model.vocab and model.merges (a BPE model)');
    if (m.type !== undefined && m.type !== 'BPE')
      throw new TensorloomError(`tokenizer.json: model.type is '${m.type}', only 'BPE' is supported`);
    const vocab = new Map(Object.entries(m.vocab));
    const specials: string[] = [];
    for (const a of t.added_tokens ?? []) {
      vocab.set(a.content, a.id);
      if (a.special !== false) specials.push(a.content);
    }
    const merges = m.merges.map((x) => (typeof x === 'string' ? x : x.join(' ')));
    return new BPETokenizer(vocab, parseMerges(merges, 'tokenizer.json model.merges'), specials);
  }

  /** merges.txt text for this tokenizer's merges (with GPT-2's version line). */
  mergesText(): string {
    return ['#version: 0.2', ...this.merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n';
  }
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new TensorloomError(`${what}: not valid JSON (${(e as Error).message})`);
  }
}

/** Parses merge lines `a b` (skipping `#version` and blank lines) into pairs. */
function parseMerges(lines: readonly string[], what: string): [string, string][] {
  const out: [string, string][] = [];
  lines.forEach((line, i) => {
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1])
      throw new TensorloomError(`${what}: line ${i + 1} is not a merge 'a b': ${JSON.stringify(line.slice(0, 80))}`);
    out.push([parts[0], parts[1]]);
  });
  return out;
}
