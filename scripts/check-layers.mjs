#!/usr/bin/env node
// Enforces tensorloom's import rules on src/: the layer table below, no import cycles between files,
// and browser safety (Node builtins only where Node-only code lives). Plain Node ESM, no dependencies.
// Usage: node scripts/check-layers.mjs [rootDir]   (rootDir defaults to src/)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import process from 'node:process';

// ---------------------------------------------------------------------------------------------------
// The layer table. Each unit may import itself and the units listed (imports point down only).
// Units are the folders under src/, except that src/backend/ is split in two:
//   'backend'    the files directly in src/backend/ (backend.ts: the interface + registry, node*.ts helpers)
//   'backend/*'  each subfolder of src/backend/ (cpu/, webgpu/, ...); a subfolder never imports another one
//   '.'          files directly in src/ (index.ts): everything except cli
// ---------------------------------------------------------------------------------------------------
const BELOW_TENSOR = ['backend', 'backend/*', 'ops', 'core'];
const LAYERS = {
  core: [],
  ops: ['core'],
  backend: ['ops', 'core'],
  'backend/*': ['backend', 'ops', 'core'],
  tensor: [...BELOW_TENSOR],
  autograd: ['tensor', ...BELOW_TENSOR],
  io: ['autograd', 'tensor', ...BELOW_TENSOR],
  data: ['io', 'autograd', 'tensor', ...BELOW_TENSOR],
  nn: ['autograd', 'tensor', ...BELOW_TENSOR],
  optim: ['autograd', 'tensor', ...BELOW_TENSOR],
  train: ['nn', 'optim', 'data', 'io', 'autograd', 'tensor', ...BELOW_TENSOR],
  models: ['train', 'nn', 'optim', 'data', 'io', 'autograd', 'tensor', ...BELOW_TENSOR],
  cli: ['.', 'models', 'train', 'nn', 'optim', 'data', 'io', 'autograd', 'tensor', ...BELOW_TENSOR],
  '.': ['models', 'train', 'nn', 'optim', 'data', 'io', 'autograd', 'tensor', ...BELOW_TENSOR],
};

// Browser safety: where Node builtins ('node:fs', 'fs', 'worker_threads', ...) and Node-only packages may
// be imported at runtime. Folders are relative to the root; NODE_FILE matches file names under backend/
// (the lazily loaded Node WebGPU binding and Node worker helpers). Type-only imports are erased and exempt.
const NODE_FOLDERS = ['cli', 'io', 'data'];
const NODE_FILE = /^node[^/]*\.ts$/;

// Bare (package) specifiers src/ may import at runtime. The core has no runtime dependencies; the only
// package is the Node WebGPU binding (Dawn), which is Node-only and loaded lazily.
const RUNTIME_PACKAGES = { webgpu: 'node' };

const LAYER_FOLDERS = Object.keys(LAYERS)
  .filter((k) => k !== '.' && !k.includes('/'))
  .join(', ');
const SOURCE_EXT = /\.(?:ts|mts|cts|tsx)$/;

/** Lists source files under `dir`, sorted, skipping .d.ts files. */
function listSources(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (SOURCE_EXT.test(name) && !name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

// Keywords after which a `/` starts a regular expression rather than a division.
const REGEX_AFTER_WORD = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else',
  'yield', 'await',
]); // prettier-ignore

/**
 * Splits TypeScript source into tokens (words, string literals, punctuation) with line numbers, skipping
 * comments, template-literal text and regular expressions. Good enough to find import declarations.
 */
