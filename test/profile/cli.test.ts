// `loom profile` end to end on a tiny GPT: the printed table (phases, kernels, counters, where kernel
// times come from), the JSON report, option errors, and the TL_DEBUG=2 per-step kernel lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { getBackend, type ProfileReport } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

const TINY = ['--n-layer', '1', '--n-embd', '16', '--n-head', '2', '--batch-size', '2', '--block-size', '8'];
const FAST = [...TINY, '--stories', '40', '--steps', '2', '--warmup', '1'];

forEachBackend((device) => {
  test('loom profile --steps 2 prints phases, top kernels, counters and the timing source; --json writes the report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tl-profile-'));
    try {
      const file = join(dir, 'out', 'profile.json');
      const lines: string[] = [];
      const code = await main(['profile', '--device', device, ...FAST, '--top', '5', '--json', file], (s) =>
        lines.push(s),
      );
      const text = lines.join('\n');
      assert.equal(code, 0, text);
      assert.match(text, new RegExp(`^loom profile: device ${device} `));
      assert.match(text, /profiled 2 steps after 1 warmup: [\d.]+ ms\/step profiled; unprofiled step [\d.]+ ms/);
      for (const phase of ['forward', 'backward', 'optimizer', 'other'])
        assert.match(text, new RegExp(`^${phase} +[\\d.]+ +[\\d.]+ +[\\d.]+%$`, 'm'), `phase row ${phase}`);
      assert.match(text, /^kernel \(top 5 of \d+ by (GPU|host) time\) +count +total ms +mean µs +share$/m);
      assert.match(text, /^all kernels +[\d,]+ +[\d.]+ +[\d.]+$/m);
      assert.match(text, /counters per step \(unprofiled\): buffers created \d+, submits \d+, dispatches [\d,]+/);
      const software = getBackend(device).caps.software;
      if (device === 'cpu') assert.match(text, /GPU timestamps: not applicable/);
      else assert.match(text, /GPU timestamps: (available|UNAVAILABLE on this adapter .*host timings only)/);
      if (device === 'webgpu') assert.match(text, /queue submits: [\d.]+ ms host time/);

      const doc = JSON.parse(readFileSync(file, 'utf8')) as { command: string; report: ProfileReport };
      assert.equal(doc.command, 'loom profile');
      const r = doc.report;
      assert.equal(r.device, device);
      assert.equal(r.software, software);
      assert.equal(r.steps, 2);
      assert.equal(
        r.kernels.reduce((s, k) => s + k.count, 0),
        r.profiledCounters.dispatches,
        'kernel counts add up to the dispatches of the profiled steps',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('loom profile rejects bad step counts and lists its options in --help', async () => {
  const lines: string[] = [];
  assert.equal(await main(['profile', '--steps', '0'], (s) => lines.push(s)), 2);
  assert.match(lines.join('\n'), /--steps must be an integer >= 1, got 0/);
  lines.length = 0;
  assert.equal(await main(['profile', '--help'], (s) => lines.push(s)), 0);
  const help = lines.join('\n');
  for (const o of ['--steps', '--warmup', '--n-layer', '--device', '--json', '--top']) assert.ok(help.includes(o), o);
  lines.length = 0;
  assert.equal(await main(['help'], (s) => lines.push(s)), 0);
  assert.match(lines.join('\n'), /profile +profile training steps/);
});

test('TL_DEBUG=2 prints each profiled step with its kernels (TL_DEBUG=1: one line per step)', () => {
  const mainUrl = new URL('../../src/cli/main.ts', import.meta.url).href;
  const script = `const { main } = await import(${JSON.stringify(mainUrl)});
process.exitCode = await main(${JSON.stringify(['profile', '--device', 'cpu', ...FAST])});`;
  const run = (debug: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, TL_DEBUG: debug },
    });
  const two = run('2');
  assert.equal(two.status, 0, two.stderr);
  assert.equal(two.stdout.match(/^\[profile\] step \d+: [\d.]+ ms \(forward/gm)?.length, 2, two.stdout);
  assert.match(two.stdout, /^\[profile\] {3}kernel \(top \d+ of \d+ by host time\)/m);
  assert.match(two.stdout, /^\[profile\] {3}matmul +\d+/m);
  const one = run('1');
  assert.equal(one.status, 0, one.stderr);
  assert.equal(one.stdout.match(/^\[profile\] step \d+:/gm)?.length, 2, one.stdout);
  assert.doesNotMatch(one.stdout, /\[profile\] {3}kernel/);
});
