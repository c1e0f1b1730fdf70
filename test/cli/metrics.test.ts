// Metrics files: JSON lines and CSV, each record on disk as soon as it is written, a resumed run keeping
// only the records up to its checkpoint, and the files a short `loom train` run leaves behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { openMetrics } from '../../src/cli/metrics.js';

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tl-metrics-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'JSONL: one object per line, on disk before close; a resume drops the records past the checkpoint and torn lines',
  withDir((dir) => {
    const file = join(dir, 'sub', 'm.jsonl');
    const m = openMetrics(file);
    m.write({ step: 1, loss: 2.5 });
    assert.equal(readFileSync(file, 'utf8'), '{"step":1,"loss":2.5}\n', 'written through at once');
    m.write({ step: 2, loss: 2.25, note: 'a "quoted", text' });
    m.close();
    assert.throws(() => m.write({ step: 3 }), /metrics file .*m\.jsonl is closed/);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.deepEqual(JSON.parse(lines[1]!), { step: 2, loss: 2.25, note: 'a "quoted", text' });

    writeFileSync(file, `${readFileSync(file, 'utf8')}{"step":3,"loss":2}\n{"step":4,"lo`);
    const r = openMetrics(file, { keep: (rec) => Number(rec.step) <= 2 });
    r.write({ step: 3, loss: 1.5 });
    r.close();
    const steps = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(steps, [1, 2, 3]);
    // without keep, an existing file is replaced
    openMetrics(file).close();
    assert.equal(readFileSync(file, 'utf8'), '');
  }),
);

test(
  'CSV: a header, empty cells for missing values, quoting; unknown columns and extensions are errors',
  withDir((dir) => {
    const file = join(dir, 'm.csv');
    const m = openMetrics(file, { columns: ['kind', 'step', 'loss', 'val_loss'] });
    m.write({ kind: 'step', step: 1, loss: 3 });
    m.write({ kind: 'eval', step: 1, val_loss: 2.75 });
    m.write({ kind: 'a,"b"', step: 2, loss: null });
    assert.throws(
      () => m.write({ kind: 'step', step: 3, acc: 1 }),
      /column 'acc' is not among kind,step,loss,val_loss/,
    );
    m.close();
    assert.equal(readFileSync(file, 'utf8'), 'kind,step,loss,val_loss\nstep,1,3,\neval,1,,2.75\n"a,""b""",2,,\n');
    // the header comes from the first record when no columns are given
    const plain = join(dir, 'p.csv');
    const p = openMetrics(plain);
    p.write({ step: 1, loss: 2 });
    p.write({ loss: 1 });
    p.close();
    assert.equal(readFileSync(plain, 'utf8'), 'step,loss\n1,2\n,1\n');
    // resume: rows past the checkpoint are dropped, the header is kept once
    const r = openMetrics(file, { columns: ['kind', 'step', 'loss', 'val_loss'], keep: (rec) => rec.kind === 'step' });
    r.write({ kind: 'step', step: 2, loss: 1 });
    r.close();
    assert.equal(readFileSync(file, 'utf8'), 'kind,step,loss,val_loss\nstep,1,3,\nstep,2,1,\n');
    assert.throws(
      () => openMetrics(file, { columns: ['step', 'acc'], keep: () => true }),
      /m\.csv has columns kind,step,loss,val_loss but this run writes step,acc/,
    );
    assert.throws(
      () => openMetrics(join(dir, 'm.txt')),
      /--metrics: .*m\.txt must end in \.jsonl .* or \.csv, got '\.txt'/,
    );
  }),
);

test(
  'a short loom train run writes a CSV with one row per step and eval, matching the log',
  withDir(async (dir) => {
    const lines: string[] = [];
    const file = join(dir, 'metrics.csv');
    const args = ['--device', 'cpu', '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '16'];
    const code = await main(
      [
        'train',
        ...args,
        '--batch-size',
        '4',
        '--stories',
        '200',
        '--steps',
        '4',
        '--warmup-steps',
        '1',
        '--eval-every',
        '2',
        '--eval-batches',
        '2',
        '--sample-chars',
        '0',
        '--out',
        join(dir, 'run'),
        '--metrics',
        file,
      ],
      (s) => lines.push(s),
    );
    assert.equal(code, 0, lines.join('\n'));
    const [header, ...rows] = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(header, 'kind,step,loss,val_loss,grad_norm,lr,ms,tokens_per_sec,elapsed_s');
    const cells = rows.map((r) => r.split(','));
    assert.deepEqual(
      cells.map((c) => `${c[0]}@${c[1]}`),
      ['step@1', 'step@2', 'eval@2', 'step@3', 'step@4', 'eval@4'],
    );
    const logged = lines.filter((l) => l.startsWith('step ')).map((l) => /loss ([\d.]+) \| norm ([\d.]+)/.exec(l)!);
    cells
      .filter((c) => c[0] === 'step')
      .forEach((c, i) => {
        assert.equal(Number(c[2]).toFixed(4), logged[i]![1], `loss of step ${i + 1}`);
        assert.equal(Number(c[4]).toFixed(3), logged[i]![2], `grad norm of step ${i + 1}`);
        assert.ok(Number(c[7]) > 0 && Number(c[6]) > 0, 'timings');
      });
    const evals = lines.filter((l) => l.startsWith('eval at')).map((l) => /val loss ([\d.]+)/.exec(l)![1]);
    assert.deepEqual(
      cells.filter((c) => c[0] === 'eval').map((c) => Number(c[3]).toFixed(4)),
      evals,
    );
    assert.ok(lines.includes(`metrics: ${file}`));
  }),
);