function tokenize(src) {
  const tokens = [];
  let i = 0;
  let line = 1;
  const n = src.length;
  const braces = []; // for each open `{`: true if it opened a template `${`
  const prevSignificant = () => tokens[tokens.length - 1];
  const regexAllowed = () => {
    const t = prevSignificant();
    if (!t) return true;
    if (t.kind === 'str' || t.kind === 'num') return false;
    if (t.kind === 'word') return REGEX_AFTER_WORD.has(t.value);
    return !/^[)\]}]$/.test(t.value);
  };
  const skipTemplate = () => {
    // i is just after a backtick or a template `}`; skip to the closing backtick or a `${`.
    while (i < n) {
      const c = src[i];
      if (c === '\\') i += 2;
      else if (c === '`') {
        i++;
        return;
      } else if (c === '$' && src[i + 1] === '{') {
        i += 2;
        braces.push(true);
        return;
      } else {
        if (c === '\n') line++;
        i++;
      }
    }
  };
  while (i < n) {
    const c = src[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let j = i; j < stop; j++) if (src[j] === '\n') line++;
      i = stop;
    } else if (c === "'" || c === '"') {
      const startLine = line;
      let j = i + 1;
      let value = '';
      while (j < n && src[j] !== c && src[j] !== '\n') {
        if (src[j] === '\\') {
          value += src[j + 1] ?? '';
          j += 2;
        } else value += src[j++];
      }
      tokens.push({ kind: 'str', value, line: startLine });
      i = j + 1;
    } else if (c === '`') {
      i++;
      tokens.push({ kind: 'punct', value: '`', line });
      skipTemplate();
    } else if (c === '{') {
      braces.push(false);
      tokens.push({ kind: 'punct', value: '{', line });
      i++;
    } else if (c === '}') {
      const isTemplate = braces.pop();
      i++;
      if (isTemplate) skipTemplate();
      else tokens.push({ kind: 'punct', value: '}', line });
    } else if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < n && src[j] !== '\n') {
        const d = src[j];
        if (d === '\\') j++;
        else if (d === '[') inClass = true;
        else if (d === ']') inClass = false;
        else if (d === '/' && !inClass) break;
        j++;
      }
      j++;
      while (j < n && /[a-z]/i.test(src[j])) j++;
      tokens.push({ kind: 'punct', value: '/regex/', line });
      i = j;
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$]/.test(src[j])) j++;
      tokens.push({ kind: 'word', value: src.slice(i, j), line });
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w.]/.test(src[j])) j++;
      tokens.push({ kind: 'num', value: src.slice(i, j), line });
      i = j;
    } else {
      tokens.push({ kind: 'punct', value: c, line });
      i++;
    }
  }
  return tokens;
}

/**
 * Finds the module specifiers of a file: static imports/re-exports and dynamic `import('...')`.
 * Each is { spec, line, typeOnly, dynamic }. `import type` / `export type ... from` and `import('x')`
 * used as a type are typeOnly (erased by the compiler).
 */
function findImports(src) {
  const toks = tokenize(src);
  const out = [];
  const at = (k) => toks[k] ?? { kind: 'eof', value: '', line: 0 };
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k];
    if (t.kind !== 'word' || (t.value !== 'import' && t.value !== 'export')) continue;
    const prev = at(k - 1);
    if (prev.value === '.' || prev.value === '?.') continue; // a member named import/export
    if (t.value === 'import' && at(k + 1).value === '(') {
      const s = at(k + 2);
      if (s.kind !== 'str') continue; // computed dynamic import: cannot check
      const after = at(k + 4);
      const usedAsType =
        prev.value === 'typeof' ||
        (after.value === '.' && at(k + 5).kind === 'word' && !/^(then|catch|finally)$/.test(at(k + 5).value));
      out.push({ spec: s.value, line: t.line, typeOnly: usedAsType, dynamic: true });
      continue;
    }
    if (t.value === 'import' && at(k + 1).value === '.') continue; // import.meta
    if (t.value === 'import' && at(k + 1).kind === 'str') {
      out.push({ spec: at(k + 1).value, line: t.line, typeOnly: false, dynamic: false }); // import 'x'
      continue;
    }
    // import/export clause ... from 'x': the clause holds only words, braces, commas, `*` and `as`.
    let j = k + 1;
    let typeOnly = false;
    if (at(j).value === 'type' && at(j + 1).value !== 'from' && at(j + 1).value !== ',') {
      typeOnly = true;
      j++;
    }
    if (t.value === 'export' && at(j).value !== '{' && at(j).value !== '*') continue; // export const ...
    let depth = 0;
    for (; j < toks.length; j++) {
      const u = at(j);
      if (u.value === '{') depth++;
      else if (u.value === '}') depth--;
      else if (depth === 0 && u.value === 'from') break;
      else if (u.kind === 'word' || u.value === ',' || u.value === '*') continue;
      else {
        j = -1;
        break;
      }
      if (depth < 0) {
        j = -1;
        break;
      }
    }
    if (j < 0 || at(j).value !== 'from' || at(j + 1).kind !== 'str') continue;
    out.push({ spec: at(j + 1).value, line: t.line, typeOnly, dynamic: false });
  }
  return out;
}

