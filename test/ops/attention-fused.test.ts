// The fused attention op (softmax(causal(q k^T * scale)) v in one kernel, plus each row's logsumexp)
// against a float64 oracle on every backend: causal offsets none, 0, Tk - Tq, negative (fully masked
// rows are NaN, lse -Inf), past Tk; odd Tq / Tk / hs, several batch dims, permuted (strided) head views,
// float16 where the backend has it; finite-difference gradients of q, k, v. On WebGPU,
// scaledDotProductAttention takes the fused op (one dispatch forward) and equals the composite
// (matmul, causal softmax, matmul) in outputs and gradients; a second shape of the same head size
// compiles no pipeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceName } from '../../src/backend/backend.js';
import type { DType } from '../../src/core/dtype.js';
import { F, attention, autocast, cast, getBackend, matmul, tensor, tidy, type Tensor } from '../../src/index.js';
import { assertClose } from '../helpers/assert.js';
import { dtypesOn, forEachBackend, needsDTypes } from '../helpers/backends.js';
import { assertGradClose } from '../helpers/gradcheck.js';
import { randomND, testRng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';

/**
 * Float64 fused attention: row i of each batch-head keeps keys j < clamp(i + off + 1, 0, Tk) (all with
 * off null); out = softmax(kept scores) v and lse = log sum exp(kept scores); a row with no kept key is
 * NaN with lse -Inf, a row with a NaN or +Inf kept score is NaN with lse NaN.
 */
function refAttention(q: O.ND, k: O.ND, v: O.ND, scale: number, off: number | null): { out: O.ND; lse: O.ND } {
  const r = q.shape.length;
  const [tq, hs] = [q.shape[r - 2]!, q.shape[r - 1]!];
  const tk = k.shape[r - 2]!;
  const hv = v.shape[r - 1]!;
  const nb = O.numel(q.shape.slice(0, -2));
  const out = O.nd([...q.shape.slice(0, -1), hv]);
  const lse = O.nd(q.shape.slice(0, -1));
  for (let b = 0; b < nb; b++) {
    for (let i = 0; i < tq; i++) {
      const row = b * tq + i;
      const lim = off === null ? tk : Math.min(tk, Math.max(0, i + off + 1));
      const s: number[] = [];
      for (let j = 0; j < lim; j++) {
        let d = 0;
        for (let c = 0; c < hs; c++) d += q.data[row * hs + c]! * k.data[(b * tk + j) * hs + c]!;
        s.push(d * scale);
      }
      const bad = s.some((x) => Number.isNaN(x) || x === Infinity);
      const m = Math.max(-Infinity, ...s);
      if (bad || m === -Infinity) {
        for (let c = 0; c < hv; c++) out.data[row * hv + c] = NaN;
        lse.data[row] = bad ? NaN : -Infinity;
        continue;
      }
      const p = s.map((x) => Math.exp(x - m));
      const l = p.reduce((a, x) => a + x, 0);
      for (let c = 0; c < hv; c++) {
        let a = 0;
        for (let j = 0; j < lim; j++) a += p[j]! * v.data[(b * tk + j) * hv + c]!;
        out.data[row * hv + c] = a / l;
      }
      lse.data[row] = m + Math.log(l);
    }
  }
  return { out, lse };
}

/** A tensor of `a`'s values on `device` (a float32 leaf, or its float16 cast). */
function put(a: O.ND, device: DeviceName, dtype: DType = 'float32', requiresGrad = false): Tensor {
  const x = tensor(Float32Array.from(a.data), { shape: a.shape, device, dtype: 'float32', requiresGrad });
  return dtype === 'float32' ? x : x.cast(dtype);
}

/** Output and saved lse of the fused op (the inputs require grad so that the graph keeps the lse). */
async function runFused(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  scale: number,
  causal: number | null,
): Promise<{ out: Float32Array; lse: Float32Array }> {
  const y = attention(q, k, v, { scale, causal });
  assert.equal(y.dtype, q.dtype);
  const lse = y.gradFn!.aux(0);
  assert.equal(lse.dtype, 'float32');
  assert.deepEqual(lse.shape, q.shape.slice(0, -1));
  const res = { out: Float32Array.from(await y.toArray()), lse: Float32Array.from(await lse.toArray()) };
  y.dispose();
  return res;
}

/** Offsets for a (Tq, Tk) plane: none, top-left, bottom-right, negative (fully masked rows), past Tk. */
const offsetsFor = (tq: number, tk: number): (number | null)[] => [
  ...new Set<number | null>([null, 0, tk - tq, -1, -tq - 2, tk + 3, 1]),
];

forEachBackend((device) => {
  test('fused attention matches the float64 oracle (out and lse; offsets, odd shapes, batch dims)', async (t) => {
    const rng = testRng('attention fused forward', t);
    for (const dtype of dtypesOn(device, ['float32', 'float16'] as const)) {
      for (const [batch, tq, tk, hs, hv] of [
        [[2, 3], 7, 7, 5, 5],
        [[3], 5, 11, 8, 3],
        [[2, 1, 2], 13, 9, 16, 16],
        [[], 1, 6, 3, 7],
        [[2], 37, 41, 64, 64], // several key blocks and query blocks
        [[1, 2], 20, 35, 128, 96], // the largest head size the attention module uses
      ] as [number[], number, number, number, number][]) {
        const round = (a: O.ND): O.ND => O.roundND(a, dtype);
        const qa = round(randomND(rng, [...batch, tq, hs], { low: -2, high: 2 }));
        const ka = round(randomND(rng, [...batch, tk, hs], { low: -2, high: 2 }));
        const va = round(randomND(rng, [...batch, tk, hv]));
        const scale = 1 / Math.sqrt(hs) + 0.05;
        const [q, k, v] = [qa, ka, va].map((a) => put(a, device, dtype, true)) as [Tensor, Tensor, Tensor];
        for (const off of offsetsFor(tq, tk)) {
          const got = await runFused(q, k, v, scale, off);
          const ref = refAttention(qa, ka, va, scale, off);
          const what = `${dtype} attention q [${q.shape}] k [${k.shape}] v [${v.shape}] offset ${off}`;
          const f16 = dtype === 'float16';
          assertClose(got.out, ref.out, {
            dtype,
            rtol: f16 ? 5e-3 : 2e-5,
            atol: f16 ? 2e-3 : 2e-6,
            what: `${what} out`,
          });
          assertClose(got.lse, ref.lse, { dtype: 'float32', rtol: 2e-5, atol: 2e-5, what: `${what} lse` });
        }
        [q, k, v].forEach((a) => a.dispose());
      }
    }
  });

  test('fused attention reads permuted head views of a packed qkv without a copy', async (t) => {
    const rng = testRng('attention fused strided', t);
    const [B, T, nh, hs] = [2, 9, 3, 4];
    const base = randomND(rng, [B, T, 3, nh, hs]); // the attention module's (B, T, 3C) projection
    const x = put(base, device, 'float32', true);
    const heads = (i: number): Tensor => x.select(2, i).transpose(1, 2); // (B, nh, T, hs), strided
    const refHeads = (i: number): O.ND =>
      O.permute(O.reshape(O.slice(base, 2, i, i + 1), [B, T, nh, hs]), [0, 2, 1, 3]);
    const [q, k, v] = [0, 1, 2].map(heads) as [Tensor, Tensor, Tensor];
    // a key axis in reverse memory order as well: v read through a transposed batch-head layout
    const vt = v.transpose(0, 1).contiguous().transpose(0, 1);
    for (const off of [null, 0, 2]) {
      for (const [vv, label] of [
        [v, 'v packed'],
        [vt, 'v batch-transposed'],
      ] as [Tensor, string][]) {
        const before = getBackend(device).stats().dispatches;
        const got = await runFused(q, k, vv, 0.5, off);
        if (device === 'webgpu')
          assert.equal(getBackend(device).stats().dispatches - before, 1, 'one dispatch, no copy');
        const ref = refAttention(refHeads(0), refHeads(1), refHeads(2), 0.5, off);
        const what = `strided attention (${label}) offset ${off}`;
        assertClose(got.out, ref.out, { dtype: 'float32', rtol: 2e-5, atol: 2e-6, what: `${what} out` });
        assertClose(got.lse, ref.lse, { dtype: 'float32', rtol: 2e-5, atol: 2e-5, what: `${what} lse` });
      }
    }
    [q, k, v, vt, x].forEach((a) => a.dispose());
  });

  test('fused attention: a NaN in a kept score makes its row NaN (lse NaN); later rows are unaffected', async (t) => {
    const rng = testRng('attention fused nan', t);
    const qa = randomND(rng, [1, 6, 4]);
    const ka = randomND(rng, [1, 6, 4]);
    const va = randomND(rng, [1, 6, 4]);
    ka.data[3 * 4 + 1] = NaN; // key 3: rows i >= 3 see it under offset 0
    qa.data[1 * 4 + 2] = NaN; // query 1's scores are all NaN
    const [q, k, v] = [qa, ka, va].map((a) => put(a, device, 'float32', true)) as [Tensor, Tensor, Tensor];
    for (const off of [0, -3]) {
      const got = await runFused(q, k, v, 0.5, off);
      const ref = refAttention(qa, ka, va, 0.5, off);
      assertClose(got.out, ref.out, { dtype: 'float32', rtol: 2e-5, atol: 2e-6, what: `nan out offset ${off}` });
      assertClose(got.lse, ref.lse, { dtype: 'float32', rtol: 2e-5, atol: 2e-5, what: `nan lse offset ${off}` });
    }
    [q, k, v].forEach((a) => a.dispose());
  });

  test('fused attention gradients of q, k, v match finite differences', async (t) => {
    const rng = testRng('attention fused grad', t);
    for (const [batch, tq, tk, hs, hv, off, strided] of [
      [[2], 4, 4, 3, 5, 0, false],
      [[2, 2], 3, 6, 4, 2, 3, false], // Tk - Tq
      [[1, 3], 5, 5, 2, 3, null, false],
      [[2, 3], 5, 7, 3, 3, 1, true], // q, k, v permuted views
    ] as [number[], number, number, number, number, number | null, boolean][]) {
      const qa = randomND(rng, [...batch, tq, hs], { low: -1.5, high: 1.5 });
      const ka = randomND(rng, [...batch, tk, hs], { low: -1.5, high: 1.5 });
      const va = randomND(rng, [...batch, tk, hv]);
      const up = randomND(rng, [...batch, tq, hv]);
      const perm = (a: O.ND): O.ND => (strided ? O.permute(a, [1, 0, 2, 3]) : a);
      // strided: the leaves are (nh, B, T, d) and the op sees their (B, nh, T, d) transposes
      const leaves = [qa, ka, va].map((a) => put(perm(a), device, 'float32', true));
      const [q, k, v] = leaves.map((a) => (strided ? a.transpose(0, 1) : a)) as [Tensor, Tensor, Tensor];
      tidy(() => attention(q, k, v, { scale: 0.8, causal: off }).mul(put(up, device)).sum().backward());
      const grads = await Promise.all(leaves.map(async (a) => O.nd(a.shape, await a.grad!.toArray())));
      assertGradClose(
        grads.map((g) => (strided ? O.permute(g, [1, 0, 2, 3]) : g).data),
        ([a, b, c]) => refAttention(a!, b!, c!, 0.8, off).out,
        [qa, ka, va],
        up,
        { what: `attention grad [${batch}] Tq ${tq} Tk ${tk} hs ${hs} hv ${hv} offset ${off} strided ${strided}` },
      );
      [...leaves, q, k, v].forEach((a) => a.dispose());
    }
  });

  test('fused attention validates its operands', () => {
    const z = (shape: number[], dtype: DType = 'float32') => put(O.nd(shape, 0), device).cast(dtype);
    const [q, k, v] = [z([2, 3, 4]), z([2, 5, 4]), z([2, 5, 6])];
    assert.throws(() => attention(q, z([1, 5, 4]), v, { scale: 1, causal: null }), /attention.*same batch dims/);
    assert.throws(() => attention(q, z([2, 5, 3]), v, { scale: 1, causal: null }), /attention/);
    assert.throws(() => attention(q, k, z([2, 4, 6]), { scale: 1, causal: null }), /attention/);
    assert.throws(() => attention(q, k, z([2, 5, 6], 'int32'), { scale: 1, causal: null }), /attention.*dtype/);
    assert.throws(() => attention(q, k, v, { scale: 1, causal: 0.5 }), /attention.*integer/);
  });

  /** The unfused composition: matmul(q * scale, k^T), float32 causal softmax, matmul with v. */
  function composite(q: Tensor, k: Tensor, v: Tensor, offset: number | null): Tensor {
    return tidy(() => {
      let att = matmul(q.mul(1 / Math.sqrt(q.shape[q.ndim - 1]!)), k.transpose(-2, -1));
      const low = att.dtype !== 'float32';
      if (low) att = cast(att, 'float32');
      att = F.softmax(att, -1, { causal: offset });
      return matmul(low ? cast(att, q.dtype) : att, v);
    });
  }

  test('scaledDotProductAttention equals the composite (outputs and gradients)', async (t) => {
    const rng = testRng('attention fused sdpa', t);
    for (const [tq, tk, causal, offset] of [
      [6, 6, true, 0],
      [5, 9, true, 4], // Tk - Tq
      [7, 7, false, 0],
      [9, 5, true, 0],
    ] as [number, number, boolean, number][]) {
      const [B, nh, hs] = [2, 3, 8];
      const qa = randomND(rng, [B, nh, tq, hs]);
      const ka = randomND(rng, [B, nh, tk, hs]);
      const va = randomND(rng, [B, nh, tk, hs]);
      const run = async (fused: boolean): Promise<Float32Array[]> => {
        const [q, k, v] = [qa, ka, va].map((a) => put(a, device, 'float32', true)) as [Tensor, Tensor, Tensor];
        const before = getBackend(device).stats().dispatches;
        const y = fused
          ? F.scaledDotProductAttention(q, k, v, { causal, causalOffset: offset })
          : composite(q, k, v, causal ? offset : null);
        const n = getBackend(device).stats().dispatches - before;
        // the fused forward is one dispatch on WebGPU; the CPU keeps the composite (several)
        if (fused) assert.ok(device === 'webgpu' ? n === 1 : n > 1, `${device} sdpa forward: ${n} dispatches`);
        const up = put(
          O.fromFn(y.shape, (_, i) => Math.sin(i)),
          device,
        );
        tidy(() => y.mul(up).sum().backward());
        const out = [await y.toArray(), ...(await Promise.all([q, k, v].map((a) => a.grad!.toArray())))];
        [q, k, v, y, up].forEach((a) => a.dispose());
        return out.map((a) => Float32Array.from(a));
      };
      const [fused, old] = [await run(true), await run(false)];
      ['output', 'q grad', 'k grad', 'v grad'].forEach((what, i) =>
        assertClose(fused[i]!, old[i]!, {
          dtype: 'float32',
          rtol: 1e-5,
          atol: 1e-6,
          what: `sdpa ${what} Tq ${tq} Tk ${tk} causal ${causal} offset ${offset}`,
        }),
      );
    }
  });

  test('scaledDotProductAttention with a mask or active dropout keeps the composite', async (t) => {
    const rng = testRng('attention fused sdpa paths', t);
    const [q, k, v] = [0, 1, 2].map(() => put(randomND(rng, [1, 2, 5, 4]), device)) as [Tensor, Tensor, Tensor];
    const mask = tensor(
      Uint8Array.from({ length: 25 }, (_, p) => (p % 3 === 0 ? 0 : 1)),
      {
        shape: [5, 5],
        device,
        dtype: 'bool',
      },
    );
    const count = (f: () => Tensor): number => {
      const before = getBackend(device).stats().dispatches;
      f().dispose();
      return getBackend(device).stats().dispatches - before;
    };
    assert.ok(count(() => F.scaledDotProductAttention(q, k, v, { mask })) > 1, 'masked: composite');
    assert.ok(count(() => F.scaledDotProductAttention(q, k, v, { dropoutP: 0.1 })) > 1, 'dropout: composite');
    const evalCount = count(() => F.scaledDotProductAttention(q, k, v, { dropoutP: 0.1, training: false }));
    assert.ok(device === 'webgpu' ? evalCount === 1 : evalCount > 1, `eval dropout: ${evalCount} dispatches`);
    [q, k, v, mask].forEach((a) => a.dispose());
  });

  test(
    'scaledDotProductAttention under autocast float16 equals the composite',
    needsDTypes(device, ['float16']),
    async (t) => {
      const rng = testRng('attention fused autocast', t);
      const [q, k, v] = [0, 1, 2].map(() => put(randomND(rng, [2, 2, 11, 16]), device, 'float32', true)) as [
        Tensor,
        Tensor,
        Tensor,
      ];
      const fused = autocast('float16', () => F.scaledDotProductAttention(q, k, v, { causal: true }));
      const old = autocast('float16', () => composite(q.cast('float16'), k.cast('float16'), v.cast('float16'), 0));
      assert.equal(fused.dtype, 'float16');
      assertClose(await fused.toArray(), await old.toArray(), {
        dtype: 'float16',
        rtol: 2e-3,
        atol: 5e-4,
        what: 'autocast sdpa',
      });
      const grads = async (y: Tensor): Promise<Float32Array[]> => {
        tidy(() => y.cast('float32').sum().backward());
        const g = await Promise.all([q, k, v].map(async (a) => Float32Array.from(await a.grad!.toArray())));
        [q, k, v].forEach((a) => (a.grad = null));
        return g;
      };
      const [gf, go] = [await grads(fused), await grads(old)];
      gf.forEach((g, i) =>
        assertClose(g, go[i]!, { dtype: 'float16', rtol: 5e-3, atol: 2e-3, what: `autocast sdpa grad ${i}` }),
      );
      [q, k, v, fused, old].forEach((a) => a.dispose());
    },
  );

  if (device === 'webgpu') {
    test('a second shape of the same head size compiles no pipeline', async (t) => {
      const rng = testRng('attention fused pipelines', t);
      const stats = () => getBackend(device).stats().compiles;
      const sdpa = async (shape: number[], tk: number, offset: number) => {
        const q = put(randomND(rng, shape), device);
        const kv = put(randomND(rng, [...shape.slice(0, -2), tk, shape[shape.length - 1]!]), device);
        await F.scaledDotProductAttention(q, kv, kv, { causal: true, causalOffset: offset }).toArray();
        [q, kv].forEach((a) => a.dispose());
      };
      await sdpa([2, 2, 7, 16], 7, 0); // compiles the head size 16 pipeline
      const before = stats();
      await sdpa([1, 4, 30, 16], 45, 15);
      await sdpa([3, 1, 1, 16], 20, 19); // one decoded position after a KV cache
      await sdpa([5, 65, 16], 65, 0); // another batch rank
      assert.equal(stats() - before, 0, 'no pipeline compiled for new shapes and offsets');
    });
  }
});
