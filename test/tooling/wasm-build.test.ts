// The embedded WASM kernels were built from the kernel sources as they are now: the generated module
// records a SHA-256 over every wasm/*.ts (names and bytes), so editing any of them without
// `npm run build:wasm` fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { cpuKernelInfo } from '../../src/backend/cpu/index.js'; // loading it turns on relaxed SIMD in Node 20
import { GEMM_SOURCE_SHA256, GEMM_WASM } from '../../src/backend/cpu/wasm/kernels.generated.js';

test('src/backend/cpu/wasm/kernels.generated.ts is built from the current wasm/*.ts sources', () => {
  const h = createHash('sha256');
  const names = readdirSync('wasm')
    .filter((f) => f.endsWith('.ts'))
    .sort();
  assert.ok(names.includes('gemm.ts') && names.length > 1, `kernel sources found: ${names.join(', ')}`);
  for (const name of names) h.update(`${name}\0`).update(readFileSync(`wasm/${name}`));
  assert.equal(
    GEMM_SOURCE_SHA256,
    h.digest('hex'),
    'a wasm/*.ts source changed since the last build: run npm run build:wasm',
  );
});

test('every embedded variant is a valid module (plain and relaxed SIMD, shared and not)', () => {
  assert.equal(cpuKernelInfo().wasm, 'relaxed-simd');
  for (const [name, b64] of Object.entries(GEMM_WASM)) {
    const bytes = Buffer.from(b64, 'base64');
    assert.ok(WebAssembly.validate(bytes), `${name} does not validate`);
  }
});
