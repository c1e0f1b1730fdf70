// WebGPU backend smoke check: initializes the device, runs the elementwise/creation kernels (and the
// other kernels that exist) over many dtypes and layouts, compares every element with the CPU backend,
// and prints the adapter and the counters of a small op sequence.
// Run: node --import tsx bench/kernels/webgpu-smoke.ts   (TL_WEBGPU_BACKEND=opengles|vulkan to force one)
import type { DType, TypedArray } from '../../src/core/dtype.js';
import { makeTypedArray } from '../../src/core/dtype.js';
import { f16BitsToF32, f32ToF16Bits } from '../../src/core/float16.js';
import { broadcastStrides, contiguousStrides, numel } from '../../src/core/shape.js';
import type { Backend, Operand, TensorSpec } from '../../src/backend/backend.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { BINARY_OPS, UNARY_OPS, type Attrs, type KernelOp } from '../../src/ops/opcodes.js';
import { binaryResultDType, unaryResultDType } from '../../src/ops/dtypes.js';
import { initWebGPU } from '../../src/backend/webgpu/index.js';

const cpu = createCpuBackend();
const gpu = await initWebGPU();
const a = gpu.adapter;
console.log(`adapter: ${gpu.caps.description}`);
console.log(
  `  vendor='${a.vendor}' arch='${a.architecture}' device='${a.device}' fallback=${a.isFallbackAdapter} level=${a.featureLevel}`,
);
console.log(`  features: ${a.features.join(', ') || '(none)'}; dtypes: ${gpu.caps.dtypes.join(', ')}`);

let seed = 12345;
function rnd(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 32;
}

const SPECIAL = [0, -0, 1, -1, 0.5, -0.5, 1.5, 2.5, -2.5, NaN, Infinity, -Infinity, 1e-6, 80, -80];

/** Random host data of a dtype (floats include special values, ints small and large). */
function data(d: DType, n: number, special = true): TypedArray {
  const out = makeTypedArray(d, n);
  for (let i = 0; i < n; i++) {
    const r = (rnd() - 0.5) * 8;
    const f = special && i < SPECIAL.length ? SPECIAL[i]! : r;
    if (d === 'float32') out[i] = f;
    else if (d === 'float16') out[i] = f32ToF16Bits(f);
    else if (d === 'int32') out[i] = i % 7 === 0 ? (rnd() * 2 ** 32) | 0 : Math.round(r * 3);
    else if (d === 'uint32') out[i] = i % 7 === 0 ? (rnd() * 2 ** 32) >>> 0 : Math.round(Math.abs(r) * 3);
    else out[i] = rnd() < 0.5 ? 1 : 0;
  }
  return out;
}

/** A tensor input: host data laid out in a buffer, read through shape/strides/offset (default contiguous). */
interface In {
  dtype: DType;
  shape: number[];
  host: TypedArray;
  strides?: number[];
  offset?: number;
}

function upload(be: Backend, x: In): TensorSpec {
  const buf = be.alloc(Math.max(4, x.host.length * be.caps.elementBytes[x.dtype]));
  be.write(buf, x.dtype, x.host, 0);
  return {
    buffer: buf,
    dtype: x.dtype,
    shape: x.shape,
    strides: x.strides ?? contiguousStrides(x.shape),
    offset: x.offset ?? 0,
  };
}

const t = (dtype: DType, shape: number[], special = true): In => ({
  dtype,
  shape,
  host: data(dtype, numel(shape), special),
});
const sc = (scalar: number, dtype: DType): Operand => ({ scalar, dtype });

function close(d: DType, x: number, y: number, rtol: number): boolean {
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) && Number.isNaN(y);
  if (d !== 'float32' && d !== 'float16') return x === y;
  if (x === y) return true;
  if (rtol === 0) return false; // bit-exact checks
  return Math.abs(x - y) <= 1e-6 + rtol * Math.abs(y);
}

let failures = 0;
let checks = 0;

/** Runs `op` on both backends (out = fresh contiguous tensor, or `into` = a target written in place) and compares. */
async function check<K extends KernelOp>(
  label: string,
  op: K,
  ins: (In | Operand)[],
  shape: number[],
  dtype: DType,
  attrs: Attrs<K>,
  rtol = 2e-6,
  into?: In,
): Promise<void> {
  if (!gpu.caps.dtypes.includes(dtype) || ins.some((x) => !gpu.caps.dtypes.includes(x.dtype))) return;
  const res: number[][] = [];
  for (const be of [cpu, gpu] as Backend[]) {
    const bcast = (s: TensorSpec): TensorSpec =>
      into ? s : { ...s, shape, strides: broadcastStrides(s.shape, s.strides, shape) };
    const specs = ins.map((x) => ('host' in x ? bcast(upload(be, x)) : x));
    const outIn: In = into ?? { dtype, shape, host: makeTypedArray(dtype, numel(shape)) };
    const out = into && 'host' in (ins[0] as In) && into === ins[0] ? (specs[0] as TensorSpec) : upload(be, outIn);
    be.run(op, specs, out, attrs);
    const raw = await be.read(out.buffer, dtype, 0, outIn.host.length);
    res.push(Array.from(raw, (v) => (dtype === 'float16' ? f16BitsToF32(v) : v)));
  }
  checks++;
  const [c, g] = res as [number[], number[]];
  const bad = c.findIndex((v, i) => !close(dtype, g[i]!, v, rtol));
  if (bad >= 0) {
    failures++;
    console.log(`FAIL ${label}: element ${bad}: webgpu ${g[bad]} vs cpu ${c[bad]}`);
  }
}

