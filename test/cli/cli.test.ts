// The loom command line: option parsing and errors, and a short real training run whose loss must
// fall well below the uniform guess ln(vocab).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { didYouMean, parseArgs } from '../../src/cli/args.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';

const SPEC = {
  steps: { kind: 'number', help: '' },
  device: { kind: 'string', choices: ['cpu', 'auto'], help: '' },
  verbose: { kind: 'boolean', help: '' },
} as const;

test('parseArgs reads --k v, --k=v and flags, and rejects bad input with clear messages', () => {
  assert.deepEqual(parseArgs('x', ['--steps', '5', '--device=cpu', '--verbose'], SPEC), {
    steps: 5,
    device: 'cpu',
    verbose: true,
  });
  assert.throws(() => parseArgs('x', ['--stpes', '5'], SPEC), /unknown option --stpes \(did you mean --steps\?\)/);
  assert.throws(() => parseArgs('x', ['--steps', 'many'], SPEC), /--steps needs a number, got 'many'/);
  assert.throws(() => parseArgs('x', ['--steps'], SPEC), /--steps needs a value/);
  assert.throws(() => parseArgs('x', ['--device', 'tpu'], SPEC), /must be one of cpu, auto/);
  assert.throws(() => parseArgs('x', ['train'], SPEC), /unexpected argument 'train'/);
  assert.equal(didYouMean('warmup-step', ['warmup-steps', 'steps']), 'warmup-steps');
  assert.equal(didYouMean('zzzzzzzz', ['steps']), undefined);
});

test('loom with an unknown command or option exits non-zero and says why', async () => {
  const lines: string[] = [];
  assert.equal(await main(['trian'], (s) => lines.push(s)), 1);
  assert.match(lines.join('\n'), /unknown command 'trian'/);
  lines.length = 0;
  assert.equal(await main(['train', '--setps', '3'], (s) => lines.push(s)), 2);
  assert.match(lines.join('\n'), /did you mean --steps/);
});

test('loom train runs a real training job: the loss falls far below ln(vocab)', async () => {
  const lines: string[] = [];
  const out = mkdtempSync(join(tmpdir(), 'tl-cli-'));
  const args = [
    '--steps',
    '60',
    '--batch-size',
    '8',
    '--block-size',
    '32',
    '--n-layer',
    '1',
    '--n-embd',
    '32',
    '--n-head',
    '2',
  ];
  const code = await main(
    [
      'train',
      ...args,
      '--stories',
      '300',
      '--warmup-steps',
      '5',
      '--eval-every',
      '30',
      '--sample-chars',
      '20',
      '--device',
      'cpu',
      '--out',
      out,
    ],
    (s) => lines.push(s),
  ).finally(() => rmSync(out, { recursive: true, force: true }));
  assert.equal(code, 0, lines.join('\n'));
  const losses = lines.filter((l) => l.startsWith('step ')).map((l) => Number(/loss ([\d.]+)/.exec(l)![1]));
  assert.equal(losses.length, 60);
  const vocab = Number(/vocab (\d+)/.exec(lines[0]!)![1]);
  const uniform = Math.log(vocab);
  assert.ok(
    Math.abs(losses[0]! - uniform) < 0.3,
    `first loss ${losses[0]} should be near ln(${vocab}) = ${uniform.toFixed(3)}`,
  );
  const tail = losses.slice(-10).reduce((a, b) => a + b, 0) / 10;
  assert.ok(
    tail < uniform - 0.8,
    `mean of the last 10 losses ${tail.toFixed(3)} should be well below ${uniform.toFixed(3)}`,
  );
  const val = Number(/val loss ([\d.]+)/.exec(lines.filter((l) => l.startsWith('eval')).pop()!)![1]);
  assert.ok(val < uniform - 0.8, `held-out loss ${val} should also fall`);
  assert.match(lines.join('\n'), /sample:\nIt was a /);
});
