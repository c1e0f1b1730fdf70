// WebGPU runtime semantics check: host writes ordered after enqueued work, reads captured at call time,
// pooled buffers reading as zero, batching (submits per dispatch), prepare() compiling ahead, errors
// surfacing as clear exceptions, and the process exiting by itself afterwards.
// Run: node --import tsx bench/kernels/webgpu-runtime.ts
import type { DType } from '../../src/core/dtype.js';
import type { DeviceBuffer, TensorSpec } from '../../src/backend/backend.js';
import { destroyWebGPU, initWebGPU } from '../../src/backend/webgpu/index.js';
import { KERNELS } from '../../src/backend/webgpu/kernels/index.js';
import type { WebGPUKernel } from '../../src/backend/webgpu/kernel.js';
import { UniformWords, checkDecl, uU32, uniformDecl } from '../../src/backend/webgpu/kernels/codegen.js';

const gpu = await initWebGPU();
console.log(`adapter: ${gpu.caps.description}`);
const spec = (buffer: DeviceBuffer, n: number, dtype: DType = 'float32', offset = 0): TensorSpec => ({
  buffer,
  dtype,
  shape: [n],
  strides: [1],
  offset,
});
const one = { scalar: 1, dtype: 'float32' as const };
function ok(cond: boolean, what: string): void {
  if (!cond) throw new Error(`FAILED: ${what}`);
  console.log(`ok  ${what}`);
}
async function throws(p: () => unknown, re: RegExp, what: string): Promise<void> {
  try {
    await p();
  } catch (e) {
    const msg = (e as Error).message;
    return ok(re.test(msg), `${what}: ${msg.split('\n')[0]}`);
  }
  ok(false, `${what} (did not throw)`);
}

// host writes are ordered after enqueued work; reads see the data at call time
const x = gpu.alloc(16);
gpu.write(x, 'float32', Float32Array.of(1, 2, 3, 4), 0);
const y = gpu.alloc(16);
gpu.run('neg', [spec(x, 4)], spec(y, 4), {});
gpu.write(x, 'float32', Float32Array.of(10, 20, 30, 40), 0);
const y2 = gpu.alloc(16);
gpu.run('neg', [spec(x, 4)], spec(y2, 4), {});
const sw = gpu.stats().submits;
gpu.write(x, 'float32', Float32Array.of(100, 200, 300, 400), 0); // x is used by the open batch: staged, no submit
ok(gpu.stats().submits === sw, 'a write into a buffer used by the open batch does not submit');
ok(
  (await gpu.read(y, 'float32', 0, 4)).join() === '-1,-2,-3,-4',
  'a write after an enqueued op does not change its input',
);
ok(
  (await gpu.read(y2, 'float32', 0, 4)).join() === '-10,-20,-30,-40',
  'and the op enqueued after it sees the new data',
);
gpu.write(x, 'float32', Float32Array.of(10, 20, 30, 40), 0);
const pending = gpu.read(x, 'float32', 0, 4);
gpu.run('fill', [], spec(x, 4), { value: 7 });
gpu.free(x);
ok((await pending).join() === '10,20,30,40', 'read captures the data at call time (buffer freed right after)');

// pooled buffers: no createBuffer on reuse, and they read as zero until written
const s0 = gpu.stats();
const z = gpu.alloc(16);
ok(gpu.stats().buffersCreated === s0.buffersCreated, 'a freed buffer is reused without createBuffer');
ok((await gpu.read(z, 'float32', 0, 4)).join() === '0,0,0,0', 'a reused buffer reads zero');
gpu.free(z);
const z2 = gpu.alloc(16);
gpu.write(z2, 'float32', Float32Array.of(5), 2);
ok(
  (await gpu.read(z2, 'float32', 0, 4)).join() === '0,0,5,0',
  'a partial write into a reused buffer leaves zeros around',
);
gpu.free(z2);
const z3 = gpu.alloc(16);
gpu.run('fill', [], spec(z3, 2, 'float32', 1), { value: 3 });
ok(
  (await gpu.read(z3, 'float32', 0, 4)).join() === '0,3,3,0',
  'a partial kernel write into a reused buffer leaves zeros around',
);