/** Resolves a relative specifier from `fromFile` to an existing source file, or null. */
function resolveRelative(fromFile, spec) {
  const base = resolve(dirname(fromFile), spec);
  const candidates = [base];
  const m = /\.(m|c)?js$/.exec(base);
  if (m) candidates.push(base.slice(0, -m[0].length) + `.${m[1] ?? ''}ts`, base.slice(0, -m[0].length) + '.tsx');
  candidates.push(`${base}.ts`, `${base}.tsx`, join(base, 'index.ts'));
  for (const c of candidates) {
    try {
      if (statSync(c).isFile()) return c;
    } catch {
      // not this candidate
    }
  }
  return null;
}

/** The unit (layer-table key) of a path relative to the root, e.g. 'tensor', 'backend', 'backend/*', '.'. */
function unitOf(rel) {
  const parts = rel.split('/');
  if (parts.length === 1) return { unit: '.', group: '.' };
  if (parts[0] === 'backend' && parts.length > 2) return { unit: 'backend/*', group: `backend/${parts[1]}` };
  return { unit: parts[0], group: parts[0] };
}

/** True when `spec` names a Node builtin module. */
function isBuiltin(spec) {
  return spec.startsWith('node:') || builtinModules.includes(spec) || builtinModules.includes(spec.split('/')[0]);
}

/** The package name of a bare specifier ('@scope/pkg/sub' -> '@scope/pkg'). */
function packageName(spec) {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** True when `rel` (relative to the root) may import Node builtins at runtime. */
function nodeAllowed(rel) {
  const parts = rel.split('/');
  if (NODE_FOLDERS.includes(parts[0])) return true;
  return parts[0] === 'backend' && NODE_FILE.test(parts[parts.length - 1]);
}

/** Checks the layer rule for one resolved import; returns an error message or null. */
function layerViolation(fromRel, toRel) {
  const from = unitOf(fromRel);
  const to = unitOf(toRel);
  if (from.group === to.group) return null;
  if (!(to.unit in LAYERS)) return `imports ${toRel}, which is in unknown layer folder '${toRel.split('/')[0]}/'`;
  if (from.unit === 'backend/*' && to.unit === 'backend/*') {
    return `${from.group}/ imports ${toRel}: backend subfolders never import each other`;
  }
  if (LAYERS[from.unit].includes(to.unit)) return null;
  const allowed = LAYERS[from.unit].length ? LAYERS[from.unit].join(', ') : 'nothing';
  const name = (g) => (g === '.' ? 'root files' : `${g}/`);
  return `${name(from.group)} may not import ${name(to.group)} (${toRel}); ${from.unit} may import: ${allowed}`;
}

/** Finds cycles in `graph` (Map file -> Map of imported files); one cycle per back edge, deduplicated. */
function findCycles(graph) {
  const cycles = [];
  const seen = new Set();
  const state = new Map(); // 1: on stack, 2: done
  const stack = [];
  const visit = (v) => {
    state.set(v, 1);
    stack.push(v);
    for (const w of [...(graph.get(v)?.keys() ?? [])].sort()) {
      const s = state.get(w);
      if (s === 1) {
        const cyc = stack.slice(stack.indexOf(w));
        const min = cyc.reduce((a, b, i) => (b < cyc[a] ? i : a), 0);
        const norm = [...cyc.slice(min), ...cyc.slice(0, min)];
        const key = norm.join('\0');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...norm, norm[0]]);
        }
      } else if (s === undefined) visit(w);
    }
    stack.pop();
    state.set(v, 2);
  };
  for (const v of [...graph.keys()].sort()) if (!state.has(v)) visit(v);
  return cycles;
}

