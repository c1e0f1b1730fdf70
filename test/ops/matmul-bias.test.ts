// matmul with a fused bias (the optional third input, (n) broadcast over rows, added in the kernel's
// epilogue) on every backend against the float64 oracle: 2-D with odd and tile-sized shapes (every
// WebGPU tile variant), batched a with a shared and a batched b, transposed b, a strided bias, 1-D a,
// float16; the shape and dtype errors; and F.linear with a bias as one matmul dispatch and no add.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { F, getBackend, matmul, tensor, tidy, type DType, type Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { assertThrowsWith, dtypesOn, expectTensor, fromND } from './util.js';

/** Checks matmul(x, y, bias) against the oracle a @ b + c (c broadcast over rows), rounded once. */
async function check(x: Tensor, y: Tensor, z: Tensor, a: O.ND, b: O.ND, c: O.ND, dtype: DType, what: string) {
  const k = a.shape[a.shape.length - 1]!;
  const expected = O.roundND(O.binary('add', O.matmul(a, b), c), dtype);
  await expectTensor(matmul(x, y, z), expected, dtype, {
    what: `${what} ${dtype} [${a.shape}] @ [${b.shape}] + [${c.shape}]`,
    terms: k + 1,
  });
}

forEachBackend((device) => {
  for (const dtype of dtypesOn(device, ['float32', 'float16'])) {
    describe(`matmul with a bias ${dtype}`, () => {
      test('2-D: odd sizes and the sizes that pick each tile (16, 32, 64, 128)', async (t) => {
        const rng = testRng(`matmul bias 2d ${dtype}`, t);
        const cases: [number[], number[]][] = [
          [
            [1, 1],
            [1, 1],
          ],
          [
            [17, 5],
            [5, 9],
          ],
          [
            [67, 33],
            [33, 129],
          ],
          [
            [447, 37],
            [37, 449],
          ],
          // WebGPU (kernels/matmul.ts, pickTile): the small ones take the 16x16 tile, 447x449 the 32x32,
          // and these batched ones (from matmul.test.ts) the 64x64 and the 128x128
          [
            [48, 65, 21],
            [48, 21, 66],
          ],
          [
            [48, 130, 19],
            [48, 19, 129],
          ],
        ];
        for (const [sa, sb] of cases) {
          const a = randomND(rng, sa, { dtype });
          const b = randomND(rng, sb, { dtype });
          const c = randomND(rng, [sb[sb.length - 1]!], { dtype });
          const [x, y, z] = [fromND(a, dtype, device), fromND(b, dtype, device), fromND(c, dtype, device)];
          await check(x, y, z, a, b, c, dtype, 'plain');
        }
      });

      test('batched a @ shared b, batched a @ batched b, transposed b, strided bias, 1-D a', async (t) => {
        const rng = testRng(`matmul bias batched ${dtype}`, t);
        const cases: [number[], number[]][] = [
          [
            [3, 7, 11],
            [11, 13],
          ],
          [
            [2, 3, 5, 4],
            [4, 6],
          ],
          [
            [2, 1, 3, 4],
            [5, 4, 6],
          ],
          [
            [4, 9, 16],
            [4, 16, 31],
          ],
          [[7], [7, 5]],
        ];
        for (const [sa, sb] of cases) {
          const a = randomND(rng, sa, { dtype });
          const b = randomND(rng, sb, { dtype });
          const n = sb[sb.length - 1]!;
          const c = randomND(rng, [n], { dtype });
          const x = fromND(a, dtype, device);
          await check(x, fromND(b, dtype, device), fromND(c, dtype, device), a, b, c, dtype, 'batched');
          // b read through its transpose (F.linear's weight), the bias a stride-2 view of a longer vector
          const bT = fromND(O.transpose(b), dtype, device).transpose(-2, -1);
          const wide = randomND(rng, [2 * n], { dtype });
          const cs = O.slice(wide, 0, 0, 2 * n, 2);
          const zs = fromND(wide, dtype, device).slice(0, 0, 2 * n, 2);
          assert.equal(zs.isContiguous, n === 1, 'the bias is a strided view');
          await check(x, bT, zs, a, b, cs, dtype, 'b^T, strided bias');
        }
      });
    });
  }

  test('matmul with a bias: shape and dtype errors name the op', () => {
    const mk = (shape: number[], dtype: DType = 'float32') =>
      tensor(new Float32Array(shape.reduce((p, d) => p * d, 1)), { shape, device, dtype });
    assertThrowsWith(() => matmul(mk([2, 3]), mk([3, 4]), mk([3])), ['matmul', 'bias', '[4]', '[3]']);
    assertThrowsWith(() => matmul(mk([2, 3]), mk([3, 4]), mk([1, 4])), ['matmul', 'bias', '[4]']);
    assertThrowsWith(() => matmul(mk([2, 3]), mk([3]), mk([1])), ['matmul', 'bias']);
    assertThrowsWith(() => matmul(mk([2, 3]), mk([3, 4]), mk([4], 'int32')), ['matmul', 'bias', 'int32']);
  });

  test('F.linear with a bias is one matmul dispatch and no add (forward)', async () => {
    const backend = getBackend(device);
    const x = tensor(
      Float32Array.from({ length: 5 * 3 * 8 }, (_, i) => Math.sin(i)),
      { shape: [5, 3, 8], device },
    );
    const w = tensor(
      Float32Array.from({ length: 6 * 8 }, (_, i) => Math.cos(i)),
      { shape: [6, 8], device },
    );
    const b = tensor(
      Float32Array.from({ length: 6 }, (_, i) => i - 2),
      { shape: [6], device },
    );
    await backend.sync();
    backend.setProfiling(true);
    const before = backend.stats().dispatches;
    const y = tidy(() => F.linear(x, w, b));
    const vals = await y.toArray();
    const dispatches = backend.stats().dispatches - before;
    const p = await backend.takeProfile();
    backend.setProfiling(false);
    const count = (re: RegExp) => p.kernels.filter((k) => re.test(k.name)).reduce((s, k) => s + k.count, 0);
    assert.equal(dispatches, 1, 'one dispatch in all');
    assert.equal(count(/matmul/), 1, 'one matmul');
    assert.equal(count(/add/), 0, 'no add');
    assert.deepEqual(y.shape, [5, 3, 6]);
    for (let r = 0; r < 15; r++) {
      for (let o = 0; o < 6; o++) {
        let s = o - 2;
        for (let i = 0; i < 8; i++) s += Math.sin(r * 8 + i) * Math.cos(o * 8 + i);
        assert.ok(Math.abs(vals[r * 6 + o]! - s) < 1e-4, `y[${r}, ${o}] = ${vals[r * 6 + o]}, want ${s}`);
      }
    }
    for (const t of [x, w, b, y]) t.dispose();
  });
});
