// ESLint flat config: typescript-eslint's type-aware recommended rules, tuned for numeric/kernel code,
// plus the project rules (no focused tests; only core/config.ts reads the environment; only cli/ reads
// argv or exits). Import layering and cycles are checked by scripts/check-layers.mjs, not here.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Node globals for the plain-JS files (scripts/, bin/, this file), which are not type-checked. */
const NODE_GLOBALS = Object.fromEntries(
  [
    'process', 'console', 'Buffer', 'URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'setTimeout',
    'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'queueMicrotask', 'structuredClone',
    'performance', 'AbortController', 'SharedArrayBuffer', 'WebAssembly', 'fetch',
  ].map((name) => [name, 'readonly']),
); // prettier-ignore

/** Names of the node:test functions (and their `t.test` form) that must never be focused. */
const TEST_FNS = '/^(test|it|describe|suite)$/';

export default defineConfig(
  {
    // wasm/: AssemblyScript kernel sources (their own compiler checks them; prettier formats them).
    ignores: ['dist/', 'node_modules/', '.gpu/', 'runs/', 'coverage/', 'test/fixtures/', 'wasm/'],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // Promises: the bugs that cost a day (unawaited device reads, async callbacks nobody awaits).
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test()/describe() return promises the runner tracks itself.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'skip', 'todo'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // A backend method may be async by interface without awaiting anything (the CPU backend's read()).
      '@typescript-eslint/require-await': 'off',

      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // Types are imported with `import type` (verbatimModuleSyntax keeps anything else as a runtime import).
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'separate-type-imports', disallowTypeAnnotations: false },
      ],
      '@typescript-eslint/consistent-type-exports': 'error',
      '@typescript-eslint/no-import-type-side-effects': 'error',

      // Numeric code: noUncheckedIndexedAccess makes `a[i]!` the normal way to read a typed array or
      // shape in a kernel loop, and numbers belong in messages.
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowAny: false, allowRegExp: false },
      ],
      '@typescript-eslint/restrict-plus-operands': ['error', { allowNumberAndString: true }],
      'no-bitwise': 'off',
      'no-loss-of-precision': 'error',
      'no-constant-condition': ['error', { checkLoops: 'allExceptWhileTrue' }],
      'no-empty': ['error', { allowEmptyCatch: true }],

      eqeqeq: ['error', 'smart'],
      'prefer-const': ['error', { destructuring: 'all' }],
      'no-var': 'error',

      // No focused tests: test.only / describe.only / it.only, or an { only: true } option.
      'no-restricted-syntax': [
        'error',
        {
          selector: `MemberExpression[object.name=${TEST_FNS}][property.name='only']`,
          message: 'Focused test: remove .only before committing.',
        },
        {
          selector: `MemberExpression[object.property.name=${TEST_FNS}][property.name='only']`,
          message: 'Focused test: remove .only before committing.',
        },
        {
          selector: `CallExpression[callee.name=${TEST_FNS}] > ObjectExpression > Property[key.name='only']`,
          message: 'Focused test: remove the `only` option before committing.',
        },
        {
          selector: `CallExpression[callee.property.name=${TEST_FNS}] > ObjectExpression > Property[key.name='only']`,
          message: 'Focused test: remove the `only` option before committing.',
        },
      ],
    },
  },
  {
    // The library: core/config.ts is the only reader of the environment; cli/ the only reader of argv
    // and the only code that may end the process.
    files: ['src/**/*.ts'],
    ignores: ['src/core/config.ts', 'src/cli/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read configuration through core/config.ts.' },
        { object: 'process', property: 'argv', message: 'Only cli/ reads argv.' },
        { object: 'process', property: 'exit', message: 'Only cli/ ends the process; throw an error instead.' },
      ],
    },
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read configuration through core/config.ts.' },
      ],
    },
  },
  {
    files: ['src/core/config.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'argv', message: 'Only cli/ reads argv.' },
        { object: 'process', property: 'exit', message: 'Only cli/ ends the process; throw an error instead.' },
      ],
    },
  },
  {
    // Tests and benchmarks may print shapes and index tuples straight into messages (`[${shape}]`);
    // library code formats them with fmtShape.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowArray: true, allowAny: false },
      ],
    },
  },
  {
    // Plain JS (scripts/*.mjs, bin/*.js, this file): not in the TypeScript project, so no type-aware rules.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'module',
      globals: NODE_GLOBALS,
    },
    rules: {
      ...tseslint.configs.disableTypeChecked.rules,
      '@typescript-eslint/consistent-type-exports': 'off',
    },
  },
);
