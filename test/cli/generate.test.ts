// `loom generate` on tiny models saved to a temp folder (saveGPT2 + saveTokenizer): greedy text against the
// uncached library path, streaming in pieces, --prompt-ids/--print-ids for scripting, byte-level BPE output
// decoded across token boundaries, and one clear error per bad input.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BPETokenizer,
  CharTokenizer,
  END_OF_TEXT,
  GPT,
  Generator,
  fromPretrained,
  gpt2Config,
  noGrad,
  saveGPT2,
  trainBPE,
} from '../../src/index.js';
import { loadTokenizer, saveTokenizer } from '../../src/data/tokenizer-files.js';
import { DEFAULT_MODEL_DIR } from '../../src/cli/generate.js';
import { main } from '../../src/cli/main.js';
import { webgpuRequested } from '../helpers/backends.js';

const TEXT = 'the cat sat on the mat. a dog ran to the cat!\n';
let root = '';
let charDir = '';
let bpeDir = '';

/** A random tiny GPT-2 with sharpened weights (so that greedy output is not a run of near ties). */
function tinyGPT(vocabSize: number, seed: number): GPT {
  const model = new GPT(gpt2Config('tiny', { vocabSize }), { generator: new Generator(seed) });
  noGrad(() => {
    for (const p of model.parameters()) if (p.ndim === 2) p.mul_(5);
  });
  return model;
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'tl-generate-'));
  charDir = join(root, 'char');
  const chars = CharTokenizer.fromText(TEXT);
  const m1 = tinyGPT(chars.vocabSize, 3);
  await saveGPT2(m1, charDir);
  saveTokenizer(charDir, chars);
  m1.dispose();
  bpeDir = join(root, 'bpe');
  const bpe = trainBPE(`${TEXT} café naïve 猫 🦊 `.repeat(20), 280);
  const m2 = tinyGPT(bpe.vocabSize, 4);
  await saveGPT2(m2, bpeDir);
  saveTokenizer(bpeDir, bpe);
  m2.dispose();
});

after(() => rmSync(root, { recursive: true, force: true }));

/** Runs loom with captured output; `pieces` collects streamed writes when given. */
async function loom(args: string[], pieces?: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await main([...args, '--device', 'cpu'], (s) => lines.push(s), pieces ? (s) => pieces.push(s) : null);
  return { code, out: lines.join('\n') };
}

/** The oracle: the library's uncached generation on the saved folder's model. */
async function reference(dir: string, prompt: number[], n: number, opts: object): Promise<number[]> {
  const model = await fromPretrained(dir);
  const ids = await model.generate(prompt, n, { ...opts, cache: false });
  model.dispose();
  return ids;
}

test('--greedy continues the prompt with the argmax tokens, streamed one piece per token', async () => {
  const tok = loadTokenizer(charDir);
  const prompt = 'the cat';
  // 7 + 9 tokens fill the context of 16 exactly: within it the uncached path is the oracle
  const want = await reference(charDir, Array.from(tok.encode(prompt)), 9, { greedy: true });
  const pieces: string[] = [];
  const r = await loom(['generate', '--model', charDir, '--prompt', prompt, '--greedy', '--max-tokens', '9'], pieces);
  assert.equal(r.code, 0, r.out);
  assert.equal(pieces.join(''), `${tok.decode(want)}\n`);
  assert.equal(pieces.length, 1 + 9 + 1, 'the prompt, one piece per token, the final newline');
  // without a raw writer the text comes as one line through out
  const whole = await loom(['generate', '--model', charDir, '--prompt', prompt, '--greedy', '--max-tokens', '9']);
  assert.equal(whole.out, tok.decode(want));
});

test('--prompt-ids and --print-ids: one line of the new ids; a seed reproduces them', async () => {
  const args = ['generate', '--model', charDir, '--prompt-ids', '1, 2,3', '--print-ids', '--max-tokens', '9'];
  const r = await loom([...args, '--seed', '5', '--top-k', '6', '--top-p', '0.9', '--temperature', '1.2']);
  assert.equal(r.code, 0, r.out);
  const want = await reference(charDir, [1, 2, 3], 9, { seed: 5, topK: 6, topP: 0.9, temperature: 1.2 });
  assert.equal(r.out, want.slice(3).join(','));
  assert.match(r.out, /^\d+(,\d+){8}$/);
  const again = await loom([...args, '--seed', '5', '--top-k', '6', '--top-p', '0.9', '--temperature', '1.2']);
  assert.equal(again.out, r.out);
});

test(
  '--device webgpu gives the greedy ids of the cpu',
  { skip: !webgpuRequested && 'TL_TEST_WEBGPU is not set' },
  async () => {
    const args = [
      'generate',
      '--model',
      charDir,
      '--prompt-ids',
      '4,5,6',
      '--greedy',
      '--print-ids',
      '--max-tokens',
      '20',
    ];
    const lines: string[] = [];
    assert.equal(await main([...args, '--device', 'webgpu'], (s) => lines.push(s), null), 0, lines.join('\n'));
    const cpu = await loom(args);
    assert.equal(lines.join('\n'), cpu.out);
  },
);

