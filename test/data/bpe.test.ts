// The GPT-2 byte-level BPE: the byte table, pre-tokenization, a hand-checked merges fixture, agreement
// with an independent naive reference encoder, exact round trips on random UTF-8, loaders and specials.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BPETokenizer, bytesToUnicode, generateStories, preTokenize, trainBPE } from '../../src/index.js';
import { loadBPE, saveBPE } from '../../src/data/bpefiles.js';
import { mergeLong, pairKey } from '../../src/data/bpemerge.js';

const HAND = 'test/fixtures/bpe-hand';

/** A seeded PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random text mixing ASCII, control bytes, whitespace runs, CJK, emoji (with ZWJ/skin tones), accents. */
function randomText(r: () => number, length: number): string {
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pools: (() => string)[] = [
    () => String.fromCharCode(int(0x20, 0x7e)),
    () => 'the cat sat on the mat, '.slice(int(0, 10), int(11, 24)),
    () => String.fromCharCode(int(0, 0x1f)),
    () => String.fromCharCode(0x7f),
    () => ' \t\n\r\u00a0\u3000\u0085\ufeff\u2028'.charAt(int(0, 8)).repeat(int(1, 5)),
    () => String.fromCodePoint(int(0x4e00, 0x9fff)),
    () => String.fromCodePoint(int(0x1f600, 0x1f64f)),
    () => '👩\u200d👩\u200d👧 👍🏽 🇩🇪',
    () => 'e\u0301 ñ ü ß',
    () => "it's we'll they're 12345 ",
    () => {
      let cp = int(0, 0x10ffff);
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41; // lone surrogates are not valid text
      return String.fromCodePoint(cp);
    },
  ];
  let s = '';
  while (s.length < length) s += pools[int(0, pools.length - 1)]!();
  return s;
}

// ---------------------------------------------------------------------------------------------------
// An independent reference encoder, written from GPT-2's encoder.py: its own byte table (built as the
// Python code does, list of printable ranges then 256+n), its own copy of the pattern, and encoder.py's
// loop: find the adjacent pair of lowest rank, merge all its occurrences left to right, repeat.
// ---------------------------------------------------------------------------------------------------
function referenceByteTable(): Map<number, string> {
  const bs: number[] = [];
  for (let b = '!'.charCodeAt(0); b <= '~'.charCodeAt(0); b++) bs.push(b);
  for (let b = '¡'.charCodeAt(0); b <= '¬'.charCodeAt(0); b++) bs.push(b);
  for (let b = '®'.charCodeAt(0); b <= 'ÿ'.charCodeAt(0); b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [b, String.fromCharCode(cs[i]!)]));
}

function referenceEncode(
  text: string,
  vocab: Record<string, number>,
  merges: readonly (readonly string[])[],
): number[] {
  const table = referenceByteTable();
  const rank = new Map(merges.map(([a, b], i) => [`${a}\u0000${b}`, i]));
  const pat =
    /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;
  const ids: number[] = [];
  for (const piece of text.match(pat) ?? []) {
    for (const p of referenceMerge(
      [...Buffer.from(piece, 'utf8')].map((b) => table.get(b)!),
      rank,
    ))
      ids.push(vocab[p]!);
  }
  return ids;
}

function referenceMerge(symbols: string[], rank: Map<string, number>): string[] {
  let parts = symbols;
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = rank.get(`${parts[i]}\u0000${parts[i + 1]}`);
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best < 0) return parts;
    const [first, second] = [parts[best]!, parts[best + 1]!];
    const merged: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (i + 1 < parts.length && parts[i] === first && parts[i + 1] === second) merged.push(first + parts[++i]!);
      else merged.push(parts[i]!);
    }
    parts = merged;
  }
}

