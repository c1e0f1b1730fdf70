// Tests scripts/check-layers.mjs end to end: it runs the script on small fixture trees written to a
// temporary folder and checks what it reports and its exit code.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runScript, tempTree } from './util.js';

/** A fresh temp tree holding `files`. */
const tree = (files: Record<string, string>): string => tempTree('tl-layers-', files);

/** Runs the script on `root`; returns its exit code and combined output. */
const check = (root: string) => runScript('check-layers.mjs', root);

/** A tree that follows every rule, including the things that look like violations but are not. */
const CLEAN: Record<string, string> = {
  'index.ts': "export * from './tensor/tensor.js';\n",
  'core/dtype.ts': "export type DType = 'f32';\n",
  'core/shape.ts': "import type { DType } from './dtype.js';\nexport const s = (d: DType) => d;\n",
  'ops/opcodes.ts': "import type { DType } from '../core/dtype.js';\nexport type Op = DType;\n",
  'backend/backend.ts': "import type { Op } from '../ops/opcodes.js';\nexport type B = Op;\n",
  'backend/nodeWorker.ts': "import { Worker } from 'node:worker_threads';\nexport const W = Worker;\n",
  'backend/cpu/index.ts': "import type { B } from '../backend.js';\nexport type Cpu = B;\n",
  'backend/webgpu/index.ts':
    "import type { B } from '../backend.js';\nexport const load = () => import('./nodeDawn.js');\nexport type G = B;\n",
  'backend/webgpu/nodeDawn.ts': "import 'webgpu';\nexport {};\n",
  // A type-only cycle is erased by the compiler and is fine; so is a dynamic import back up the chain.
  'tensor/tensor.ts':
    "import type { Cpu } from '../backend/cpu/index.js';\nimport type { T2 } from './ops.js';\nexport type T = Cpu | T2;\n",
  'tensor/ops.ts': [
    "import type { T } from './tensor.js';",
    'export type T2 = T | number;',
    '// import { bad } from "../cli/main.js";  (comments are not imports)',
    "const s = `import x from '../cli/main.js'`;",
    'export const r = /from "..\\/cli\\/main.js"/.test(s) ? 4 / 2 : 1;',
    '',
  ].join('\n'),
  'io/files.ts':
    "import { readFileSync } from 'node:fs';\nimport type { T } from '../tensor/tensor.js';\nexport const f = readFileSync;\nexport type F = T;\n",
  'cli/main.ts': "import '../index.js';\nimport { argv } from 'node:process';\nexport const a = argv;\n",
};

describe('check-layers', () => {
  test('a clean tree passes with exit code 0', () => {
    const { code, out } = check(tree(CLEAN));
    assert.equal(code, 0, out);
    assert.match(out, /check-layers: OK \(\d+ files/);
  });

  test('reports an upward import, a cycle and a node: import in tensor/, and exits 1', () => {
    const root = tree({
      ...CLEAN,
      // upward: ops/ may import only core/
      'ops/shapes.ts': "import { x } from '../tensor/util.js';\nexport const y = x;\n",
      'tensor/util.ts': 'export const x = 1;\n',
      // cycle through runtime imports (the export-from closes it)
      'core/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'core/b.ts': "\n\nexport { a as b } from './a.js';\n",
      // browser safety: tensor/ must run in a browser
      'tensor/file.ts': "// loads things\nimport { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n",
    });
    const { code, out } = check(root);
    assert.equal(code, 1, out);
    assert.match(out, /ops\/shapes\.ts:1: layer: ops\/ may not import tensor\/ \(tensor\/util\.ts\)/);
    assert.match(out, /core\/a\.ts:1: import cycle: core\/a\.ts -> core\/b\.ts -> core\/a\.ts/);
    assert.match(out, /tensor\/file\.ts:2: browser safety: Node builtin 'node:fs'/);
    assert.match(out, /3 violation\(s\)/);
  });

  test('backend subfolders never import each other, even dynamically', () => {
    const root = tree({
      ...CLEAN,
      'backend/webgpu/fallback.ts': "export const cpu = () => import('../cpu/index.js');\n",
    });
    const { code, out } = check(root);
    assert.equal(code, 1, out);
    assert.match(out, /backend\/webgpu\/fallback\.ts:1: layer: backend\/webgpu\/ imports backend\/cpu\/index\.ts/);
  });

  test('reports bare node builtins, unknown packages and unresolvable imports', () => {
    const root = tree({
      ...CLEAN,
      'nn/linear.ts':
        "import { join } from 'path';\nimport { z } from 'zod';\nimport { q } from './missing.js';\nexport const l = [join, z, q];\n",
    });
    const { code, out } = check(root);
    assert.equal(code, 1, out);
    assert.match(out, /nn\/linear\.ts:1: browser safety: Node builtin 'path'/);
    assert.match(out, /nn\/linear\.ts:2: package 'zod' is not a runtime dependency/);
    assert.match(out, /nn\/linear\.ts:3: cannot resolve '\.\/missing\.js'/);
  });

  test('nn and optim do not import each other; root files do not import cli', () => {
    const root = tree({
      ...CLEAN,
      'nn/module.ts': 'export const m = 1;\n',
      'optim/sgd.ts': "import { m } from '../nn/module.js';\nexport const s = m;\n",
      'index.ts': "export * from './cli/main.js';\n",
    });
    const { code, out } = check(root);
    assert.equal(code, 1, out);
    assert.match(out, /optim\/sgd\.ts:1: layer: optim\/ may not import nn\//);
    assert.match(out, /index\.ts:1: layer: root files may not import cli\//);
  });
});