const FLOATS: DType[] = ['float32', 'float16'];
// unary ops: float inputs (all ops), integer/bool inputs where defined
for (const op of UNARY_OPS) {
  const tol = op === 'sin' || op === 'cos' ? 2e-5 : 4e-6;
  for (const d of [...FLOATS, 'int32', 'uint32', 'bool'] as DType[]) {
    let od: DType;
    try {
      od = unaryResultDType(op, d);
    } catch {
      continue;
    }
    const x = t(d, [37]);
    if ((op === 'sin' || op === 'cos') && (d === 'int32' || d === 'uint32'))
      for (let i = 0; i < x.host.length; i++) x.host[i]! %= 1000; // f32 sin of 1e9 is noise
    await check(`${op}(${d})`, op, [x], [37], od, {}, d === 'float16' || od === 'float16' ? 1e-3 : tol);
  }
}
// binary ops: broadcast [3,1,5] x [4,5], scalars on either side, mixed dtypes, contiguous vec4 sizes
for (const op of BINARY_OPS) {
  for (const d of [...FLOATS, 'int32', 'uint32', 'bool'] as DType[]) {
    let od: DType;
    try {
      od = binaryResultDType(op, d);
    } catch {
      continue;
    }
    if (op === 'pow' && d !== 'float32' && d !== 'float16') continue; // integer pow overflow differs by design
    const tol = d === 'float16' ? 1e-3 : op === 'pow' ? 1e-5 : 4e-6;
    const cd = op === 'div' || op === 'geluGrad' ? (FLOATS.includes(d) ? d : 'float32') : d;
    await check(`${op}(${d}) bcast`, op, [t(d, [3, 1, 5]), t(d, [4, 5])], [3, 4, 5], od, {}, tol);
    await check(`${op}(${d}) vec4`, op, [t(d, [64]), t(d, [64], false)], [64], od, {}, tol);
    await check(`${op}(${d}, scalar)`, op, [t(d, [9]), sc(2, cd)], [9], od, {}, tol);
    await check(`${op}(scalar, ${d})`, op, [sc(-1.5, cd), t(d, [9])], [9], od, {}, tol);
  }
}
await check('add(int32, float32)', 'add', [t('int32', [20]), t('float32', [20])], [20], 'float32', {});
await check('lt(int32, f32 scalar)', 'lt', [t('int32', [20]), sc(0.5, 'float32')], [20], 'bool', {});
await check('where bcast', 'where', [t('bool', [4, 1]), t('float32', [4, 6]), sc(7, 'float32')], [4, 6], 'float32', {});
await check('where int', 'where', [t('bool', [8]), t('int32', [8]), t('int32', [8])], [8], 'int32', {});
const ALL: DType[] = ['float32', 'float16', 'int32', 'uint32', 'bool'];
for (const from of ALL) {
  for (const to of ALL) {
    const src = t(from, [33]);
    if (from === 'float32' && (to === 'int32' || to === 'uint32'))
      src.host = Float32Array.from(src.host, (v) => (Math.abs(v) > 1e9 ? 3.5 : v));
    await check(`cast ${from}->${to}`, 'cast', [src], [33], to, { dtype: to });
  }
}
// strided reads and writes: a transpose copy, a sliced view, an in-place op on a strided view
await check(
  'copy transpose',
  'copy',
  [{ ...t('float32', [5, 7]), shape: [7, 5], strides: [1, 7] }],
  [7, 5],
  'float32',
  {},
);
await check(
  'exp of a slice',
  'exp',
  [{ ...t('float32', [6, 8]), shape: [3, 4], strides: [16, 2], offset: 1 }],
  [3, 4],
  'float32',
  {},
);
const target: In = { ...t('float32', [4, 6]), shape: [4, 3], strides: [6, 2], offset: 1 };
await check('mul_ in place (strided)', 'mul', [target, sc(3, 'float32')], [4, 6], 'float32', {}, 2e-6, target);
const inplace = t('float32', [64]);
await check('add_ in place (vec4)', 'add', [inplace, t('float32', [64])], [64], 'float32', {}, 2e-6, inplace);
const perm: In = { ...t('float32', [2, 3, 2, 2, 3, 2], false), strides: [1, 2, 6, 12, 24, 72] }; // a permuted view
await check(
  'mul rank 6 (permuted x broadcast)',
  'mul',
  [perm, t('float32', [3, 1, 1, 3, 1], false)],
  [2, 3, 2, 2, 3, 2],
  'float32',
  {},
);
await check('neg 2-D grid', 'neg', [t('float32', [65535 * 256 + 100], false)], [65535 * 256 + 100], 'float32', {});
// creation kernels
for (const d of ALL) {
  await check(`fill ${d}`, 'fill', [], [13], d, { value: 2.7 });
  await check(`arange ${d}`, 'arange', [], [40], d, { start: -3, step: 2 });
}
await check('arange frac', 'arange', [], [40], 'float32', { start: 0.5, step: 0.25 });
await check('randUniform', 'randUniform', [], [1000], 'float32', { key0: 42, key1: 7, counter: 3, low: 0, high: 1 }, 0);
await check(
  'randUniform affine',
  'randUniform',
  [],
  [1000],
  'float32',
  { key0: 42, key1: 7, counter: 4, low: -2, high: 2 },
  0,
);
await check(
  'randUniform init bound',
  'randUniform',
  [],
  [1000],
  'float32',
  { key0: 5, key1: 0, counter: 0, low: -1 / Math.sqrt(768), high: 1 / Math.sqrt(768) },
  0,
);
await check(
  'randUniform rounding up to high',
  'randUniform',
  [],
  [4096],
  'float32',
  { key0: 1, key1: 1, counter: 1, low: 0.1, high: 0.1 + 1e-9 },
  0,
);
for (let k = 0; k < 6; k++) {
  const lo = (rnd() - 0.7) * 10 ** (k - 3);
  const hi = lo + rnd() * 10 ** (k - 2);
  await check(
    `randUniform [${lo}, ${hi})`,
    'randUniform',
    [],
    [4096],
    'float32',
    { key0: k, key1: 99, counter: k, low: lo, high: hi },
    0,
  );
}
await check(
  'randUniform f16',
  'randUniform',
  [],
  [4096],
  'float16',
  { key0: 3, key1: 1, counter: 2, low: -0.3, high: 0.7 },
  0,
);
await check('randNormal', 'randNormal', [], [1000], 'float32', { key0: 1, key1: 0, counter: 9, mean: 1, std: 2 }, 1e-5);
// the colleague's kernels that exist: a reduction and a matmul
await check('sum axis 1', 'sum', [t('float32', [6, 10], false)], [6], 'float32', { axes: [1], keepdim: false }, 1e-5);
await check('softmax', 'softmax', [t('float32', [4, 9], false)], [4, 9], 'float32', { axis: 1 }, 1e-5);
await check(
  'matmul',
  'matmul',
  [t('float32', [2, 5, 7], false), t('float32', [2, 7, 3], false)],
  [2, 5, 3],
  'float32',
  {},
  1e-5,
);
console.log(`${checks} comparisons with the cpu backend, ${failures} failed`);