test('a byte-level BPE model streams valid text across token boundaries (as decoding all ids at once)', async () => {
  const tok = loadTokenizer(bpeDir);
  const pieces: string[] = [];
  const prompt = 'café 猫';
  const ids = Array.from(tok.encode(prompt));
  const n = 16 - ids.length; // within the context (the uncached oracle slides its window past it)
  const r = await loom(
    ['generate', '--model', bpeDir, '--prompt', prompt, '--max-tokens', `${n}`, '--seed', '2'],
    pieces,
  );
  assert.equal(r.code, 0, r.out);
  assert.ok(tok instanceof BPETokenizer);
  const eosId = tok.specialId(END_OF_TEXT);
  const want = await reference(bpeDir, ids, n, { seed: 2, temperature: 0.8, eosId });
  if (want[want.length - 1] === eosId) want.pop(); // generation stops there and does not print it
  assert.equal(pieces.join(''), `${tok.decode(want)}\n`);
});

test('bad inputs give one clear error each and exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['--model', join(root, 'none')], /model folder .*none does not exist/],
    [['--model', charDir, '--prompt', ''], /--prompt is empty/],
    [['--model', charDir, '--prompt', 'x'.repeat(17)], /cannot encode the prompt: .*"x"/],
    [
      ['--model', charDir, '--prompt', 'the cat sat on the mat'],
      /prompt is 22 tokens, longer than the model's context of 16/,
    ],
    [['--model', charDir, '--prompt-ids', '1,99'], /entry 1 is 99, outside the vocabulary \[0, 16\)/],
    [['--model', charDir, '--prompt-ids', '1,,2'], /entry 1 \(''\) is not an integer/],
    [['--model', charDir, '--prompt-ids', '1', '--prompt', 'a'], /--prompt or --prompt-ids, not both/],
    [['--model', charDir, '--top-p', '2'], /topP must be in \(0, 1\], got 2/],
    [['--model', charDir, '--max-tokens', '0'], /--max-tokens must be an integer in \[1, inf\], got 0/],
    [['--model', charDir, '--temprature', '1'], /unknown option --temprature \(did you mean --temperature\?\)/],
  ];
  for (const [args, re] of cases) {
    const r = await loom(['generate', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}`);
    assert.match(r.out, re);
  }
  if (!existsSync(DEFAULT_MODEL_DIR)) {
    const r = await loom(['generate']);
    assert.match(r.out, /model folder runs\/gpt-stories\/model does not exist .*loom train/);
  }
});

test('a folder missing its weights or tokenizer is named', async () => {
  const broken = join(root, 'broken');
  const m = tinyGPT(10, 1);
  await saveGPT2(m, broken);
  m.dispose();
  let r = await loom(['generate', '--model', broken, '--prompt-ids', '1']);
  assert.equal(r.code, 2);
  assert.match(r.out, /broken: no tokenizer found \(expected chars\.json, vocab\.json \+ merges\.txt/);
  unlinkSync(join(broken, 'model.safetensors'));
  r = await loom(['generate', '--model', broken]);
  assert.match(r.out, /broken\/model\.safetensors is missing/);
});

test('a Hugging Face style folder with tokenizer.json works; a tokenizer larger than the model is refused', async () => {
  const hf = join(root, 'hf');
  const m = tinyGPT(263, 9); // the 262 ids of the vocabulary + <|endoftext|>
  await saveGPT2(m, hf);
  m.dispose();
  copyFileSync('test/fixtures/bpe-hand-json/tokenizer.json', join(hf, 'tokenizer.json'));
  const r = await loom(['generate', '--model', hf, '--prompt', 'the cat', '--max-tokens', '5', '--print-ids']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /^\d+(,\d+){0,4}$/);
  const mismatched = join(root, 'mismatched');
  mkdirSync(mismatched);
  for (const f of ['config.json', 'model.safetensors'])
    copyFileSync(join('test/fixtures/gpt2-tiny', f), join(mismatched, f));
  copyFileSync('test/fixtures/bpe-hand-json/tokenizer.json', join(mismatched, 'tokenizer.json'));
  const bad = await loom(['generate', '--model', mismatched, '--prompt', 'the']);
  assert.equal(bad.code, 2);
  assert.match(bad.out, /the tokenizer in .*mismatched has 263 ids but the model only 64/);
});

test('--help lists the options', async () => {
  const r = await loom(['generate', '--help']);
  assert.equal(r.code, 0);
  for (const o of ['--model', '--prompt-ids', '--print-ids', '--top-p', '--greedy', '--seed', '--device'])
    assert.ok(r.out.includes(o), o);
  assert.match((await loom(['--help'])).out, /generate/);
});
