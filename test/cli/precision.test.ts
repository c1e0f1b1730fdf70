// `loom train --precision`: f16 on the CPU (which has float16) trains with a loss scale in every step line,
// the scaler's state is checkpointed and restored on --resume, a checkpoint's precision must match the
// resumed run's, auto means f32 on the CPU, and (with the WebGPU suite) f16 trains on an adapter with
// shader-f16 (lavapipe) and is a clear error naming the device on one without (llvmpipe's GL-ES).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { getBackend } from '../../src/tensor/index.js';
import { webgpuRequested } from '../helpers/backends.js';

/** Tiny model overrides: a run of a few steps takes about a second. */
const TINY = [
  ...['--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '16', '--batch-size', '4'],
  ...['--stories', '200', '--warmup-steps', '1', '--eval-every', '0', '--sample-chars', '0'],
];

async function loom(args: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(args, (s) => lines.push(s));
  return { code, text: lines.join('\n') };
}

/** The step lines of a log, without the timing columns (ms, tok/s, eta). */
function steps(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('step '))
    .map((l) => {
      const cols = l.split(' | ');
      return [...cols.slice(0, 4), ...cols.slice(7)].join(' | ');
    });
}

test('--precision f16 on the cpu trains with a logged loss scale and resumes with the checkpointed scaler', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tl-prec-'));
  try {
    const out = join(dir, 'run');
    const args = ['train', '--device', 'cpu', '--precision', 'f16', ...TINY, '--steps', '4', '--checkpoint-every', '2'];
    const a = await loom([...args, '--out', out]);
    assert.equal(a.code, 0, a.text);
    assert.match(a.text, /device cpu \(requested\), precision f16 \(requested\)/);
    const full = steps(a.text);
    assert.equal(full.length, 4);
    for (const l of full) assert.match(l, / \| scale 65536$/, l);

    // back to the step-2 checkpoint, with its scaler state edited: the resumed run must use it
    rmSync(join(out, 'step-4'), { recursive: true });
    writeFileSync(join(out, 'latest'), JSON.stringify({ step: 2 }));
    const metaPath = join(out, 'step-2', 'meta.json');
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as { extra: { scaler: Record<string, number> } };
    assert.deepEqual(meta.extra.scaler, {
      scale: 65536,
      growthFactor: 2,
      backoffFactor: 0.5,
      growthInterval: 2000,
      growthTracker: 2,
    });
    meta.extra.scaler.scale = 4096; // a power of two: the scaled arithmetic is exact, only the log changes
    writeFileSync(metaPath, JSON.stringify(meta));
    const b = await loom([...args, '--out', out, '--resume']);
    assert.equal(b.code, 0, b.text);
    const resumed = steps(b.text);
    assert.deepEqual(
      resumed,
      full.slice(2).map((l) => l.replace('scale 65536', 'scale 4096')),
      'the same losses and norms as the uninterrupted run, at the restored scale',
    );

    // a float32 run refuses the f16 checkpoint
    const c = await loom(['train', '--device', 'cpu', '--precision', 'f32', ...TINY, '--steps', '4', '--out', out]);
    assert.equal(c.code, 0, c.text); // a fresh run (no --resume) replaces it
    const d = await loom([...args, '--out', out, '--resume']);
    assert.notEqual(d.code, 0);
    assert.match(d.text, /precision: undefined in the checkpoint, "f16" now/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--precision auto is f32 on the cpu; an unknown value is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tl-prec-'));
  try {
    const r = await loom(['train', '--device', 'cpu', ...TINY, '--steps', '2', '--out', join(dir, 'a')]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /precision f32 \(auto: the cpu\)/);
    assert.doesNotMatch(r.text, /scale/);
    const bad = await loom(['train', '--device', 'cpu', '--precision', 'bf16', ...TINY, '--out', join(dir, 'b')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.text, /precision/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  '--precision f16 on WebGPU trains where the adapter has shader-f16, else is an error naming the device',
  { skip: webgpuRequested ? false : 'the WebGPU suite was not requested (TL_TEST_WEBGPU=1)' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tl-prec-'));
    try {
      const args = ['train', '--device', 'webgpu', '--precision', 'f16', ...TINY, '--steps', '2'];
      const r = await loom([...args, '--out', join(dir, 'a')]);
      if (getBackend('webgpu').caps.dtypes.includes('float16')) {
        // an adapter with shader-f16 (e.g. lavapipe) trains in f16 instead
        assert.equal(r.code, 0, r.text);
        assert.match(r.text, /device webgpu \(requested.*\), precision f16 \(requested\)/);
        assert.equal(steps(r.text).length, 2);
        for (const l of steps(r.text)) assert.match(l, /^step .*loss \d+\.\d+.* \| scale 65536$/, l);
        return;
      }
      assert.notEqual(r.code, 0);
      assert.match(r.text, /--precision f16 needs float16 on the device, and webgpu \(.+\) has none/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
