// `loom train --data DIR` on a folder made by `loom prepare`: the shard loader feeds the run, the model
// folder carries the BPE tokenizer, an interrupted run resumes with the loader's position (same losses
// as an uninterrupted run, one metrics record per step), fine-tuning from the saved model starts where
// it ended, and bad data or a mismatched model folder is refused before anything is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { main } from '../../src/cli/main.js';
import { generateStories } from '../../src/data/index.js';
import { decodeShard, writeShard } from '../../src/io/shards.js';
import { GPT } from '../../src/models/gpt.js';
import { saveGPT2 } from '../../src/models/gpt2/index.js';

/** Run settings that suit any tiny model, and the tiny architecture of a new model. */
const RUN = [
  '--device',
  'cpu',
  '--block-size',
  '16',
  '--batch-size',
  '4',
  '--warmup-steps',
  '1',
  '--sample-chars',
  '5',
];
const TINY = [...RUN, '--n-layer', '1', '--n-head', '2', '--n-embd', '16'];

async function loom(args: string[], onLine?: (s: string) => void): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(args, (s) => {
    lines.push(s);
    onLine?.(s);
  });
  return { code, text: lines.join('\n') };
}

/** Step lines without their timings: `step N/M | loss X | norm Y`. */
function stepLines(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of text.matchAll(/^step +(\d+)\/\d+ \| (loss [\d.]+ \| norm [\d.]+)/gm)) out.set(Number(m[1]), m[2]!);
  return out;
}

const root = mkdtempSync(join(tmpdir(), 'tl-data-'));
const data = join(root, 'data');
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

/** Prepares the tiny BPE folder once (loom prepare, as a user would). */
async function prepared(): Promise<string> {
  if (existsSync(join(data, 'train.bin'))) return data;
  const input = join(root, 'corpus.txt');
  writeFileSync(input, generateStories(150, 3));
  const r = await loom(['prepare', '--input', input, '--out', data, '--vocab-size', '300', '--threads', '1']);
  assert.equal(r.code, 0, r.text);
  return data;
}

test('--data trains on a loom prepare folder and saves a model folder with its BPE tokenizer', async () => {
  const dir = await prepared();
  const out = join(root, 'a');
  const r = await loom(['train', ...TINY, '--data', dir, '--steps', '4', '--eval-every', '2', '--out', out]);
  assert.equal(r.code, 0, r.text);
  const trainTokens = decodeShard(readFileSync(join(dir, 'train.bin')), 'train.bin').tokens.length;
  const vocab = Object.keys(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as object).length;
  assert.match(r.text, new RegExp(`${trainTokens.toLocaleString('en')} training tokens from ${dir}.*vocab ${vocab}`));
  const first = Number(/^step 1\/4 \| loss ([\d.]+)/m.exec(r.text)![1]);
  assert.ok(Math.abs(first - Math.log(vocab)) < 0.5, `first loss ${first} near ln(${vocab})`);
  assert.match(r.text, /eval at step 2: val loss/);
  for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt'])
    assert.ok(existsSync(join(out, 'model', f)), f);
  assert.equal(readFileSync(join(out, 'model', 'merges.txt'), 'utf8'), readFileSync(join(dir, 'merges.txt'), 'utf8'));
  const hf = JSON.parse(readFileSync(join(out, 'model', 'config.json'), 'utf8')) as { vocab_size: number };
  assert.equal(hf.vocab_size, vocab);
});

test('a run interrupted mid-way resumes with the loader position: same losses, one metrics record per step', async () => {
  const dir = await prepared();
  const args = ['train', ...TINY, '--data', dir, '--steps', '8', '--eval-every', '3', '--checkpoint-every', '100'];
  const full = await loom([...args, '--out', join(root, 'full')]);
  assert.equal(full.code, 0, full.text);

  const out = join(root, 'cut');
  const cut = await loom([...args, '--out', out], (s) => {
    if (s.startsWith('step 5/8')) process.emit('SIGINT');
  });
  assert.equal(cut.code, 130, cut.text);
  assert.match(cut.text, /checkpoint .*step-5/);
  const resumed = await loom([...args, '--out', out, '--resume']);
  assert.equal(resumed.code, 0, resumed.text);
  assert.match(resumed.text, /resumed from .*step-5 at step 5/);

  const want = stepLines(full.text);
  const got = stepLines(resumed.text);
  assert.deepEqual([...got.keys()], [6, 7, 8]);
  for (const [step, line] of got) assert.equal(line, want.get(step), `step ${step}`);
  assert.ok(new Set(want.values()).size === 8, 'the steps saw different batches');
  const finalLine = /final train loss [\d.]+, val loss [\d.]+/.exec(full.text)![0];
  assert.ok(resumed.text.includes(finalLine), 'the held-out stream resumed too');

  const records = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; step: number; loss?: number; val_loss?: number });
  assert.deepEqual(
    records.filter((r) => r.kind === 'step').map((r) => r.step),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.deepEqual(
    records.filter((r) => r.kind === 'eval').map((r) => r.step),
    [3, 6, 8],
  );
  for (const r of records.filter((x) => x.kind === 'step'))
    assert.equal(`loss ${r.loss!.toFixed(4)}`, want.get(r.step)!.split(' | ')[0]);
});

