// A character-level tokenizer: one id per distinct character of a training text. The simplest
// tokenizer that works on any corpus; the GPT-2 byte-level BPE lives beside it.
import { TensorloomError } from '../core/errors.js';

/** Maps characters to ids and back. */
export class CharTokenizer {
  private readonly ids: Map<string, number>;
  /** The vocabulary, in id order. */
  readonly chars: readonly string[];

  /** Builds the vocabulary from the distinct characters of `text` (sorted, so it is deterministic). */
  static fromText(text: string): CharTokenizer {
    return new CharTokenizer([...new Set(text)].sort());
  }

  constructor(chars: readonly string[]) {
    this.chars = [...chars];
    this.ids = new Map(this.chars.map((c, i) => [c, i]));
    if (this.ids.size !== this.chars.length)
      throw new TensorloomError('CharTokenizer: the vocabulary has repeated characters');
  }

  /** Number of ids. */
  get vocabSize(): number {
    return this.chars.length;
  }

  /** Ids of the characters of `text`; an unknown character is an error naming it and its position. */
  encode(text: string): Int32Array {
    const chars = [...text];
    const out = new Int32Array(chars.length);
    chars.forEach((c, i) => {
      const id = this.ids.get(c);
      if (id === undefined)
        throw new TensorloomError(
          `CharTokenizer: character ${JSON.stringify(c)} at position ${i} is not in the vocabulary`,
        );
      out[i] = id;
    });
    return out;
  }

  /** The text of a sequence of ids. */
  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const c = this.chars[ids[i]!];
      if (c === undefined)
        throw new TensorloomError(`CharTokenizer: id ${ids[i]} is out of range [0, ${this.chars.length})`);
      s += c;
    }
    return s;
  }
}
