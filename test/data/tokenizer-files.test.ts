// saveTokenizer/loadTokenizer: round trips of both tokenizer kinds through a folder, loading the
// hand-made BPE fixtures (vocab+merges and tokenizer.json), and clear errors for missing or bad files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BPETokenizer } from '../../src/data/bpe.js';
import { trainBPE } from '../../src/data/bpetrain.js';
import { CharTokenizer } from '../../src/data/chars.js';
import { generateStories } from '../../src/data/stories.js';
import { loadTokenizer, saveTokenizer } from '../../src/data/tokenizer-files.js';
import { loadBPE } from '../../src/data/bpefiles.js';

function withDir(f: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'tl-tokfiles-'));
  try {
    f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const TEXT = 'Once upon a time, a small fox 🦊 found a café — «naïve» 猫.\n\tThe end.';

test('a CharTokenizer round-trips through chars.json (same vocabulary, same ids)', () => {
  withDir((dir) => {
    const tok = CharTokenizer.fromText(TEXT);
    saveTokenizer(join(dir, 'model'), tok); // creates the folder
    const back = loadTokenizer(join(dir, 'model'));
    assert.ok(back instanceof CharTokenizer);
    assert.deepEqual(back.chars, tok.chars);
    assert.deepEqual([...back.encode(TEXT)], [...tok.encode(TEXT)]);
    assert.equal(back.decode(tok.encode(TEXT)), TEXT);
  });
});

test('a trained BPETokenizer round-trips through vocab.json + merges.txt', () => {
  withDir((dir) => {
    const tok = trainBPE(generateStories(40, 3), 300);
    saveTokenizer(dir, tok);
    assert.ok(existsSync(join(dir, 'vocab.json')) && existsSync(join(dir, 'merges.txt')));
    const back = loadTokenizer(dir);
    assert.ok(back instanceof BPETokenizer);
    assert.equal(back.vocabSize, tok.vocabSize);
    const ids = tok.encode(TEXT);
    assert.deepEqual([...back.encode(TEXT)], [...ids]);
    assert.equal(back.decode(ids), TEXT);
  });
});

test('loads the hand-made fixtures like loadBPE does (vocab+merges, and tokenizer.json)', () => {
  for (const fixture of ['test/fixtures/bpe-hand', 'test/fixtures/bpe-hand-json']) {
    const a = loadTokenizer(fixture);
    const b = loadBPE(fixture);
    assert.ok(a instanceof BPETokenizer);
    assert.deepEqual([...a.encode('the cat sat')], [...b.encode('the cat sat')]);
  }
});

test('saving one kind over the other leaves exactly one tokenizer in the folder', () => {
  withDir((dir) => {
    copyFileSync('test/fixtures/bpe-hand-json/tokenizer.json', join(dir, 'tokenizer.json'));
    const chars = CharTokenizer.fromText('abc');
    saveTokenizer(dir, chars);
    assert.ok(!existsSync(join(dir, 'tokenizer.json')));
    assert.ok(loadTokenizer(dir) instanceof CharTokenizer);
    saveTokenizer(dir, loadBPE('test/fixtures/bpe-hand'));
    assert.ok(!existsSync(join(dir, 'chars.json')));
    assert.ok(loadTokenizer(dir) instanceof BPETokenizer);
  });
});

test('missing folders, empty folders and bad chars.json are clear errors naming the path', () => {
  withDir((dir) => {
    const missing = join(dir, 'nope');
    assert.throws(
      () => loadTokenizer(missing),
      (e: Error) => e.message.includes(missing),
    );
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    assert.throws(
      () => loadTokenizer(empty),
      (e: Error) => e.message.includes(empty) && /chars\.json/.test(e.message) && /merges\.txt/.test(e.message),
    );
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'chars.json'), '{"type":"chars","chars":["a","bc"]}');
    assert.throws(
      () => loadTokenizer(bad),
      (e: Error) => e.message.includes(join(bad, 'chars.json')),
    );
    writeFileSync(join(bad, 'chars.json'), '{"type":"chars","chars":["a","a"]}');
    assert.throws(() => loadTokenizer(bad), /repeated/);
    writeFileSync(join(bad, 'chars.json'), '{"type":');
    assert.throws(
      () => loadTokenizer(bad),
      (e: Error) => e.message.includes(join(bad, 'chars.json')),
    );
  });
});