test('--init-from fine-tunes a saved model folder; a vocabulary or architecture mismatch is refused, nothing written', async () => {
  const dir = await prepared();
  const base = join(root, 'base');
  const trained = await loom([
    'train',
    ...TINY,
    '--data',
    dir,
    '--steps',
    '30',
    '--lr',
    '1e-2',
    '--eval-every',
    '0',
    '--out',
    base,
  ]);
  assert.equal(trained.code, 0, trained.text);
  const lastLoss = Number(/^step 30\/30 \| loss ([\d.]+)/m.exec(trained.text)![1]);
  const uniform = Math.log(300);
  assert.ok(lastLoss < uniform - 0.8, `the base model learned something (${lastLoss} vs ln(300) = ${uniform})`);

  const tune = await loom([
    'train',
    ...RUN,
    '--data',
    dir,
    '--init-from',
    join(base, 'model'),
    '--steps',
    '3',
    '--lr',
    '1e-4',
    '--min-lr',
    '1e-5',
    '--eval-every',
    '0',
    '--out',
    join(root, 'tuned'),
  ]);
  assert.equal(tune.code, 0, tune.text);
  assert.match(tune.text, /parameters from .*base/);
  const firstLoss = Number(/^step 1\/3 \| loss ([\d.]+)/m.exec(tune.text)![1]);
  // a model that did not load would start near ln(300)
  assert.ok(
    Math.abs(firstLoss - lastLoss) < 0.4,
    `fine-tuning starts at ${firstLoss}, where training ended (${lastLoss})`,
  );

  // without --data, the generated stories are tokenized with the model folder's own tokenizer
  const stories = await loom([
    'train',
    ...RUN,
    '--init-from',
    join(base, 'model'),
    '--stories',
    '100',
    '--steps',
    '2',
    '--eval-every',
    '0',
    '--out',
    join(root, 'tuned-stories'),
  ]);
  assert.equal(stories.code, 0, stories.text);
  assert.match(stories.text, /characters of generated stories \([\d,]+ tokens\), vocab 300/);
  const storiesLoss = Number(/^step 1\/2 \| loss ([\d.]+)/m.exec(stories.text)![1]);
  assert.ok(storiesLoss < uniform - 0.5, `the stories are tokenized as the model expects (loss ${storiesLoss})`);

  const long = await loom([
    'train',
    '--device',
    'cpu',
    '--data',
    dir,
    '--init-from',
    join(base, 'model'),
    '--block-size',
    '32',
    '--out',
    join(root, 'never'),
  ]);
  assert.equal(long.code, 2, long.text);
  assert.match(long.text, /--block-size 32 exceeds the model's context of 16 tokens/);

  const other = join(root, 'other-vocab');
  await saveGPT2(
    new GPT({ vocabSize: 50, blockSize: 32, nLayer: 1, nHead: 2, nEmbd: 8, dropout: 0, bias: true }, { device: 'cpu' }),
    other,
  );
  const out = join(root, 'never');
  const bad = await loom(['train', '--device', 'cpu', '--data', dir, '--init-from', other, '--out', out]);
  assert.equal(bad.code, 2, bad.text);
  assert.match(bad.text, /--init-from .*other-vocab: its vocabulary has 50 ids .* but the data's tokenizer has \d+/);
  const arch = await loom([
    'train',
    '--device',
    'cpu',
    '--data',
    dir,
    '--init-from',
    other,
    '--n-layer',
    '2',
    '--out',
    out,
  ]);
  assert.match(arch.text, /--n-layer cannot be combined with --init-from/);
  writeFileSync(join(other, 'config.json'), JSON.stringify({ model_type: 'bert', vocab_size: 50 }));
  const bert = await loom(['train', '--device', 'cpu', '--data', dir, '--init-from', other, '--out', out]);
  assert.match(bert.text, /this is not a GPT-2 model/);
  assert.equal(existsSync(out), false, 'nothing was written');
});

test('an empty or too short corpus is refused before training, naming the folder and what to change', async () => {
  const dir = await prepared();
  const empty = join(root, 'empty');
  mkdirSync(empty);
  for (const f of ['vocab.json', 'merges.txt']) writeFileSync(join(empty, f), readFileSync(join(dir, f)));
  writeShard(join(empty, 'train.bin'), []);
  writeShard(join(empty, 'val.bin'), []);
  const out = join(root, 'never2');
  const r = await loom(['train', ...TINY, '--data', empty, '--out', out]);
  assert.equal(r.code, 2, r.text);
  assert.match(r.text, /--data .*empty: the train split .*train\.bin.* is too short: .*0 tokens.*lower --block-size/);

  writeShard(join(empty, 'train.bin'), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const short = await loom(['train', ...TINY, '--data', empty, '--out', out]);
  assert.match(short.text, /the train split .* is too short: .*10 tokens/);
  const none = await loom(['train', ...TINY, '--data', join(root, 'nothing-here'), '--out', out]);
  assert.match(none.text, /--data .*nothing-here is not a folder \(make one with: loom prepare/);
  assert.equal(existsSync(out), false, 'nothing was written');

  // a train split that fits with an empty val split trains, without held-out loss, and says so
  writeShard(
    join(empty, 'train.bin'),
    Array.from({ length: 200 }, (_, i) => i % 250),
  );
  const noVal = await loom(['train', ...TINY, '--data', empty, '--steps', '2', '--out', join(root, 'noval')]);
  assert.equal(noVal.code, 0, noVal.text);
  assert.match(noVal.text, /note: no held-out loss: the val split is shorter than one window of 17 tokens/);
});