test('bytesToUnicode matches GPT-2: printable bytes map to themselves, the rest to 256+n', () => {
  const t = bytesToUnicode();
  assert.equal(new Set(t).size, 256);
  assert.equal(t[0x41], 'A');
  assert.equal(t[0x21], '!');
  assert.equal(t[0xff], 'ÿ');
  assert.equal(t[0], '\u0100'); // 'Ā'
  assert.equal(t[0x20], 'Ġ'); // space: byte 32 is the 33rd non-printable byte -> 256 + 32
  assert.equal(t[0x0a], 'Ċ'); // newline
  assert.equal(t[0x7f], '\u0121'); // 'ġ': 33 control bytes come first
  assert.equal(t[0xad], 'Ń'); // soft hyphen, the last one: 256 + 67
  const ref = referenceByteTable();
  for (let b = 0; b < 256; b++) assert.equal(t[b], ref.get(b));
});

test('preTokenize splits as GPT-2 does', () => {
  assert.deepEqual(preTokenize("Hello world! It's 2024,  ok?\n\n  x"), [
    'Hello',
    ' world',
    '!',
    ' It',
    "'s",
    ' 2024',
    ',',
    ' ',
    ' ok',
    '?',
    '\n\n ',
    ' x',
  ]); // prettier-ignore: a whitespace run leaves its last space to the next word (\s+(?!\S))
  assert.deepEqual(preTokenize('a  \t'), ['a', '  \t']);
  assert.deepEqual(preTokenize('日本語 😀😀'), ['日本語', ' 😀😀']);
});

test('the hand-checked merges fixture gives the ids derived by hand', () => {
  // vocab: byte b has id b; merges (rank: result = id): 0 h+e=he 256, 1 l+l=ll 257, 2 he+ll=hell 258,
  // 3 hell+o=hello 259, 4 Ġ+w=Ġw 260, 5 e+l=el 261; <|endoftext|> 262.
  // "hello": h e l l o -> he l l o -> he ll o -> hell o -> hello = [259]
  // " world": Ġ w o r l d -> Ġw o r l d = [260, 111 'o', 114 'r', 108 'l', 100 'd']
  // " ell": Ġ e l l; (l,l) has rank 1 < (e,l) rank 5, so -> Ġ e ll, and (e,ll) is no merge = [32, 101, 257]
  // "\n": byte 10 alone = [10]; "<|endoftext|>" = [262]; "hel": (h,e) rank 0 beats (e,l) -> he l = [256, 108]
  const tok = loadBPE(HAND);
  const expected = [259, 260, 111, 114, 108, 100, 32, 101, 257, 10, 262, 256, 108];
  const text = 'hello world ell\n<|endoftext|>hel';
  assert.deepEqual([...tok.encode(text)], expected);
  assert.equal(tok.decode(expected), text);
  assert.equal(tok.vocabSize, 263);
  // the same model from tokenizer.json (merges as [a, b] arrays, <|endoftext|> an added special token)
  const fromJson = loadBPE('test/fixtures/bpe-hand-json');
  assert.deepEqual([...fromJson.encode(text)], expected);
  // without specials, <|endoftext|> is ordinary text
  assert.ok(!tok.encode(text, { allowSpecial: false }).includes(262));
  assert.equal(tok.decode(tok.encode(text, { allowSpecial: false })), text);
});

test('encodings match the independent reference encoder on a trained vocabulary', () => {
  const corpus = generateStories(200, 5) + randomText(rng(9), 3000);
  const tok = trainBPE(corpus, 600);
  const vocab = tok.vocabObject();
  const r = rng(11);
  const texts = [
    'It was a sunny day. Mia went to the park with her cat.',
    generateStories(20, 99),
    ...Array.from({ length: 20 }, () => randomText(r, 300)),
    // long words take the O(n log n) path
    'x'.repeat(3000) + ' ' + 'the'.repeat(700) + ' ' + '!?'.repeat(500) + ' ' + '😀'.repeat(200) + ' 日本語'.repeat(50),
    Array.from({ length: 2000 }, () => 'aeiostn'.charAt(Math.floor(r() * 7))).join(''),
  ];
  for (const text of texts)
    assert.deepEqual([...tok.encode(text, { allowSpecial: false })], referenceEncode(text, vocab, tok.merges));
  // and on the hand fixture
  const hand = loadBPE(HAND);
  const text = 'hello hello, well hell ello helloworld';
  assert.deepEqual([...hand.encode(text)], referenceEncode(text, hand.vocabObject(), hand.merges));
});

