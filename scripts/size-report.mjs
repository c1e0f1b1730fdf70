#!/usr/bin/env node
// Size is a feature: code lines (non-blank, non-comment) per file and per folder of src/, the op count
// (entries of the SAVES table in ops/saves.ts, which is typed Record<OpCode, ...>) and the flag count
// (environment variables read in core/config.ts). Exits 1 when a file is over the line limit.
// Usage: node scripts/size-report.mjs [rootDir]   (rootDir defaults to src/)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import process from 'node:process';

/** Most code lines a source file may have; past it, split the file along a real seam. */
const MAX_FILE_LINES = 500;
/** Files above this many code lines are marked as getting close. */
const WARN_FILE_LINES = 400;

/** Source files under `dir`, sorted. */
function listSources(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(?:ts|mts|cts|tsx|js|mjs|wgsl)$/.test(name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * Counts lines that hold code: not blank and not only comment. Block comments are tracked across lines;
 * a line with code and a trailing comment counts.
 */
function codeLines(text) {
  let count = 0;
  let inBlock = false;
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    let hasCode = false;
    while (line.length) {
      if (inBlock) {
        const end = line.indexOf('*/');
        if (end < 0) {
          line = '';
          break;
        }
        inBlock = false;
        line = line.slice(end + 2).trim();
      } else if (line.startsWith('//')) {
        line = '';
      } else if (line.startsWith('/*')) {
        inBlock = true;
        line = line.slice(2);
      } else {
        hasCode = true;
        // A block comment opened after code may run on past this line (strings blanked first).
        const code = line.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, '""');
        const open = code.lastIndexOf('/*');
        const lineComment = code.indexOf('//');
        if (open > 0 && code.indexOf('*/', open + 2) < 0 && (lineComment < 0 || lineComment > open)) inBlock = true;
        line = '';
      }
    }
    if (hasCode) count++;
  }
  return count;
}

/** Top-level keys of the object literal assigned to `name` in `text` (e.g. the SAVES table). */
function tableKeys(text, name) {
  const start = new RegExp(`\\b${name}\\b[^=]*=\\s*\\{`).exec(text);
  if (!start) return null;
  const body = text.slice(start.index + start[0].length).replace(/\/\/.*$/gm, '');
  const keys = [];
  let depth = 0;
  for (const m of body.matchAll(/[{}[\]()]|(['"]?)([A-Za-z_$][\w$]*)\1\s*:/g)) {
    const t = m[0];
    if (t === '{' || t === '[' || t === '(') depth++;
    else if (t === '}' || t === ']' || t === ')') {
      if (depth === 0) break;
      depth--;
    } else if (depth === 0) keys.push(m[2]);
  }
  return keys;
}

/** String members of the type alias `name` in `text` (e.g. the ViewOp union). */
function unionMembers(text, name) {
  const m = new RegExp(`\\btype\\s+${name}\\s*=([^;]*);`).exec(text);
  return m ? [...m[1].replace(/\/\/.*$/gm, '').matchAll(/'([^']+)'/g)].map((x) => x[1]) : null;
}

function readIf(path) {
  return existsSync(path) ? readFileSync(path, 'utf8') : null;
}

function main() {
  const root = resolve(process.argv[2] ?? 'src');
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    console.error(`size-report: ${root} is not a directory`);
    process.exit(2);
  }
  const rows = listSources(root).map((f) => {
    const rel = relative(root, f).split(sep).join('/');
    const slash = rel.lastIndexOf('/');
    return { rel, folder: slash < 0 ? '.' : rel.slice(0, slash), lines: codeLines(readFileSync(f, 'utf8')) };
  });
  const folders = new Map();
  for (const r of rows) {
    const f = folders.get(r.folder) ?? { files: 0, lines: 0, rows: [] };
    f.files++;
    f.lines += r.lines;
    f.rows.push(r);
    folders.set(r.folder, f);
  }
  const total = rows.reduce((s, r) => s + r.lines, 0);
  const width = Math.max(24, ...rows.map((r) => r.rel.length + 2));
  const num = (n) => String(n).padStart(6);
  const rootName = relative(process.cwd(), root).split(sep).join('/') || '.';
  console.log(`${'folder (files) / file'.padEnd(width)}${num('code')}`);
  for (const [folder, f] of [...folders].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    console.log(
      `${`${folder === '.' ? rootName : `${rootName}/${folder}`}/ (${f.files})`.padEnd(width)}${num(f.lines)}`,
    );
    for (const r of f.rows) {
      const mark = r.lines > MAX_FILE_LINES ? '  <- over limit' : r.lines > WARN_FILE_LINES ? '  (near limit)' : '';
      console.log(`  ${r.rel.slice(r.rel.lastIndexOf('/') + 1)}`.padEnd(width) + num(r.lines) + mark);
    }
  }
  console.log(`${`total (${rows.length} files)`.padEnd(width)}${num(total)}`);

  const saves = readIf(join(root, 'ops', 'saves.ts'));
  const ops = saves ? tableKeys(saves, 'SAVES') : null;
  const opcodes = readIf(join(root, 'ops', 'opcodes.ts'));
  const views = opcodes ? unionMembers(opcodes, 'ViewOp') : null;
  const opLine = ops
    ? `ops: ${ops.length}${views ? ` (${ops.length - views.length} kernel + ${views.length} view)` : ''}`
    : 'ops: n/a (no SAVES table in ops/saves.ts)';
  const config = readIf(join(root, 'core', 'config.ts'));
  const flags = config
    ? [...new Set([...config.matchAll(/\b[A-Za-z]*[eE]nv\(\s*'([A-Za-z0-9_]+)'/g)].map((m) => m[1]))]
    : null;
  const flagLine = flags ? `flags: ${flags.length} (${flags.join(', ')})` : 'flags: n/a (no core/config.ts)';
  console.log(`${opLine}; ${flagLine}`);

  const over = rows.filter((r) => r.lines > MAX_FILE_LINES);
  if (over.length) {
    for (const r of over) {
      console.error(
        `size-report: ${rootName}/${r.rel} has ${r.lines} code lines (limit ${MAX_FILE_LINES}): split it along a real seam`,
      );
    }
    process.exit(1);
  }
}

main();
