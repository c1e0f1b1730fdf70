// The embedded WASM kernels were built from the kernel sources as they are now: the generated module
// records the SHA-256 of wasm/gemm.ts, so editing the source without `npm run build:wasm` fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpuKernelInfo } from '../../src/backend/cpu/index.js'; // loading it turns on relaxed SIMD in Node 20
import { GEMM_SOURCE_SHA256, GEMM_WASM } from '../../src/backend/cpu/wasm/kernels.generated.js';

test('src/backend/cpu/wasm/kernels.generated.ts is built from the current wasm/gemm.ts', () => {
  const hash = createHash('sha256').update(readFileSync('wasm/gemm.ts')).digest('hex');
  assert.equal(GEMM_SOURCE_SHA256, hash, 'wasm/gemm.ts changed since the last build: run npm run build:wasm');
});

test('every embedded variant is a valid module (plain and relaxed SIMD, shared and not)', () => {
  assert.equal(cpuKernelInfo().wasm, 'relaxed-simd');
  for (const [name, b64] of Object.entries(GEMM_WASM)) {
    const bytes = Buffer.from(b64, 'base64');
    assert.ok(WebAssembly.validate(bytes), `${name} does not validate`);
  }
});