test('mergeLong equals the reference merge loop, even for merge lists that are not trained', () => {
  const r = rng(77);
  for (let trial = 0; trial < 40; trial++) {
    // random merges over {a, b, c}: a later merge may use a token of an earlier one or not (not BPE-consistent)
    const toks = ['a', 'b', 'c'];
    const merges: [string, string][] = [];
    for (let k = 0; k < 25; k++) {
      const m: [string, string] = [toks[Math.floor(r() * toks.length)]!, toks[Math.floor(r() * toks.length)]!];
      merges.push(m);
      toks.push(m[0] + m[1]);
    }
    if (trial % 2) merges.reverse(); // ranks opposite to creation order
    const ranks = new Map(merges.map(([a, b], i) => [pairKey(a, b), i] as const).reverse()); // first rank wins
    const refRanks = new Map(merges.map(([a, b], i) => [`${a}\u0000${b}`, i] as const).reverse());
    const word = Array.from({ length: 100 + Math.floor(r() * 300) }, () =>
      'abc'.charAt(Math.floor(r() * (trial % 3 === 0 ? 1.3 : 3))),
    );
    assert.deepEqual(mergeLong(word, ranks), referenceMerge(word, refRanks), `trial ${trial}`);
  }
  assert.deepEqual(
    mergeLong(
      ['a', 'b', 'a', 'b'],
      new Map([
        [pairKey('a', 'b'), 1],
        [pairKey('ab', 'a'), 0],
      ]),
    ),
    ['ab', 'ab'],
  );
});

test('encode/decode round-trips random UTF-8 exactly (emoji, CJK, whitespace runs, control bytes)', () => {
  const tok = trainBPE(generateStories(300, 1) + randomText(rng(2), 5000), 800);
  const hand = loadBPE(HAND);
  const r = rng(1234);
  for (let i = 0; i < 200; i++) {
    const text = randomText(r, Math.floor(r() * 400));
    assert.equal(tok.decode(tok.encode(text)), text);
    assert.equal(hand.decode(hand.encode(text)), text);
  }
  // a token may end inside a character: bytes concatenate exactly, decoding is per sequence
  const ids = tok.encode('日本😀');
  assert.equal(new TextDecoder().decode(tok.decodeBytes(ids)), '日本😀');
  assert.equal(tok.decode(tok.encode('\ufeffx')), '\ufeffx'); // a leading BOM is text, kept
  // a lone surrogate is not valid text: it becomes U+FFFD
  assert.equal(tok.decode(tok.encode('a\ud800b')), 'a\ufffdb');
});

test('loaders report bad files clearly, and saveBPE/loadBPE round-trip a tokenizer', () => {
  assert.throws(() => BPETokenizer.fromFiles('{not json', ''), /vocab\.json: not valid JSON/);
  assert.throws(() => BPETokenizer.fromFiles('{"a": 0}', ''), /lacks the byte token/);
  const vocab = readFileSync(join(HAND, 'vocab.json'), 'utf8');
  assert.throws(() => BPETokenizer.fromFiles(vocab, '#version: 0.2\nh e\nbad\n'), /merges\.txt: line 3/);
  assert.throws(
    () => BPETokenizer.fromTokenizerJson({ model: { type: 'WordPiece', vocab: {}, merges: [] } }),
    /only 'BPE'/,
  );
  assert.throws(() => loadBPE('test/fixtures/no-such-dir'), /no tokenizer found/);
  const dir = mkdtempSync(join(tmpdir(), 'loom-bpe-'));
  try {
    const tok = trainBPE(generateStories(100, 3), 400);
    saveBPE(tok, dir);
    const back = loadBPE(dir);
    assert.deepEqual(back.vocabObject(), tok.vocabObject());
    const text = generateStories(5, 77) + '<|endoftext|>';
    assert.deepEqual(back.encode(text), tok.encode(text));
    assert.equal(back.specialId('<|endoftext|>'), 399);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