// batching: one submit per 128 dispatches, one pipeline per specialization, no buffer churn
const a = gpu.alloc(4096);
const b = gpu.alloc(4096);
gpu.run('add', [spec(a, 1024), one], spec(b, 1024), {}); // compiles the specialization
await gpu.sync();
const s1 = gpu.stats();
for (let i = 0; i < 150; i++) {
  gpu.run('add', [spec(a, 1024), one], spec(b, 1024), {});
  gpu.run('add', [spec(b, 1024), one], spec(a, 1024), {});
}
const r = await gpu.read(a, 'float32', 0, 1024);
const s2 = gpu.stats();
ok(r[0] === 300 && r[1023] === 300, `a chain of 300 dependent adds (${r[0]})`);
const d = {
  submits: s2.submits - s1.submits,
  dispatches: s2.dispatches - s1.dispatches,
  compiles: s2.compiles - s1.compiles,
  created: s2.buffersCreated - s1.buffersCreated,
};
ok(
  d.submits === 3 && d.dispatches === 300 && d.compiles === 0 && d.created === 0,
  `300 ops + read: ${JSON.stringify(d)}`,
);

// prepare() compiles ahead so that run() does not
const c0 = gpu.stats().compiles;
gpu.prepare('tanh', [spec(a, 1024)], spec(b, 1024), {});
const c1 = gpu.stats().compiles;
gpu.run('tanh', [spec(a, 1024)], spec(b, 1024), {});
ok(c1 === c0 + 1 && gpu.stats().compiles === c1, 'prepare() compiles, the following run() does not');

// bool is stored as 32-bit words, read/written as 0/1 bytes
const bo = gpu.alloc(5 * gpu.caps.elementBytes.bool);
gpu.write(bo, 'bool', Uint8Array.of(1, 0, 1, 1, 0), 0);
ok((await gpu.read(bo, 'bool', 1, 3)).join() === '0,1,1', 'bool round trip at an offset');

// device-side checks (an index out of range): reported by the next read or sync, naming the op
const table = KERNELS as unknown as { neg: WebGPUKernel<'neg'> };
const good = table.neg;
table.neg = (_i, out, _a, ctx) => {
  const u = new UniformWords(1).u32(0, ctx.checks.code('gather', 'index {value} is out of range'));
  const code = (): string =>
    `${checkDecl(1)}${uniformDecl(2, 1)}@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n` +
    `@compute @workgroup_size(1) fn main() { o[0] = 1.0; tl_fail(${uU32(0)}, -7); }`;
  return [
    {
      program: { key: 'failing-check', code },
      buffers: [
        { buffer: out.buffer, readOnly: false },
        { buffer: ctx.checks.buffer, readOnly: false },
      ],
      uniforms: u.words,
      workgroups: [1, 1, 1],
    },
  ];
};
const f = gpu.alloc(16);
gpu.run('neg', [spec(a, 4)], spec(f, 4), {});
table.neg = good;
await throws(
  () => gpu.read(a, 'float32', 0, 4),
  /^gather: index -7 is out of range/,
  'a failed device check throws at the next read',
);
ok((await gpu.read(a, 'float32', 0, 1))[0] === 300, 'and is reported once');
table.neg = (_i, out, _a, ctx) => {
  const u = new UniformWords(1).u32(0, ctx.checks.code('indexAdd', 'bad {value}'));
  const code = (): string =>
    `${checkDecl(0)}${uniformDecl(1, 1)}@compute @workgroup_size(1) fn main() { tl_fail(${uU32(0)}, 5); }`;
  void out;
  return [
    {
      program: { key: 'failing-check-2', code },
      buffers: [{ buffer: ctx.checks.buffer, readOnly: false }],
      uniforms: u.words,
      workgroups: [1, 1, 1],
    },
  ];
};
gpu.run('neg', [spec(a, 4)], spec(f, 4), {});
table.neg = good;
await throws(() => gpu.sync(), /^indexAdd: bad 5/, 'or at the next sync');

// errors: clear and immediate where possible, else at the next sync point; never a stale result
await throws(() => gpu.alloc(2 ** 40), /maxBufferSize/, 'an allocation over maxBufferSize');
const bad: WebGPUKernel<'neg'> = (_i, out) => [
  {
    program: { key: 'broken', code: () => 'fn main( {' },
    buffers: [{ buffer: out.buffer, readOnly: false }],
    workgroups: [1, 1, 1],
  },
];
table.neg = bad;
const c = gpu.alloc(16);
gpu.run('neg', [spec(a, 4)], spec(c, 4), {});
table.neg = good;
await throws(() => gpu.read(c, 'float32', 0, 4), /compiling kernel 'broken'/, 'a WGSL error surfaces at the next read');
await throws(
  () => gpu.run('neg', [spec(a, 4)], spec(c, 4), {}),
  /compiling kernel 'broken'/,
  'and on every later call',
);
destroyWebGPU();
await throws(() => gpu.alloc(4), /destroyed/, 'use after destroyWebGPU()');
console.log('done (the process should now exit by itself)');