// counters of a small op sequence: upload x; y = gelu(x * 2 + 1); s = y > 0.5; read y. Run twice: the
// second time is the steady state (no compile, no new buffer).
async function sequence(): Promise<Record<string, number>> {
  const before = gpu.stats();
  const x = upload(gpu, t('float32', [256], false));
  const tmp = (dtype: DType = 'float32'): TensorSpec => ({
    buffer: gpu.alloc(1024),
    dtype,
    shape: [256],
    strides: [1],
    offset: 0,
  });
  const u = tmp();
  gpu.run('mul', [x, sc(2, 'float32')], u, {});
  const v = tmp();
  gpu.run('add', [u, sc(1, 'float32')], v, {});
  gpu.free(u.buffer);
  const y = tmp();
  gpu.run('gelu', [v], y, {});
  gpu.free(v.buffer);
  const s = tmp('bool');
  gpu.run('gt', [y, sc(0.5, 'float32')], s, {});
  await gpu.read(y.buffer, 'float32', 0, 256);
  for (const b of [x, y, s]) gpu.free(b.buffer);
  const after = gpu.stats();
  return Object.fromEntries(Object.entries(after).map(([k, val]) => [k, val - before[k as keyof typeof before]]));
}
console.log('counters, upload + 4 ops + read (first):', JSON.stringify(await sequence()));
console.log('counters, upload + 4 ops + read (again):', JSON.stringify(await sequence()));
console.log('pool:', JSON.stringify(gpu.poolStats()));
if (failures > 0) throw new Error(`${failures} webgpu/cpu mismatches`);
