#!/usr/bin/env node
// Runs the unit tests with Node's built-in runner (TypeScript through tsx). The test files are found,
// not listed: every test/**/*.test.ts, sorted. Arguments that name files or folders narrow the run to
// those; other arguments (e.g. --test-name-pattern=matmul) go to node. The environment (TL_*, CI, ...)
// passes through unchanged. Usage: node scripts/run-tests.mjs [files/dirs...] [node test flags...]
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import process from 'node:process';

const TEST_DIR = 'test';
const TEST_FILE = /\.test\.ts$/;
/** Test files run in parallel (one process each); the CI machines have 2 cores. */
const CONCURRENCY = 2;

/** Test files under `dir` (or `dir` itself when it is a file), sorted, as forward-slash paths. */
function findTests(dir) {
  if (statSync(dir).isFile()) return [dir];
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      if (name === 'node_modules' || name === 'fixtures') continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (TEST_FILE.test(name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function main() {
  const args = process.argv.slice(2);
  const targets = [];
  const passthrough = [];
  const unknown = [];
  args.forEach((a, i) => {
    const prev = args[i - 1];
    if (a.startsWith('-')) passthrough.push(a);
    else if (existsSync(a)) targets.push(a);
    else if (prev?.startsWith('-') && !prev.includes('=')) {
      passthrough.push(a); // the value of a flag, as in `--test-name-pattern matmul`
    } else unknown.push(a);
  });
  const roots = targets.length ? targets : existsSync(TEST_DIR) ? [TEST_DIR] : [];
  const files = [...new Set(roots.flatMap(findTests).map((f) => relative('.', f).split(sep).join('/')))].sort();
  if (unknown.length) {
    console.error(`run-tests: no such file or folder: ${unknown.join(', ')}`);
    process.exit(2);
  }
  if (!files.length) {
    console.error(`run-tests: no test files (*.test.ts) found under ${roots.join(', ') || TEST_DIR}`);
    process.exit(1);
  }
  const nodeArgs = [
    '--import',
    'tsx',
    '--test',
    ...(passthrough.some((a) => a.startsWith('--test-reporter')) ? [] : ['--test-reporter=spec']),
    `--test-concurrency=${CONCURRENCY}`,
    ...passthrough,
    ...files,
  ];
  const child = spawn(process.execPath, nodeArgs, { stdio: 'inherit', env: process.env });
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => child.kill(sig));
  }
  child.on('exit', (code, signal) => {
    if (signal) {
      console.error(`run-tests: test runner killed by ${signal}`);
      process.exit(1);
    }
    process.exit(code ?? 1);
  });
}

main();
