// `loom train --config FILE`: keys are checked against the task's options (did-you-mean for typos, the
// kind and file named for a wrong type), command-line flags override the file, --help shows the config's
// task, nothing is written when a config is wrong, and every shipped file in configs/ validates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { getTrainTask, trainTaskNames } from '../../src/cli/tasks.js';
import { loadTrainConfig } from '../../src/cli/train.js';

/** Tiny model overrides: a run of a few steps takes about a second. */
const TINY = {
  device: 'cpu',
  'n-layer': 1,
  'n-head': 2,
  'n-embd': 16,
  'block-size': 16,
  'batch-size': 4,
  stories: 200,
  'warmup-steps': 1,
  'eval-every': 0,
  'sample-chars': 5,
};

async function loom(args: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main(args, (s) => lines.push(s));
  return { code, text: lines.join('\n') };
}

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tl-cfg-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function writeJson(file: string, value: unknown): string {
  writeFileSync(file, JSON.stringify(value));
  return file;
}

test(
  'config errors name the file and key (did-you-mean, kind, choices) and nothing is written',
  withDir(async (dir) => {
    const out = join(dir, 'run');
    const cases: [unknown, RegExp][] = [
      [{ stpes: 3 }, /config .*bad\.json: unknown key "stpes" \(did you mean "steps"\?\)/],
      [{ 'batch-szie': 3 }, /unknown key "batch-szie" \(did you mean "batch-size"\?\)/],
      [{ steps: '3' }, /config .*bad\.json: "steps" must be a number, got string "3"/],
      [{ resume: 1 }, /"resume" must be a boolean, got number 1/],
      [{ device: 'tpu' }, /"device" must be one of auto, cpu, webgpu, got "tpu"/],
      [{ help: true }, /"help" is a command-line flag, not a config key/],
      [{ task: 'gtp' }, /unknown task 'gtp' in config .*bad\.json \(did you mean 'gpt'\?\)/],
      [{ description: 3 }, /"description" must be a string, got number/],
      [[1, 2], /must hold a JSON object/],
    ];
    for (const [value, want] of cases) {
      const file = writeJson(join(dir, 'bad.json'), value);
      const r = await loom(['train', '--config', file, '--out', out]);
      assert.equal(r.code, 2, r.text);
      assert.match(r.text, want);
    }
    writeFileSync(join(dir, 'broken.json'), '{"steps": 3,');
    const r = await loom(['train', '--config', join(dir, 'broken.json'), '--out', out]);
    assert.match(r.text, /config .*broken\.json is not valid JSON/);
    const missing = await loom(['train', '--config', join(dir, 'nope.json')]);
    assert.match(missing.text, /cannot read --config .*nope\.json/);
    // options that pass the type check but not the run's own checks are refused before anything is written too
    for (const [k, v, want] of [
      ['n-embd', 15, /--n-embd 15 must be a multiple of --n-head 2/],
      ['steps', 0, /--steps must be an integer >= 1, got 0/],
      ['grad-accum', 1.5, /--grad-accum must be an integer >= 1, got 1.5/],
      ['block-size', 5000, /--stories 200 gives \d+ tokens, too few for windows of --block-size 5000/],
      ['metrics', join(dir, 'm.txt'), /--metrics: .*m\.txt must end in \.jsonl \(JSON lines\) or \.csv/],
      ['min-lr', 0.1, /--min-lr 0\.1 must not exceed --lr 0\.003/],
    ] as const) {
      const file = writeJson(join(dir, 'bad.json'), { ...TINY, steps: 3, [k]: v });
      const bad = await loom(['train', '--config', file, '--out', out]);
      assert.equal(bad.code, 2, bad.text);
      assert.match(bad.text, want);
    }
    assert.equal(existsSync(out), false, 'a refused config wrote nothing');
  }),
);

