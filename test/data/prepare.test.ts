// `loom prepare` end to end on a generated corpus: trained and loaded tokenizers, shards that decode back
// to the exact input, progress lines, and bad input refused before anything is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { generateStories } from '../../src/index.js';
import { loadBPE } from '../../src/data/bpefiles.js';
import { readShard } from '../../src/io/shards.js';

async function run(args: string[]): Promise<{ code: number; log: string }> {
  const lines: string[] = [];
  const code = await main(['prepare', ...args], (s) => lines.push(s));
  return { code, log: lines.join('\n') };
}

test('loom prepare trains a BPE and writes shards that decode back to the text', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-prepare-'));
  try {
    const text = generateStories(400, 21) + 'Unicode too: 日本語, emoji 😀, tabs\t\tand  spaces.\n';
    const input = join(dir, 'corpus.txt');
    writeFileSync(input, text);
    const out = join(dir, 'data');
    const { code, log } = await run(['--input', input, '--out', out, '--vocab-size', '400', '--val-fraction', '0.2']);
    assert.equal(code, 0, log);
    assert.match(log, /training BPE \[#{20}\] 100%/);
    assert.match(log, /encoding \[#{20}\] 100%/);
    const tok = loadBPE(out);
    assert.equal(tok.vocabSize, 400);
    const train = readShard(join(out, 'train.bin'));
    const val = readShard(join(out, 'val.bin'));
    assert.equal(train.dtype, 'uint16');
    const n = train.tokens.length + val.tokens.length;
    assert.ok(Math.abs(val.tokens.length - Math.floor(n * 0.2)) <= 1);
    const ids = [...train.tokens, ...val.tokens];
    assert.equal(ids[ids.length - 1], tok.specialId('<|endoftext|>'));
    assert.equal(tok.decode(ids), text + '<|endoftext|>');
    const summary = JSON.parse(readFileSync(join(out, 'prepare.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(summary.trainTokens, train.tokens.length);

    // a folder of documents with the tokenizer just written: each document ends with <|endoftext|>
    const docs = join(dir, 'docs');
    mkdirSync(join(docs, 'sub'), { recursive: true });
    writeFileSync(join(docs, 'a.txt'), 'It was a sunny day.');
    writeFileSync(join(docs, 'sub', 'b.txt'), 'Tom went to the park.\n');
    const out2 = join(dir, 'data2');
    const r2 = await run(['--input', docs, '--out', out2, '--tokenizer', out, '--val-fraction', '0']);
    assert.equal(r2.code, 0, r2.log);
    const ids2 = readShard(join(out2, 'train.bin')).tokens;
    assert.equal(readShard(join(out2, 'val.bin')).tokens.length, 0);
    assert.equal(tok.decode(ids2), 'It was a sunny day.<|endoftext|>Tom went to the park.\n<|endoftext|>');
    assert.deepEqual(loadBPE(out2).vocabObject(), tok.vocabObject());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loom prepare encodes on worker threads with the same ids as on one thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-prepare-'));
  try {
    const docs = join(dir, 'docs');
    mkdirSync(docs);
    // each document is at least one chunk; the last is over 1M characters, so it is cut into two
    const texts = [generateStories(50, 1), 'Émoji 😀 and 日本語\n\n  spaces', generateStories(6500, 3)];
    texts.forEach((t, i) => writeFileSync(join(docs, `${i}.txt`), t));
    const one = await run(['--input', docs, '--out', join(dir, 'one'), '--vocab-size', '300', '--threads', '1']);
    assert.equal(one.code, 0, one.log);
    assert.match(one.log, /encoding 4 chunk\(s\) on this thread/);
    const many = await run([
      '--input',
      docs,
      '--out',
      join(dir, 'many'),
      '--tokenizer',
      join(dir, 'one'),
      '--threads',
      '2',
    ]);
    assert.equal(many.code, 0, many.log);
    assert.match(many.log, /encoding 4 chunk\(s\) on 2 worker threads/);
    const ids = (d: string) => [
      ...readShard(join(dir, d, 'train.bin')).tokens,
      ...readShard(join(dir, d, 'val.bin')).tokens,
    ];
    const a = ids('one');
    assert.deepEqual(ids('many'), a);
    const tok = loadBPE(join(dir, 'one'));
    assert.equal(tok.decode(a), texts.map((t) => t + '<|endoftext|>').join(''));
    // chunking never changes the ids: the long document encodes the same whole
    const eot = tok.specialId('<|endoftext|>')!;
    const third = a.slice(a.indexOf(eot, a.indexOf(eot) + 1) + 1, -1);
    assert.deepEqual(third, [...tok.encode(texts[2]!)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loom prepare refuses bad input clearly and writes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-prepare-'));
  try {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    const out = join(dir, 'out');
    const cases: [string[], RegExp][] = [
      [['--input', empty, '--out', out], /corpus .* is empty/],
      [['--input', join(dir, 'nope.txt'), '--out', out], /does not exist/],
      [['--out', out], /--input and --out are required/],
      [
        ['--input', empty, '--out', out, '--vocab-size', '300', '--tokenizer', dir],
        /either --vocab-size .* or --tokenizer/,
      ],
      [['--input', empty, '--out', out, '--vocab-size', '100'], /--vocab-size must be/],
      [['--input', empty, '--out', out, '--val-fraction', '1'], /--val-fraction must be in \[0, 1\)/],
      [['--input', empty, '--out', out, '--threads', '0'], /--threads must be a whole number/],
      [['--input', empty, '--out', out, '--vocab-sise', '300'], /did you mean --vocab-size/],
    ];
    for (const [args, re] of cases) {
      const { code, log } = await run(args);
      assert.equal(code, 2, log);
      assert.match(log, re);
    }
    writeFileSync(empty, 'some text');
    const r = await run(['--input', empty, '--out', out, '--tokenizer', join(dir, 'no-tokenizer')]);
    assert.match(r.log, /no tokenizer found/);
    assert.ok(!existsSync(out));
    assert.match((await run(['--help'])).log, /Usage: loom prepare/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
