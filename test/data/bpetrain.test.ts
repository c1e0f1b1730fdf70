// The BPE trainer: merges on a toy corpus derived by hand, deterministic ties, vocab size limits, and a
// trained vocabulary that compresses the text it was trained on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateStories, trainBPE } from '../../src/index.js';

test('trainBPE learns the merges derived by hand on a toy corpus', () => {
  // "ab ab ab cd" pre-tokenizes to ab x1, Ġab x2, Ġcd x1. Pair counts: (a,b) 3, (Ġ,a) 2, (Ġ,c) 1, (c,d) 1.
  // 1st merge a+b (3). Then ab x1, Ġ ab x2, Ġ c d x1: (Ġ,ab) 2 -> 2nd merge Ġ+ab.
  // With minFrequency 2 training stops there; with 1, (Ġ,c) and (c,d) tie at 1 and the smaller first id
  // wins (Ġ is byte 32 < c 99): Ġ+c, then Ġc+d.
  const text = 'ab ab ab cd';
  const two = trainBPE(text, 300);
  assert.deepEqual(two.merges, [
    ['a', 'b'],
    ['Ġ', 'ab'],
  ]);
  const one = trainBPE(text, 300, { minFrequency: 1 });
  assert.deepEqual(one.merges, [
    ['a', 'b'],
    ['Ġ', 'ab'],
    ['Ġ', 'c'],
    ['Ġc', 'd'],
  ]);
  // ids: bytes 0..255, then merges in order, then <|endoftext|>
  assert.equal(one.tokenToId('ab'), 256);
  assert.equal(one.tokenToId('Ġcd'), 259);
  assert.equal(one.specialId('<|endoftext|>'), 260);
  assert.equal(one.vocabSize, 261);
  assert.deepEqual([...one.encode(text)], [256, 257, 257, 259]);
  // vocabSize bounds the merges: 258 = 256 bytes + 1 merge + <|endoftext|>
  assert.deepEqual(trainBPE(text, 258, { minFrequency: 1 }).merges, [['a', 'b']]);
  assert.throws(() => trainBPE(text, 100), /vocabSize must be an integer/);
});

test('trainBPE is deterministic and compresses its training text', () => {
  const text = generateStories(400, 2);
  const progress: number[] = [];
  const a = trainBPE(text, 450, { onProgress: (done) => progress.push(done) });
  const b = trainBPE(text, 450);
  assert.deepEqual(a.merges, b.merges);
  assert.equal(a.vocabSize, 450);
  assert.ok(progress.length > 0 && progress[progress.length - 1] === 193, `progress ${progress.join(',')}`);
  const ids = a.encode(text);
  assert.ok(ids.length < text.length / 3, `${ids.length} tokens for ${text.length} characters`);
  assert.equal(a.decode(ids), text);
  // frequent words became single tokens
  assert.equal(a.encode(' the').length, 1);
  assert.equal(a.encode(' was').length, 1);
});

test('trainBPE handles a few hundred KB quickly', () => {
  const text = generateStories(3000, 4) + 'x'.repeat(10000) + ' 日本語のテキスト 😀'.repeat(200);
  const t0 = performance.now();
  const tok = trainBPE(text, 2000);
  const ms = performance.now() - t0;
  assert.ok(ms < 20000, `training took ${ms.toFixed(0)} ms`);
  assert.equal(tok.decode(tok.encode(text)), text);
});