test(
  'command-line flags override the config file, whose other values apply',
  withDir(async (dir) => {
    const file = writeJson(join(dir, 'tiny.json'), { task: 'gpt', description: 'a tiny run', ...TINY, steps: 4 });
    const out = join(dir, 'run');
    const r = await loom(['train', '--config', file, '--steps', '2', '--n-embd=32', '--out', out]);
    assert.equal(r.code, 0, r.text);
    assert.equal(r.text.match(/^step /gm)?.length, 2, 'the flag --steps 2 beats the file steps 4');
    assert.match(r.text, /model: 1 layers, 2 heads, width 32, context 16/, 'file values and the --n-embd override');
    assert.match(r.text, /batch 4, 2 steps/);
    assert.ok(existsSync(join(out, 'model', 'config.json')));
    const hf = JSON.parse(readFileSync(join(out, 'model', 'config.json'), 'utf8')) as Record<string, number>;
    assert.equal(hf.n_embd, 32);
    assert.match(r.text, new RegExp(`sample with: loom generate --model ${join(out, 'model')}$`));
    // a fresh run in the same folder replaces the earlier run's checkpoints (a stale step-2 would outrank step-1)
    const again = await loom(['train', '--config', file, '--steps', '1', '--warmup-steps', '0', '--out', out]);
    assert.equal(again.code, 0, again.text);
    assert.match(again.text, /held checkpoints of an earlier run; they are replaced/);
    assert.deepEqual(
      readdirSync(out).filter((n) => n.startsWith('step-')),
      ['step-1'],
    );
  }),
);

test(
  'configs/gpt-stories.json is the default job: with tiny overrides it runs, and so does plain loom train',
  withDir(async (dir) => {
    const tiny = Object.entries({ ...TINY, steps: 2 }).flatMap(([k, v]) => [`--${k}`, String(v)]);
    const a = await loom(['train', '--config', join('configs', 'gpt-stories.json'), ...tiny, '--out', join(dir, 'a')]);
    const b = await loom(['train', ...tiny, '--out', join(dir, 'b')]);
    assert.equal(a.code, 0, a.text);
    assert.equal(b.code, 0, b.text);
    const steps = (t: string) =>
      t
        .split('\n')
        .filter((l) => l.startsWith('step '))
        .map((l) => l.split(' | ').slice(0, 3));
    assert.equal(steps(a.text).length, 2);
    assert.deepEqual(steps(a.text), steps(b.text), 'the config file and the defaults train the same run');
  }),
);

test(
  '--help lists the options of the default task, or of the config file task',
  withDir(async (dir) => {
    const plain = await loom(['train', '--help']);
    assert.equal(plain.code, 0);
    for (const k of ['--config', '--grad-accum', '--data', '--init-from', '--metrics', '--eval-batches', '--task'])
      assert.ok(plain.text.includes(k), `${k} in help`);
    // the help of a config's task is shown even when the rest of the file would be refused
    const file = writeJson(join(dir, 'c.json'), { task: 'gpt', stpes: 1 });
    const withConfig = await loom(['train', '--config', file, '--help']);
    assert.equal(withConfig.code, 0, withConfig.text);
    assert.match(withConfig.text, /--grad-accum/);
    assert.ok(withConfig.text.includes(`Config: ${file}`));
  }),
);

test('every file in configs/ parses and validates against its task, and configs/README.md documents every key', async () => {
  const files = readdirSync('configs').filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 3, `configs: ${files.join(', ')}`);
  const readme = readFileSync(join('configs', 'README.md'), 'utf8');
  for (const f of files) {
    const path = join('configs', f);
    const cfg = await loadTrainConfig(path);
    assert.ok((cfg.description ?? '').length > 40, `${f} documents itself in "description"`);
    assert.ok(readme.includes(f), `README mentions ${f}`);
    for (const k of Object.keys(cfg.values)) assert.ok(readme.includes(`\`${k}\``), `README documents ${k} (${f})`);
  }
  for (const name of trainTaskNames()) {
    const task = await getTrainTask(name);
    assert.ok(readme.includes(`Task \`${name}\``), `README has a section for task ${name}`);
    for (const k of Object.keys(task.options)) {
      if (k === 'config' || k === 'help') continue;
      assert.ok(readme.includes(`\`${k}\``), `README documents --${k} of task ${name}`);
    }
  }
  const stories = JSON.parse(readFileSync(join('configs', 'gpt-stories.json'), 'utf8')) as Record<
    string,
    string | number
  >;
  const gpt = await getTrainTask('gpt');
  for (const [k, spec] of Object.entries(gpt.options)) {
    const m = /\(default ([\w.-]+)\)/.exec(spec.help);
    if (!m || stories[k] === undefined) continue;
    assert.equal(String(stories[k]), String(Number(m[1]) || m[1]), `gpt-stories.json ${k} is the default job's`);
  }
});
