// The `cnn` training task end to end (in process, on the CPU): a tiny ResNet learns a trivially separable
// pair of shape classes, a resumed run continues exactly where the checkpoint left off, and bad
// settings are refused with messages naming the option and the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';

/** Settings of a run that takes a few seconds: horizontal vs vertical stripes, 16x16 grayscale. */
const TINY = [
  '--task', 'cnn', '--device', 'cpu', '--classes', '2', '--image-size', '16', '--channels', '1',
  '--widths', '8,16', '--blocks', '1,1', '--batch-size', '16', '--noise', '0', '--train-images', '200',
  '--test-images', '100', '--warmup-steps', '5', '--lr', '0.05',
]; // prettier-ignore

async function loom(args: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(['train', ...args], (s) => lines.push(s));
  return { code, text: lines.join('\n') };
}

/** The logged training losses by step. */
function losses(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^step +(\d+)\/\d+ \| loss (\S+) \| acc (\S+)/gm)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'tl-cnn-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('cnn task: the loss falls and held-out accuracy beats chance clearly', async () => {
  const metrics = join(tmp, 'learn.csv');
  const r = await loom([
    ...TINY,
    '--steps',
    '50',
    '--eval-every',
    '25',
    '--out',
    join(tmp, 'learn'),
    '--metrics',
    metrics,
  ]);
  assert.equal(r.code, 0, r.text);
  const l = [...losses(r.text).values()];
  assert.equal(l.length, 50, r.text);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(
    mean(l.slice(-10)) < mean(l.slice(0, 10)) - 0.2,
    `loss did not fall: ${l.map((x) => x.toFixed(3)).join(' ')}`,
  );
  const acc = /eval at step 50: test accuracy ([\d.]+)%/.exec(r.text);
  assert.ok(acc, r.text);
  assert.ok(Number(acc[1]) >= 75, `held-out accuracy ${acc[1]}% (chance 50%)\n${r.text}`);
  // one metrics row per step and per eval, with the task's columns
  const rows = readFileSync(metrics, 'utf8').trim().split('\n');
  assert.equal(rows[0], 'kind,step,loss,acc,lr,ms,images_per_s');
  assert.equal(rows.filter((x) => x.startsWith('step,')).length, 50);
  assert.equal(rows.filter((x) => x.startsWith('eval,')).length, 2);
});

test('cnn task: a run resumed from a checkpoint logs exactly the losses of the uninterrupted run', async () => {
  const args = [...TINY, '--steps', '8', '--checkpoint-every', '4', '--eval-every', '0'];
  const a = join(tmp, 'full');
  const full = await loom([...args, '--out', a]);
  assert.equal(full.code, 0, full.text);
  // a run that stopped after its step-4 checkpoint: only that checkpoint survives
  const b = join(tmp, 'cut');
  cpSync(join(a, 'step-4'), join(b, 'step-4'), { recursive: true });
  const resumed = await loom([...args, '--out', b, '--resume']);
  assert.equal(resumed.code, 0, resumed.text);
  assert.match(resumed.text, /resumed from .*step-4 at step 4/);
  const want = losses(full.text);
  const got = losses(resumed.text);
  assert.deepEqual([...got.keys()], [5, 6, 7, 8]);
  for (const [step, loss] of got) assert.equal(loss, want.get(step), `step ${step}`);
  // a different config is refused, naming the difference
  const other = await loom([...TINY, '--steps', '8', '--lr', '0.1', '--out', b, '--resume']);
  assert.notEqual(other.code, 0);
  assert.match(other.text, /different config[\s\S]*lr: 0.05 in the checkpoint, 0.1 now/);
});

test('cnn task: SIGINT finishes the step, saves a checkpoint there and exits 130', async () => {
  const out = join(tmp, 'sigint');
  const args = [...TINY, '--steps', '2000', '--eval-every', '0', '--checkpoint-every', '1000', '--out', out];
  const run = join('test', 'train', 'fixtures', 'run-loom.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', run, 'train', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let sent = false;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!sent && /^step +3\//m.test(stdout)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 130, stdout);
  const last = Math.max(...losses(stdout).keys());
  assert.ok(last >= 3 && last < 2000, stdout);
  assert.match(stdout, new RegExp(`checkpoint .*step-${last}\\b`));
  assert.ok(existsSync(join(out, `step-${last}`, 'model.safetensors')));
});

test('cnn task: bad settings are refused naming the option and value', async () => {
  const cases: [string[], RegExp][] = [
    [['--widths', '8,x'], /--widths must be comma-separated positive integers like 8,16,32, got '8,x'/],
    [['--widths', '8,16,32'], /--widths \(8,16,32\) and --blocks \(1,1\) need one entry per stage each/],
    [['--channels', '2'], /--channels must be 1 or 3, got 2/],
    [['--classes', '9'], /--classes must be an integer >= 2 and <= 8, got 9/],
    [['--steps', '5', '--warmup-steps', '5'], /--warmup-steps \(5\) must be smaller than --steps \(5\)/],
    [['--optimizer', 'adam'], /--optimizer must be one of sgd, adamw, got 'adam'/],
    [['--resume', '--out', join(tmp, 'nothing-here')], /no checkpoint found in/],
  ];
  for (const [extra, re] of cases) {
    const r = await loom([...TINY, '--steps', '10', '--out', join(tmp, 'bad'), ...extra]);
    assert.notEqual(r.code, 0, `${extra.join(' ')} was accepted`);
    assert.match(r.text, re);
  }
  const cfg = join(tmp, 'bad.json');
  writeFileSync(cfg, JSON.stringify({ task: 'cnn', description: 'x', widht: '8,16' }));
  const r = await loom(['--config', cfg]);
  assert.notEqual(r.code, 0);
  assert.match(r.text, /unknown key "widht" \(did you mean "widths"\?\)/);
});

test('the shipped cnn configs validate; the task defaults are cnn-shapes.json', async () => {
  const { loadTrainConfig } = await import('../../src/cli/train.js');
  const { cnnRunConfig } = await import('../../src/cli/cnnjob.js');
  assert.deepEqual(cnnRunConfig((await loadTrainConfig('configs/cnn-shapes.json')).values), cnnRunConfig({}));
  for (const f of ['configs/cnn-shapes.json', 'configs/cnn-resnet.json']) {
    const c = await loadTrainConfig(f);
    assert.equal(c.task.name, 'cnn', f);
    assert.ok(c.description && c.description.length > 40, `${f} needs a description`);
  }
});

test('loom bench conv2d counts the ResNet-50 stem as 118M multiply-adds per image, 64x112x112 out', async () => {
  const { convCases, convFlops, convOutputSize } = await import('../../src/cli/benchconv.js');
  const [b1, b8] = convCases(false);
  assert.deepEqual(convOutputSize(b1!), [112, 112]);
  // 64 * 112 * 112 outputs, each 3 * 7 * 7 = 147 multiply-adds: 118,013,952 (torchvision's figure)
  assert.equal(convFlops(b1!), 2 * 118_013_952);
  assert.equal(convFlops(b8!), 8 * 2 * 118_013_952);
});
