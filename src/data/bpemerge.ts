// BPE merging for long words in O(n log n): a linked list of symbols and a heap of adjacent pairs by
// (rank, position). The simple loop in bpe.ts is O(n^2) per word, fine for ordinary words but not for
// a megabyte without whitespace. Both give GPT-2's result exactly (see mergeLong).

/** The pair key of two adjacent symbols. Byte-level symbols never contain a space, so it is unambiguous. */
export function pairKey(a: string, b: string): string {
  return a + ' ' + b;
}

/** A min-heap of [rank, position] pairs, ordered by rank, then position. */
class RankHeap {
  private readonly h: [number, number][] = [];
  get size(): number {
    return this.h.length;
  }
  peekRank(): number {
    return this.h[0]![0];
  }
  private less(x: [number, number], y: [number, number]): boolean {
    return x[0] !== y[0] ? x[0] < y[0] : x[1] < y[1];
  }
  push(e: [number, number]): void {
    const h = this.h;
    h.push(e);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): [number, number] {
    const h = this.h;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Merges `symbols` by `ranks` (pair key -> rank) as GPT-2 does: take the lowest-ranked adjacent pair
 * and merge all its occurrences left to right, repeat. Done in rounds: each round pops every heap entry
 * of the lowest rank and merges those still valid in position order. A merge of (a, b) only creates
 * pairs containing ab, which differ from (a, b), so no pair of the current rank appears mid-round; pairs
 * it creates are pushed after the round, as GPT-2 would only see them in its next scan.
 */
export function mergeLong(symbols: readonly string[], ranks: ReadonlyMap<string, number>): string[] {
  const n = symbols.length;
  const tok = [...symbols];
  const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
  const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
  const alive = new Uint8Array(n).fill(1);
  const heap = new RankHeap();
  const rankAt = (i: number): number | undefined => {
    const j = next[i]!;
    return j < 0 ? undefined : ranks.get(pairKey(tok[i]!, tok[j]!));
  };
  for (let i = 0; i + 1 < n; i++) {
    const r = rankAt(i);
    if (r !== undefined) heap.push([r, i]);
  }
  while (heap.size > 0) {
    const rank = heap.peekRank();
    const positions: number[] = [];
    while (heap.size > 0 && heap.peekRank() === rank) positions.push(heap.pop()[1]);
    // positions come out in increasing order (ties break by position)
    const created: number[] = [];
    for (const i of positions) {
      if (!alive[i] || rankAt(i) !== rank) continue; // stale: one side merged already
      const j = next[i]!;
      tok[i] = tok[i]! + tok[j]!;
      alive[j] = 0;
      next[i] = next[j]!;
      if (next[j]! >= 0) prev[next[j]!] = i;
      created.push(i);
      if (prev[i]! >= 0) created.push(prev[i]!);
    }
    for (const i of created) {
      if (!alive[i]) continue;
      const r = rankAt(i);
      if (r !== undefined) heap.push([r, i]);
    }
  }
  const out: string[] = [];
  for (let i = 0; i >= 0 && i < n; i = next[i]!) out.push(tok[i]!);
  return out;
}
