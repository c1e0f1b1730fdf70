// The CPU backend's WASM SIMD path for dense same-shape float32 add, sub and mul (wasmelementwise.ts):
// against the float64 oracle on odd lengths (tails past the 4-lane vectors, the 16384-float staging
// chunk), with NaN, ±Inf and ±0, bit-identical to the JS loops; strided, broadcast, scalar and small
// operands stay on the JS loops. The binaryWasm counter proves which path ran.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { binary, type Tensor } from '../../src/index.js';
import { cpuKernelCounters, setCpuKernelOptions } from '../../src/backend/cpu/index.js';
import { WASM_BINARY_MIN } from '../../src/backend/cpu/wasmelementwise.js';
import { randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { assertIdentical, expectTensor, fromND } from '../ops/util.js';

const defaults = setCpuKernelOptions({});
after(() => setCpuKernelOptions(defaults));

const OPS = ['add', 'sub', 'mul'] as const;

/** n float32 values over ±1e3 with NaN, ±Inf, ±0 and huge values first. */
function inputs(rng: ReturnType<typeof testRng>, n: number): O.ND {
  const specials = [NaN, Infinity, -Infinity, 0, -0, 1e38, -1e38, 1e-40, Infinity, 3];
  const r = randomND(rng, [n], { low: -1e3, high: 1e3, dtype: 'float32' });
  return O.nd(
    [n],
    Array.from({ length: n }, (_, i) => (i < specials.length ? specials[(i * 7) % specials.length]! : r.data[i]!)),
  );
}

/** Runs `fn` and returns how many binary calls took the WASM path. */
async function wasmCalls(fn: () => Promise<void>): Promise<number> {
  const before = cpuKernelCounters().binaryWasm;
  await fn();
  return cpuKernelCounters().binaryWasm - before;
}

describe('cpu WASM add / sub / mul', () => {
  test('match the float64 oracle on odd lengths, bit-identical to the JS loops', async (t) => {
    const rng = testRng('wasm binary', t);
    setCpuKernelOptions({ wasm: true });
    for (const n of [WASM_BINARY_MIN, WASM_BINARY_MIN + 3, 16384 + 5, 3 * 16384, 40001]) {
      const a = inputs(rng, n);
      const b = O.nd([n], inputs(rng, n).data.slice().reverse());
      const x = fromND(a, 'float32', 'cpu');
      const y = fromND(b, 'float32', 'cpu');
      for (const op of OPS) {
        let got: Tensor | undefined;
        const calls = await wasmCalls(async () => {
          got = binary(op, x, y);
          await expectTensor(got, O.binary(op, a, b, 'float32'), 'float32', { what: `${op} n ${n}` });
        });
        assert.equal(calls, 1, `${op} n ${n} ran on the WASM kernel`);
        setCpuKernelOptions({ wasm: false });
        const js = binary(op, x, y);
        assert.equal(await wasmCalls(async () => void (await js.toArray())), 0);
        assertIdentical(await got!.toArray(), await js.toArray(), `${op} n ${n}: WASM vs JS`);
        setCpuKernelOptions({ wasm: true });
      }
    }
  });

  test('multi-dimensional dense operands take the WASM path; strided, broadcast, scalar, small do not', async (t) => {
    const rng = testRng('wasm binary layouts', t);
    setCpuKernelOptions({ wasm: true });
    const a = randomND(rng, [300, 257], { low: -4, high: 4, dtype: 'float32' });
    const b = randomND(rng, [300, 257], { low: -4, high: 4, dtype: 'float32' });
    const x = fromND(a, 'float32', 'cpu');
    const y = fromND(b, 'float32', 'cpu');
    for (const op of OPS) {
      const dense = await wasmCalls(() =>
        expectTensor(binary(op, x, y), O.binary(op, a, b, 'float32'), 'float32', { what: `${op} [300, 257]` }),
      );
      assert.equal(dense, 1, `${op} dense`);
      // a transposed view: not dense
      const at = O.transpose(a);
      const xt = fromND(at, 'float32', 'cpu').transpose();
      const yt = fromND(O.transpose(b), 'float32', 'cpu').transpose();
      const strided = await wasmCalls(() =>
        expectTensor(binary(op, xt, yt), O.binary(op, a, b, 'float32'), 'float32', { what: `${op} transposed` }),
      );
      assert.equal(strided, 0, `${op} transposed stays on the JS loops`);
      // a broadcast row
      const row = randomND(rng, [257], { low: -4, high: 4, dtype: 'float32' });
      const bc = await wasmCalls(() =>
        expectTensor(binary(op, x, fromND(row, 'float32', 'cpu')), O.binary(op, a, row, 'float32'), 'float32', {
          what: `${op} broadcast`,
        }),
      );
      assert.equal(bc, 0, `${op} broadcast stays on the JS loops`);
      const sc = await wasmCalls(() =>
        expectTensor(binary(op, x, 1.5), O.binary(op, a, 1.5, 'float32'), 'float32', { what: `${op} scalar` }),
      );
      assert.equal(sc, 0, `${op} scalar stays on the JS loops`);
      const small = randomND(rng, [WASM_BINARY_MIN - 1], { dtype: 'float32' });
      const st = fromND(small, 'float32', 'cpu');
      const sm = await wasmCalls(() =>
        expectTensor(binary(op, st, st), O.binary(op, small, small, 'float32'), 'float32', { what: `${op} small` }),
      );
      assert.equal(sm, 0, `${op} below the threshold stays on the JS loops`);
    }
  });
});