/** Runs every check on the tree at `root`; returns { files, edges, errors }. */
function check(root) {
  const files = listSources(root);
  const errors = [];
  const graph = new Map();
  let edges = 0;
  const relOf = (f) => relative(root, f).split(sep).join('/');
  const display = (f) => relative(process.cwd(), f).split(sep).join('/') || f;
  for (const file of files) {
    const rel = relOf(file);
    const deps = new Map(); // runtime static imports: target file -> line of the first one
    graph.set(file, deps);
    const known = unitOf(rel).unit in LAYERS;
    if (!known) {
      errors.push(`${display(file)}:1: layer: unknown layer folder '${rel.split('/')[0]}/' (known: ${LAYER_FOLDERS})`);
    }
    for (const imp of findImports(readFileSync(file, 'utf8'))) {
      const where = `${display(file)}:${imp.line}`;
      if (imp.spec.startsWith('.') || imp.spec.startsWith('/')) {
        const target = resolveRelative(file, imp.spec);
        if (!target) {
          errors.push(`${where}: cannot resolve '${imp.spec}'`);
          continue;
        }
        const toRel = relOf(target);
        if (toRel.startsWith('../') || toRel === '..') {
          errors.push(`${where}: '${imp.spec}' imports a file outside ${display(root)}/`);
          continue;
        }
        edges++;
        const v = known ? layerViolation(rel, toRel) : null;
        if (v) errors.push(`${where}: layer: ${v}`);
        if (!imp.typeOnly && !imp.dynamic && !deps.has(target)) deps.set(target, imp.line);
      } else if (!imp.typeOnly) {
        if (isBuiltin(imp.spec)) {
          if (!nodeAllowed(rel)) {
            errors.push(
              `${where}: browser safety: Node builtin '${imp.spec}' outside ${NODE_FOLDERS.map((f) => `${f}/`).join(', ')} and backend/**/node*.ts`,
            );
          }
        } else {
          const pkg = packageName(imp.spec);
          const kind = RUNTIME_PACKAGES[pkg];
          if (kind === undefined) {
            errors.push(
              `${where}: package '${pkg}' is not a runtime dependency (allowed: ${Object.keys(RUNTIME_PACKAGES).join(', ')})`,
            );
          } else if (kind === 'node' && !nodeAllowed(rel)) {
            errors.push(
              `${where}: browser safety: Node-only package '${pkg}' outside ${NODE_FOLDERS.map((f) => `${f}/`).join(', ')} and backend/**/node*.ts`,
            );
          }
        }
      }
    }
  }
  for (const cyc of findCycles(graph)) {
    const line = graph.get(cyc[0]).get(cyc[1]);
    errors.push(`${display(cyc[0])}:${line}: import cycle: ${cyc.map((f) => relOf(f)).join(' -> ')}`);
  }
  return { files: files.length, edges, errors };
}

function main() {
  const root = resolve(process.argv[2] ?? 'src');
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) {
    console.error(`check-layers: ${root} is not a directory`);
    process.exit(2);
  }
  const { files, edges, errors } = check(root);
  if (errors.length) {
    for (const e of errors) console.error(e);
    console.error(`check-layers: ${errors.length} violation(s) in ${files} files`);
    process.exit(1);
  }
  console.log(
    `check-layers: OK (${files} files, ${edges} internal imports, no cycles, layers and browser safety hold) [${basename(root)}/]`,
  );
}

main();
