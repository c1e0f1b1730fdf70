// Tests scripts/size-report.mjs on a small fixture tree: code-line counting, the op and flag counts,
// and the exit code when a file is over the 500-line limit.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runScript, tempTree } from './util.js';

/** A fresh temp tree holding `files`. */
const tree = (files: Record<string, string>): string => tempTree('tl-size-', files);

/** Runs the script on `root`; returns its exit code and combined output. */
const report = (root: string) => runScript('size-report.mjs', root);

const BASE: Record<string, string> = {
  'ops/opcodes.ts': "export type ViewOp = 'reshape' | 'permute'; // views\nexport type KernelOp = 'add' | 'exp';\n",
  'ops/saves.ts': [
    '// what each op saves',
    'export const SAVES: Record<string, { inputs: number[] } | null> = {',
    '  add: null, exp: { inputs: [0] }, // kernels',
    "  reshape: null, 'permute': null,",
    '}; // prettier-ignore',
    '',
  ].join('\n'),
  'core/config.ts': [
    'function env(name: string) { return name; }',
    'function intEnv(name: string) { return Number(env(name)); }',
    "export const config = { a: intEnv('TL_DEBUG'), b: env('TL_DEVICE'), c: env('TL_DEVICE') };",
    '',
  ].join('\n'),
  'core/lines.ts': [
    '// header comment',
    '',
    '/**',
    ' * doc comment',
    ' */',
    'export const a = 1; // trailing comment: still code',
    "export const glob = 'src/**/*.ts';",
    '/* one-line block */ export const b = 2;',
    'export const c = 3; /* opens',
    '   and closes */',
    '',
  ].join('\n'),
};

describe('size-report', () => {
  test('counts code lines, ops and flags', () => {
    const { code, out } = report(tree(BASE));
    assert.equal(code, 0, out);
    assert.match(out, /\n {2}lines\.ts +4\n/);
    assert.match(out, /ops: 4 \(2 kernel \+ 2 view\)/);
    assert.match(out, /flags: 2 \(TL_DEBUG, TL_DEVICE\)/);
  });

  test('exits 1 and names a file over 500 code lines', () => {
    const big = Array.from({ length: 501 }, (_, i) => `export const v${i} = ${i};`).join('\n');
    const { code, out } = report(tree({ ...BASE, 'nn/big.ts': big }));
    assert.equal(code, 1, out);
    assert.match(out, /nn\/big\.ts has 501 code lines \(limit 500\)/);
  });
});
