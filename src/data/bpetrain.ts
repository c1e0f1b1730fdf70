// Trains a byte-level BPE on a text: words from GPT-2's pre-tokenization, pair counts over unique
// words weighted by their count, greedy merges of the most frequent pair with incremental count updates
// (a lazy max-heap plus a pair -> words index), so a few MB of text train in seconds.
import { TensorloomError } from '../core/errors.js';
import { BPETokenizer, END_OF_TEXT, GPT2_PATTERN, bytesToUnicode, toByteLevel } from './bpe.js';

/** Options for `trainBPE`. */
export interface TrainBPEOptions {
  /** A pair must occur at least this often (counting word repeats) to be merged (default 2). */
  readonly minFrequency?: number;
  /** Called every so often with the merges done and the merges wanted. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Pair key from two ids (ids stay below 2^21, so the key is an exact integer). */
const ID_LIMIT = 1 << 21;
const key = (a: number, b: number) => a * ID_LIMIT + b;

/** A max-heap of [count, a, b]: higher count first, ties to the smaller (a, b) so training is deterministic. */
class PairHeap {
  private readonly h: [number, number, number][] = [];
  get size(): number {
    return this.h.length;
  }
  private above(x: [number, number, number], y: [number, number, number]): boolean {
    return x[0] !== y[0] ? x[0] > y[0] : x[1] !== y[1] ? x[1] < y[1] : x[2] < y[2];
  }
  push(e: [number, number, number]): void {
    const h = this.h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): [number, number, number] | undefined {
    const h = this.h;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.above(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.above(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Trains a byte-level BPE on `text` up to `vocabSize` ids: the 256 bytes (id = byte value), then one id
 * per merge in the order learned, then `<|endoftext|>` as the last id (as in GPT-2, where it is 50256).
 * So `vocabSize - 257` merged tokens at most; fewer when no pair reaches `minFrequency`. Each step merges the
 * most frequent adjacent pair (ties: the pair with the smaller first id, then smaller second id).
 */
export function trainBPE(text: string, vocabSize: number, options: TrainBPEOptions = {}): BPETokenizer {
  if (!Number.isInteger(vocabSize) || vocabSize < 257 || vocabSize >= ID_LIMIT)
    throw new TensorloomError(`trainBPE: vocabSize must be an integer in [257, ${ID_LIMIT}), got ${vocabSize}`);
  const minFrequency = options.minFrequency ?? 2;
  const byteChars = bytesToUnicode();
  const tokens: string[] = [...byteChars];

  // unique words (byte-level) with counts
  const wordCounts = new Map<string, number>();
  for (const m of text.matchAll(GPT2_PATTERN)) {
    const w = toByteLevel(m[0]);
    wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  }
  const charId = new Map(byteChars.map((c, b) => [c, b]));
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push([...w].map((ch) => charId.get(ch)!));
    counts.push(c);
  }

  // pair counts and the words each pair occurs in (entries may go stale; merging a stale word is a no-op)
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addWord = (wi: number, sign: number, touched: Set<number> | undefined) => {
    const w = words[wi]!;
    const c = counts[wi]! * sign;
    for (let i = 0; i + 1 < w.length; i++) {
      const k = key(w[i]!, w[i + 1]!);
      pairCount.set(k, (pairCount.get(k) ?? 0) + c);
      touched?.add(k);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addWord(wi, 1, undefined);
  const heap = new PairHeap();
  const pushPair = (k: number) => {
    const c = pairCount.get(k) ?? 0;
    if (c >= minFrequency) heap.push([c, Math.floor(k / ID_LIMIT), k % ID_LIMIT]);
  };
  for (const k of pairCount.keys()) pushPair(k);

  const wanted = vocabSize - 257;
  const merges: [string, string][] = [];
  const idOf = new Map(tokens.map((t, i) => [t, i]));
  while (tokens.length < vocabSize - 1 && heap.size > 0) {
    const [c, a, b] = heap.pop()!;
    const k = key(a, b);
    if (pairCount.get(k) !== c) continue; // stale heap entry
    // two different merges can spell the same token ('ab'+'c', 'a'+'bc'): it keeps one id
    const merged = tokens[a]! + tokens[b]!;
    let id = idOf.get(merged);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(merged);
      idOf.set(merged, id);
    }
    merges.push([tokens[a]!, tokens[b]!]);
    const touched = new Set<number>();
    for (const wi of where.get(k) ?? []) {
      addWord(wi, -1, touched);
      const w = words[wi]!;
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(w[i]!);
      }
      words[wi] = out;
      addWord(wi, 1, touched);
    }
    where.delete(k);
    pairCount.delete(k);
    touched.delete(k);
    for (const t of touched) {
      if (pairCount.get(t) === 0) pairCount.delete(t);
      else pushPair(t);
    }
    const done = tokens.length - 256;
    if (options.onProgress && (merges.length % 100 === 0 || done === wanted)) options.onProgress(done, wanted);
  }
  tokens.push(END_OF_TEXT);
  return new BPETokenizer(new Map(tokens.map((t, i) => [t, i])), merges, [END_OF_TEXT]);
}
