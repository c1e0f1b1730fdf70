// The generated corpus, the character tokenizer and the window sampler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CharTokenizer, WindowSampler, generateStories } from '../../src/index.js';

test('generateStories is deterministic per seed and differs across seeds', () => {
  const a = generateStories(50, 7);
  assert.equal(a, generateStories(50, 7));
  assert.notEqual(a, generateStories(50, 8));
  assert.equal(a.trim().split('\n').length, 50);
});

test('stories are sentences over a small alphabet, and pronouns agree with names', () => {
  const text = generateStories(300, 3);
  assert.match(text, /^[A-Za-z ,.\n]+$/);
  for (const line of text.trim().split('\n')) {
    const m = /^It was a \w+ day\. (\w+) went to [\w ]+ with (his|her) /.exec(line);
    assert.ok(m, `unexpected story opening: ${line.slice(0, 60)}`);
    const she = ['Mia', 'Lena', 'Ava', 'Zoe', 'Ida'].includes(m[1]!);
    assert.equal(m[2], she ? 'her' : 'his', line);
  }
});

test('CharTokenizer round-trips text and names an unknown character', () => {
  const text = 'hello world, hello tensorloom.';
  const tok = CharTokenizer.fromText(text);
  assert.equal(tok.vocabSize, new Set(text).size);
  assert.equal(tok.decode(tok.encode(text)), text);
  assert.deepEqual([...tok.chars], [...new Set(text)].sort());
  assert.throws(() => tok.encode('hello!'), /"!" at position 5/);
  assert.throws(() => tok.decode([tok.vocabSize]), /out of range/);
});

test('WindowSampler gives (B, T) windows with targets shifted by one token', () => {
  const tokens = Int32Array.from({ length: 1000 }, (_, i) => i);
  const s = new WindowSampler(tokens, 4, 16, 123);
  for (let k = 0; k < 20; k++) {
    const { x, y } = s.next();
    assert.equal(x.length, 64);
    for (let b = 0; b < 4; b++) {
      for (let t = 0; t < 16; t++) {
        assert.equal(y[b * 16 + t], x[b * 16 + t]! + 1); // the next token
        if (t > 0) assert.equal(x[b * 16 + t], x[b * 16 + t - 1]! + 1); // a contiguous window
      }
    }
  }
  const state = s.getState();
  const next = s.next();
  s.setState(state);
  assert.deepEqual(s.next().x, next.x); // resumable
  assert.throws(() => new WindowSampler(tokens.subarray(0, 10), 2, 16), /too few/);
});
