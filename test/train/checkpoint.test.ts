// Crash-safe checkpoints of `loom train` end to end on a tiny GPT (CPU, deterministic): a run killed
// with SIGKILL after a checkpoint and resumed matches an uninterrupted run exactly (every logged loss,
// and the final weights and optimizer state byte for byte); a truncated latest checkpoint is refused
// naming the file and the previous one is used; a different model config is refused naming the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fnv1a } from '../../src/io/checkpoint.js';

const RUN = ['--import', 'tsx', join('test', 'train', 'fixtures', 'run-loom.ts')];
// long enough that the killed child is still far from done when SIGKILL lands, even on a loaded machine
const STEPS = 200;
const ARGS = [
  'train',
  '--device',
  'cpu',
  '--n-layer',
  '1',
  '--n-embd',
  '16',
  '--n-head',
  '2',
  '--block-size',
  '16',
  '--batch-size',
  '4',
  '--stories',
  '200',
  '--steps',
  String(STEPS),
  '--warmup-steps',
  '2',
  '--eval-every',
  '20',
  '--sample-chars',
  '10',
  '--checkpoint-every',
  '10',
];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

/** Runs loom in a child; `killWhen` (checked on each stdout chunk) sends it `signal` (SIGKILL by default). */
function runLoom(
  args: string[],
  killWhen?: (stdout: string) => boolean,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (killWhen?.(stdout) && !sent) {
        sent = true;
        child.kill(signal);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (stderr.trim()) stdout += `\n[stderr]\n${stderr}`;
      resolve({ code, signal, stdout });
    });
  });
}

/** The logged step lines' step, loss and grad norm (not the timings), by step number. */
function losses(stdout: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of stdout.matchAll(/^step +(\d+)\/\d+ \| (loss [\d.]+ \| norm [\d.]+)/gm)) out.set(Number(m[1]), m[2]!);
  return out;
}

test('a run SIGKILLed after a checkpoint and resumed matches the uninterrupted run exactly', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tl-ckpt-'));
  try {
    const a = join(root, 'a');
    const b = join(root, 'b');
    const full = await runLoom([...ARGS, '--out', a]);
    assert.equal(full.code, 0, full.stdout);
    // keeps the last 2 checkpoints, beside the model folder and the metrics
    assert.deepEqual(readdirSync(a).sort(), [
      'latest',
      'metrics.jsonl',
      'model',
      `step-${STEPS - 10}`,
      `step-${STEPS}`,
    ]);

    const killed = await runLoom([...ARGS, '--out', b], (s) => s.includes(`${join(b, 'step-10')}\n`));
    assert.equal(killed.signal, 'SIGKILL', `the child was not killed mid-run:\n${killed.stdout}`);

    const resumed = await runLoom([...ARGS, '--out', b, '--resume']);
    assert.equal(resumed.code, 0, resumed.stdout);
    const from = /resumed from .*step-(\d+) at step (\d+)/.exec(resumed.stdout);
    assert.ok(from, resumed.stdout);
    const start = Number(from[2]);
    assert.ok(start >= 10 && start < STEPS, `resumed at ${start}`);
    const want = losses(full.stdout);
    const got = losses(resumed.stdout);
    assert.equal(got.size, STEPS - start);
    for (const [step, line] of got) assert.equal(line, want.get(step), `step ${step}`);
    const final = /final train loss [\d.]+, val loss [\d.]+/.exec(full.stdout);
    assert.ok(final && resumed.stdout.includes(final[0]), resumed.stdout);
    for (const f of ['model.safetensors', 'optimizer.safetensors']) {
      assert.ok(readFileSync(join(a, `step-${STEPS}`, f)).equals(readFileSync(join(b, `step-${STEPS}`, f))), f);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a truncated latest checkpoint is refused naming the file, the previous one is used; a config mismatch is refused', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tl-ckpt-'));
  try {
    const dir = join(root, 'run');
    const args = ARGS.map((v, i) => (ARGS[i - 1] === '--steps' ? '20' : v));
    const first = await runLoom([...args, '--out', dir]);
    assert.equal(first.code, 0, first.stdout);
    const modelFile = join(dir, 'step-20', 'model.safetensors');
    const good = readFileSync(modelFile);
    truncateSync(modelFile, 100);

    const resumed = await runLoom([...args, '--out', dir, '--resume']);
    assert.equal(resumed.code, 0, resumed.stdout);
    assert.match(resumed.stdout, /refusing checkpoint step-20: .*model\.safetensors is 100 bytes, \d+ expected/);
    assert.match(resumed.stdout, /using the previous complete checkpoint .*step-10/);
    assert.match(resumed.stdout, /resumed from .*step-10 at step 10/);
    // the run from step 10 rewrote step 20 with the same bytes as before
    assert.equal(fnv1a(readFileSync(modelFile)), fnv1a(good));

    const wide = args.map((v, i) => (args[i - 1] === '--n-embd' ? '32' : v));
    const mismatch = await runLoom([...wide, '--out', dir, '--resume']);
    assert.equal(mismatch.code, 2, mismatch.stdout);
    assert.match(mismatch.stdout, /different config; refusing it:\n\s+model\.nEmbd: 16 in the checkpoint, 32 now/);
    assert.doesNotMatch(mismatch.stdout, /^step /m);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('SIGINT ends the run after the current step with a checkpoint there, exit code 130', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tl-sigint-'));
  try {
    // checkpoints only every 1000 steps: the handler must run after the step, not wait for checkpoint I/O
    const args = [...ARGS, '--checkpoint-every', '1000', '--out', dir];
    const run = await runLoom(args, (out) => /^step +3\//m.test(out), 'SIGINT');
    assert.equal(run.code, 130, run.stdout);
    const last = Math.max(...losses(run.stdout).keys());
    assert.ok(last >= 3 && last <= 6, `stopped at step ${last}, not right after the signal:\n${run.stdout}`);
    assert.ok(
      readdirSync(dir).includes(`step-${last}`),
      `no checkpoint at step ${last}: ${readdirSync(dir).join(', ')}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
