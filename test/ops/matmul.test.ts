// matmul on every backend against the float64 oracle (torch.matmul semantics): 2-D with odd and
// tile-edge sizes, 1-D operands, batched with broadcast batch dims, transposed and strided operands,
// float16, empty dims, and the errors that name the op and both shapes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { matmul, type DType, type Tensor } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { randomMatmulShapes, randomND, randomSize, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { assertThrowsWith, dtypesOn, expectTensor, fromND, stridedView } from './util.js';

/** Checks x @ y against the oracle; `a`, `b` are the operands' values. */
async function check(x: Tensor, y: Tensor, a: O.ND, b: O.ND, dtype: DType, what: string): Promise<void> {
  const k = a.shape[a.shape.length - 1]!;
  await expectTensor(matmul(x, y), O.roundND(O.matmul(a, b), dtype), dtype, {
    what: `${what} ${dtype} [${a.shape}] @ [${b.shape}]`,
    terms: k,
  });
}

/** Operands whose transpose (last two dims) is the wanted value: returns a transposed view holding `a`. */
function transposedView(a: O.ND, dtype: DType, device: Parameters<typeof fromND>[2]): Tensor {
  const t = fromND(O.transpose(a), dtype, device).transpose();
  assert.equal(t.isContiguous, a.shape.at(-1) === 1 || a.shape.at(-2) === 1, 'a transposed view is not contiguous');
  return t;
}

