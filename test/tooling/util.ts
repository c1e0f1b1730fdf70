// Shared fixtures of the tooling tests: source trees written to a temporary folder (removed after the
// file's tests) and a runner for the repo's scripts on such a tree.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

const tmpRoots: string[] = [];
after(() => {
  for (const d of tmpRoots) rmSync(d, { recursive: true, force: true });
});

/** Writes `files` (path relative to the tree root -> source) into a fresh temp `src/` tree; returns its root. */
export function tempTree(prefix: string, files: Record<string, string>): string {
  const root = join(mkdtempSync(join(tmpdir(), prefix)), 'src');
  tmpRoots.push(dirname(root));
  for (const [rel, text] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  return root;
}

/** Runs `scripts/<name>` on `root`; returns its exit code and combined output. */
export function runScript(name: string, root: string): { code: number | null; out: string } {
  const script = fileURLToPath(new URL(`../../scripts/${name}`, import.meta.url));
  const r = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}