forEachBackend((device) => {
  for (const dtype of dtypesOn(device, ['float32', 'float16'])) {
    describe(`matmul ${dtype}`, () => {
      test('2-D: tile-edge, odd and degenerate sizes up to 64^3 and 67x33x129', async (t) => {
        const rng = testRng(`matmul 2d ${dtype}`, t);
        const sizes: [number, number, number][] = [
          [1, 1, 1],
          [1, 64, 1],
          [17, 1, 9],
          [64, 64, 64],
          [67, 33, 129],
          [randomSize(rng, 64), randomSize(rng, 64), randomSize(rng, 64)],
          [randomSize(rng, 40), randomSize(rng, 40), randomSize(rng, 40)],
        ];
        for (const [m, k, n] of sizes) {
          const a = randomND(rng, [m, k], { dtype });
          const b = randomND(rng, [k, n], { dtype });
          await check(fromND(a, dtype, device), fromND(b, dtype, device), a, b, dtype, '2-D');
          await check(fromND(a, dtype, device), fromND(b, dtype, device).contiguous(), a, b, dtype, '.matmul');
        }
      });

      test('larger problems: ragged edges and several K slices in the register-blocked tiles', async (t) => {
        // WebGPU takes the largest tile that still gives 192 workgroups (tiles x batch; kernels/matmul.ts,
        // pickTile): these pick the 32x32 (2x2 per thread), 64x64 (4x4) and 128x128 (8x8) tiles, with M
        // and N just over a tile (ragged edges) and K spanning 2-3 slices; batches keep the outputs few
        const rng = testRng(`matmul larger ${dtype}`, t);
        const cases: [number[], number[]][] = [
          [
            [447, 37],
            [37, 449],
          ],
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
          await check(fromND(a, dtype, device), fromND(b, dtype, device), a, b, dtype, 'larger');
        }
      });

      test('1-D operands: vector @ matrix, matrix @ vector, dot, vector @ batch, batch @ vector', async (t) => {
        const rng = testRng(`matmul 1d ${dtype}`, t);
        const k = randomSize(rng, 33);
        const n = randomSize(rng, 20);
        const m = randomSize(rng, 20);
        const cases: [number[], number[], number[]][] = [
          [[k], [k, n], [n]],
          [[m, k], [k], [m]],
          [[k], [k], []],
          [[k], [3, k, n], [3, n]],
          [[2, 3, m, k], [k], [2, 3, m]],
        ];
        for (const [sa, sb, out] of cases) {
          const a = randomND(rng, sa, { dtype });
          const b = randomND(rng, sb, { dtype });
          const y = matmul(fromND(a, dtype, device), fromND(b, dtype, device));
          assert.deepEqual(y.shape, out, `[${sa}] @ [${sb}] shape`);
          await check(fromND(a, dtype, device), fromND(b, dtype, device), a, b, dtype, '1-D');
        }
        for (let i = 0; i < 6; i++) {
          let [sa, sb] = randomMatmulShapes(rng, { maxDim: 17 });
          while (sa.length >= 2 && sb.length >= 2) [sa, sb] = randomMatmulShapes(rng, { maxDim: 17 });
          const a = randomND(rng, sa, { dtype });
          const b = randomND(rng, sb, { dtype });
          await check(fromND(a, dtype, device), fromND(b, dtype, device), a, b, dtype, 'random 1-D');
        }
      });

      test('batched with broadcast batch dims ([2,1,3,4] @ [5,4,6] and random)', async (t) => {
        const rng = testRng(`matmul batched ${dtype}`, t);
        const a = randomND(rng, [2, 1, 3, 4], { dtype });
        const b = randomND(rng, [5, 4, 6], { dtype });
        const y = matmul(fromND(a, dtype, device), fromND(b, dtype, device));
        assert.deepEqual(y.shape, [2, 5, 3, 6]);
        await check(fromND(a, dtype, device), fromND(b, dtype, device), a, b, dtype, 'broadcast batch');
        for (let i = 0; i < 8; i++) {
          let [sa, sb] = randomMatmulShapes(rng, { maxDim: 17 });
          while (sa.length < 2 || sb.length < 2) [sa, sb] = randomMatmulShapes(rng, { maxDim: 17 }); // 1-D cases: next test
          const x = randomND(rng, sa, { dtype });
          const z = randomND(rng, sb, { dtype });
          await check(fromND(x, dtype, device), fromND(z, dtype, device), x, z, dtype, 'random');
        }
      });

      test('transposed and strided operands are read through their strides', async (t) => {
        const rng = testRng(`matmul transposed ${dtype}`, t);
        for (const [m, k, n] of [
          [5, 7, 3],
          [33, 17, 20],
          [64, 31, 1],
        ] as [number, number, number][]) {
          const a = randomND(rng, [m, k], { dtype });
          const b = randomND(rng, [k, n], { dtype });
          await check(transposedView(a, dtype, device), fromND(b, dtype, device), a, b, dtype, 'A^T view');
          await check(fromND(a, dtype, device), transposedView(b, dtype, device), a, b, dtype, 'B^T view');
          await check(
            transposedView(a, dtype, device),
            transposedView(b, dtype, device),
            a,
            b,
            dtype,
            'both transposed',
          );
          await check(
            stridedView(rng, a, dtype, device),
            stridedView(rng, b, dtype, device),
            a,
            b,
            dtype,
            'strided views',
          );
        }
        // batched: transpose of the last two dims of a [3, k, m] base, and a permuted batch
        const a = randomND(rng, [3, 6, 5], { dtype });
        const b = randomND(rng, [3, 5, 4], { dtype });
        await check(
          transposedView(a, dtype, device),
          transposedView(b, dtype, device),
          a,
          b,
          dtype,
          'batched transposed',
        );
        const xb = fromND(O.permute(a, [1, 0, 2]), dtype, device).permute([1, 0, 2]);
        await check(xb, stridedView(rng, b, dtype, device), a, b, dtype, 'permuted batch');
        // an expanded (stride-0) operand
        const v = randomND(rng, [1, 5, 4], { dtype });
        await check(
          fromND(a, dtype, device),
          fromND(v, dtype, device).expand([3, 5, 4]),
          a,
          O.broadcastTo(v, [3, 5, 4]),
          dtype,
          'expanded B',
        );
      });
    });
  }

  describe('matmul: empty dims and errors', () => {
    test('empty dims: K = 0 gives zeros, M = 0 or N = 0 gives empty results', async () => {
      const zk = matmul(fromND(O.nd([3, 0]), 'float32', device), fromND(O.nd([0, 4]), 'float32', device));
      await expectTensor(zk, O.nd([3, 4], 0), 'float32', { what: '[3,0] @ [0,4]' });
      await expectTensor(
        matmul(fromND(O.nd([0, 5]), 'float32', device), fromND(O.nd([5, 2]), 'float32', device)),
        O.nd([0, 2]),
        'float32',
        {
          what: '[0,5] @ [5,2]',
        },
      );
      await expectTensor(
        matmul(fromND(O.nd([2, 5]), 'float32', device), fromND(O.nd([5, 0]), 'float32', device)),
        O.nd([2, 0]),
        'float32',
        {
          what: '[2,5] @ [5,0]',
        },
      );
    });

    const mk = (s: number[], d: DType = 'float32'): Tensor => fromND(O.nd(s), d, device);

    test('inner-dim mismatch of 2-D operands names matmul and both shapes', () => {
      assertThrowsWith(() => matmul(mk([2, 3]), mk([4, 5])), ['matmul', '[2, 3]', '[4, 5]']);
      assertThrowsWith(() => matmul(mk([]), mk([3])), ['matmul']);
    });

    test('mismatch with a 1-D operand names matmul and the shapes as given', () => {
      assertThrowsWith(() => mk([7]).matmul(mk([6])), ['matmul', '[7]', '[6]']);
      assertThrowsWith(() => matmul(mk([3, 7]), mk([6])), ['matmul', '[3, 7]', '[6]']);
      assertThrowsWith(() => matmul(mk([6]), mk([7, 3])), ['matmul', '[6]', '[7, 3]']);
    });

    test('batch-dim mismatch names matmul and both shapes', () => {
      assertThrowsWith(() => matmul(mk([2, 3, 4]), mk([5, 4, 6])), ['matmul', '[2, 3, 4]', '[5, 4, 6]']);
    });

    test('dtype errors: mixed float dtypes and integer operands are refused', () => {
      if (dtypesOn(device, ['float16']).length)
        assertThrowsWith(() => matmul(mk([2, 2]), mk([2, 2], 'float16')), ['matmul', 'float32', 'float16']);
      assertThrowsWith(() => matmul(mk([2, 2], 'int32'), mk([2, 2], 'int32')), ['matmul', 'int32']);
    });
  });
});
