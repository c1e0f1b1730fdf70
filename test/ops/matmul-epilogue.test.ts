// matmul's fused epilogue, act(a @ b + bias) + residual, on every backend against the float64 oracle:
// every combination of bias / activation (none, gelu, relu) / residual (none, contiguous, strided) over
// 2-D odd sizes, batched operands (a shared b, broadcast and transposed b), 1-D operands and a long K,
// float32 and float16, and float16 operands with a float32 residual (the autocast epilogue); the shape and
// dtype errors; finite-difference gradients of every input; a GPT whose loss and gradients equal the
// unfused composition; and dispatch counters proving the fused path (a GPT MLP forward is 2 dispatches).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  F,
  GPT,
  arange,
  getBackend,
  matmul,
  noGrad,
  tensor,
  tidy,
  type DType,
  type DeviceName,
  type Tensor,
} from '../../src/index.js';
import { cpuKernelCounters, cpuKernelInfo } from '../../src/backend/cpu/index.js';
import type { MatmulActivation } from '../../src/ops/opcodes.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend, needsDTypes } from '../helpers/backends.js';
import { randomND, testRng, type Rng } from '../helpers/random.js';
import * as O from '../oracle/ops.js';
import { runGradCase, uniform, type GradCase } from '../autograd/util.js';
import { assertThrowsWith, dtypesOn, expectTensor, fromND, stridedView } from './util.js';

type Act = MatmulActivation | null;
type Res = 'none' | 'contiguous' | 'strided';

/** The float64 reference: act(a @ b + c) + r. */
function reference(a: O.ND, b: O.ND, c: O.ND | null, r: O.ND | null, act: Act): O.ND {
  let h = O.matmul(a, b);
  if (c) h = O.binary('add', h, c);
  const y = act ? O.unary(act, h) : h;
  return r ? O.binary('add', y, r) : y;
}

/** [a shape, b shape, b read through a transpose] */
const CASES: [number[], number[], boolean][] = [
  [[17, 5], [5, 9], false],
  [[67, 33], [33, 129], true],
  [[3, 7, 11], [11, 13], false], // batched a @ a shared b: one folded GEMM
  [[2, 3, 5, 4], [4, 6], true],
  [[2, 1, 3, 4], [5, 4, 6], false], // broadcast batch dims
  [[4, 9, 16], [4, 16, 31], true],
  [[7], [7, 5], false], // 1-D a
  [[3, 4], [4], false], // 1-D b (no bias)
  [[5, 1500], [1500, 7], false], // a long K
  // five batch dims that do not merge: WebGPU runs one dispatch per index of the dims beyond four
  [[2, 1, 2, 1, 2, 3, 4], [1, 3, 1, 3, 1, 4, 5], true],
];

/**
 * Runs every epilogue combination of one operand case: operands of `dtype`, the residual of `resDType`
 * (the output's dtype), each output element checked against the rounded oracle.
 */
async function checkCase(
  rng: Rng,
  device: DeviceName,
  [sa, sb, tb]: [number[], number[], boolean],
  dtype: DType,
  resDType: DType,
): Promise<void> {
  const a = randomND(rng, sa, { dtype });
  const b = randomND(rng, sb, { dtype });
  const x = fromND(a, dtype, device);
  const y = tidy(() => (tb ? fromND(O.transpose(b), dtype, device).transpose(-2, -1) : fromND(b, dtype, device)));
  const n = sb.length === 1 ? 1 : sb[sb.length - 1]!;
  const c = randomND(rng, [n], { dtype });
  const z = fromND(c, dtype, device);
  const outShape = O.matmul(a, b).shape;
  const r = randomND(rng, outShape, { dtype: resDType });
  const k = sa[sa.length - 1]!;
  for (const act of [null, 'gelu', 'relu'] as const) {
    for (const bias of sb.length === 1 ? [false] : [false, true]) {
      for (const res of ['none', 'contiguous', 'strided'] as Res[]) {
        if (!act && !bias && res === 'none') continue;
        if (resDType !== dtype && res === 'none') continue;
        const rt =
          res === 'none'
            ? null
            : res === 'contiguous'
              ? fromND(r, resDType, device)
              : tidy(() => stridedView(rng, r, resDType, device));
        const got = tidy(() => matmul(x, y, bias ? z : null, { activation: act, residual: rt }));
        const want = O.roundND(reference(a, b, bias ? c : null, rt ? r : null, act), resDType);
        await expectTensor(got, want, resDType, {
          what: `[${sa}] @ [${sb}]${tb ? '^T' : ''} ${dtype}${bias ? ' + bias' : ''} ${act ?? ''}${rt ? ` + ${res} ${resDType} residual` : ''}`,
          terms: k + 3,
        });
        got.dispose();
        rt?.dispose();
      }
    }
  }
  for (const t of [x, y, z]) t.dispose();
}

// ---------------------------------------------------------------- gradient cases
const gradCases: GradCase[] = [];
const addGrad = (name: string, setup: GradCase['setup'], needs?: readonly DType[]): void => {
  gradCases.push({ name, ops: ['matmul'], setup, ...(needs ? { needs } : {}) });
};
// [label, a, b (its logical shape), b read through a transpose, activation, bias, residual (strided: the residual leaf is its transpose)]
const GRAD: [string, number[], number[], boolean, Act, boolean, Res][] = [
  ['2-D gelu + bias + residual', [3, 4], [4, 5], false, 'gelu', true, 'contiguous'],
  ['2-D relu + bias + residual', [3, 4], [4, 5], false, 'relu', true, 'contiguous'],
  ['2-D gelu only', [3, 4], [4, 5], true, 'gelu', false, 'none'],
  ['2-D relu + bias', [4, 3], [3, 5], false, 'relu', true, 'none'],
  ['2-D residual only, strided', [3, 4], [4, 5], false, null, false, 'strided'],
  ['batched a @ shared b, gelu + bias + residual', [2, 3, 4], [4, 5], false, 'gelu', true, 'contiguous'],
  ['batched a @ batched b^T, relu + residual', [2, 3, 4], [2, 4, 5], true, 'relu', false, 'contiguous'],
  ['1-D a, gelu + bias + residual', [4], [4, 3], false, 'gelu', true, 'contiguous'],
];
for (const [label, sa, sb, tb, act, bias, res] of GRAD) {
  addGrad(`matmul epilogue: ${label}`, (rng) => {
    const outShape = O.matmul(uniform(rng, sa), uniform(rng, sb)).shape;
    const rShape = res === 'strided' ? [...outShape].reverse() : outShape;
    const inputs = [uniform(rng, sa), uniform(rng, tb ? [...sb.slice(0, -2), sb.at(-1)!, sb.at(-2)!] : sb)];
    if (bias) inputs.push(uniform(rng, [sb.at(-1)!]));
    if (res !== 'none') inputs.push(uniform(rng, rShape));
    const bT = (t: O.ND) => (tb ? O.transpose(t) : t);
    return {
      inputs,
      forward: (xs) => {
        const r = res === 'none' ? null : res === 'strided' ? xs.at(-1)!.transpose() : xs.at(-1)!;
        return matmul(xs[0]!, tb ? xs[1]!.transpose(-2, -1) : xs[1]!, bias ? xs[2]! : null, {
          activation: act,
          residual: r,
        });
      },
      reference: (xs) => {
        const r = res === 'none' ? null : res === 'strided' ? O.transpose(xs.at(-1)!) : xs.at(-1)!;
        return reference(xs[0]!, bT(xs[1]!), bias ? xs[2]! : null, r, act);
      },
    };
  });
}
// float16 operands and bias, float32 residual: float32 output; gradients cast back to each leaf's dtype
addGrad(
  'matmul epilogue: float16 operands, float32 residual (autocast), gelu + bias',
  (rng) => ({
    inputs: [uniform(rng, [3, 4]), uniform(rng, [4, 5]), uniform(rng, [5]), uniform(rng, [3, 5])],
    dtypes: ['float16', 'float16', 'float16', 'float32'],
    forward: (xs) => matmul(xs[0]!, xs[1]!, xs[2], { activation: 'gelu', residual: xs[3]! }),
    reference: (xs) => reference(xs[0]!, xs[1]!, xs[2]!, xs[3]!, 'gelu'),
    rtol: 1e-2,
    atol: 1e-2,
  }),
  ['float16'],
);

// ---------------------------------------------------------------- GPT
const GPT_CONFIG = { vocabSize: 13, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0, bias: true };

/** The GPT loss composed from unfused ops (linear, gelu, add) over `model`'s parameters. */
function unfusedLoss(model: GPT, idx: Tensor, targets: Tensor): Tensor {
  return tidy(() => {
    const [B, T] = idx.shape as [number, number];
    const C = GPT_CONFIG.nEmbd;
    const nh = GPT_CONFIG.nHead;
    const lin = (x: Tensor, l: { weight: Tensor; bias: Tensor | null }) => F.linear(x, l.weight, l.bias);
    let x = model.wte.forward(idx).add(model.wpe.forward(arange(0, T, 1, { device: idx.device })));
    for (const blk of model.h) {
      const qkv = lin(blk.ln_1.forward(x), blk.attn.c_attn);
      const [q, k, v] = qkv.split(C, 2).map((t) => t.view([B, T, nh, C / nh]).transpose(1, 2)) as [
        Tensor,
        Tensor,
        Tensor,
      ];
      const att = F.scaledDotProductAttention(q, k, v, { causal: true }).transpose(1, 2).reshape([B, T, C]);
      x = x.add(lin(att, blk.attn.c_proj));
      x = x.add(lin(lin(blk.ln_2.forward(x), blk.mlp.c_fc).gelu(), blk.mlp.c_proj));
    }
    const logits = model.ln_f.forward(x).matmul(model.wte.weight.transpose());
    return F.crossEntropy(logits.reshape([-1, GPT_CONFIG.vocabSize]), targets.reshape([-1]));
  });
}

forEachBackend((device) => {
  for (const dtype of dtypesOn(device, ['float32', 'float16'])) {
    describe(`matmul epilogue ${dtype}`, () => {
      for (const c of CASES) {
        test(`[${c[0]}] @ [${c[1]}]${c[2] ? '^T' : ''}: every bias / activation / residual combination`, async (t) => {
          await checkCase(testRng(`matmul epilogue ${dtype} ${c[0]} ${c[1]}`, t), device, c, dtype, dtype);
        });
      }
    });
  }

  describe('matmul epilogue: float16 operands, float32 residual (float32 output)', () => {
    for (const c of [CASES[0]!, CASES[2]!, CASES[4]!, CASES[5]!, CASES[8]!]) {
      test(`[${c[0]}] @ [${c[1]}]${c[2] ? '^T' : ''}`, needsDTypes(device, ['float16']), async (t) => {
        await checkCase(testRng(`matmul epilogue cast ${c[0]} ${c[1]}`, t), device, c, 'float16', 'float32');
      });
    }
  });

  /** A zero tensor, kept in `made` to be disposed after an error test. */
  const made: Tensor[] = [];
  const mk = (shape: number[], dtype: DType = 'float32') => {
    const t = tensor(new Float32Array(shape.reduce((p, d) => p * d, 1)), { shape, device, dtype });
    made.push(t);
    return t;
  };

  test('matmul epilogue: residual shape and dtype, activation errors name the op', () => {
    assertThrowsWith(
      () => matmul(mk([2, 3]), mk([3, 4]), null, { residual: mk([2, 5]) }),
      ['matmul', 'residual', '[2, 4]', '[2, 5]'],
    );
    assertThrowsWith(() => matmul(mk([2, 3]), mk([3, 4]), null, { residual: mk([4]) }), ['matmul', 'residual']);
    assertThrowsWith(
      () => matmul(mk([2, 3]), mk([3, 4]), null, { residual: mk([2, 4], 'int32') }),
      ['matmul', 'residual', 'int32'],
    );
    assertThrowsWith(
      () => matmul(mk([2, 3]), mk([3, 4]), null, { activation: 'tanh' as unknown as MatmulActivation }),
      ['matmul', 'activation', 'tanh'],
    );
    assertThrowsWith(
      () => F.linear(mk([2, 3]), mk([4, 3]), null, { residual: mk([2, 3]) }),
      ['linear', 'residual', '[2, 4]'],
    );
    for (const t of made.splice(0)) t.dispose();
  });

  test(
    'matmul epilogue: float32 operands with a float16 residual are refused',
    needsDTypes(device, ['float16']),
    () => {
      assertThrowsWith(
        () => matmul(mk([2, 3]), mk([3, 4]), null, { residual: mk([2, 4], 'float16') }),
        ['matmul', 'residual', 'float32', 'float16'],
      );
      for (const t of made.splice(0)) t.dispose();
    },
  );

  for (const c of gradCases) {
    test(`gradient: ${c.name}`, needsDTypes(device, c.needs ?? []), async (t) => {
      await runGradCase(device, c, testRng(`matmul epilogue grad ${c.name}`, t));
    });
  }

  test('GPT (dropout 0): the fused model has the unfused composition loss and gradients', async (t) => {
    const rng = testRng('matmul epilogue gpt', t);
    const model = new GPT(GPT_CONFIG, { device });
    const ids = (n: number) => Array.from({ length: n }, () => rng.int(0, GPT_CONFIG.vocabSize));
    const idx = tensor(Int32Array.from(ids(2 * 7)), { shape: [2, 7], dtype: 'int32', device });
    const targets = tensor(Int32Array.from(ids(2 * 7)), { shape: [2, 7], dtype: 'int32', device });
    const params = model.namedParameters();
    const run = async (loss: Tensor) => {
      loss.backward();
      const grads = await Promise.all(params.map(([, p]) => p.grad!.toArray()));
      for (const [, p] of params) {
        p.grad?.dispose();
        p.grad = null;
      }
      const value = (await loss.toArray())[0]!;
      loss.dispose();
      return { value, grads };
    };
    const fused = await run(model.loss(idx, targets));
    const plain = await run(unfusedLoss(model, idx, targets));
    assertClose([fused.value], [plain.value], { dtype: 'float32', rtol: 1e-5, atol: 1e-6, what: 'loss' });
    params.forEach(([name], i) =>
      assertClose(fused.grads[i]!, Array.from(plain.grads[i]!), {
        dtype: 'float32',
        rtol: 1e-4,
        atol: 1e-6,
        what: `gradient of ${name}`,
      }),
    );
    for (const x of [idx, targets]) x.dispose();
    model.dispose(); // nothing left for the GC to free in a later test's memory accounting
  });

  test('the fused path is taken: a GPT MLP forward is 2 dispatches, a block has no add or gelu kernel', async () => {
    const model = new GPT(GPT_CONFIG, { device });
    const backend = getBackend(device);
    const x = tensor(
      Float32Array.from({ length: 2 * 5 * 16 }, (_, i) => Math.sin(i)),
      { shape: [2, 5, 16], device },
    );
    const blk = [...model.h][0]!;
    for (const grad of [false, true]) {
      await backend.sync();
      const before = backend.stats().dispatches;
      const y = grad ? tidy(() => blk.mlp.forward(x)) : noGrad(() => tidy(() => blk.mlp.forward(x)));
      // unfused: c_fc, gelu, c_proj = 3
      assert.equal(backend.stats().dispatches - before, 2, `MLP forward dispatches (grad ${grad})`);
      y.dispose();
      await backend.sync();
      backend.setProfiling(true);
      const z = grad ? tidy(() => blk.forward(x)) : noGrad(() => tidy(() => blk.forward(x)));
      await z.toArray();
      const p = await backend.takeProfile();
      backend.setProfiling(false);
      const names = p.kernels.filter((k) => k.count > 0 && !/matmul/.test(k.name)).map((k) => k.name);
      assert.deepEqual(
        names.filter((n) => /gelu|\badd\b|_add|add_/.test(n)),
        [],
        `no separate gelu or add kernels in a block forward (grad ${grad}): ${names.join(', ')}`,
      );
      z.dispose();
    }
    x.dispose();
    model.dispose();
  });
});

describe('matmul epilogue on the CPU: large float32 outputs', () => {
  test('gelu and a contiguous residual run on the WASM SIMD kernels (the unfused ops paths) and match the oracle', async (t) => {
    const rng = testRng('matmul epilogue wasm', t);
    const [m, k, n] = [64, 40, 517]; // 33088 outputs: past the WASM gelu (16384) and add (8192) thresholds
    const [a, b, c, r] = [randomND(rng, [m, k]), randomND(rng, [k, n]), randomND(rng, [n]), randomND(rng, [m, n])];
    const before = cpuKernelCounters();
    const ins = [a, b, c, r].map((v) => fromND(v, 'float32', 'cpu')) as [Tensor, Tensor, Tensor, Tensor];
    const y = matmul(ins[0], ins[1], ins[2], { activation: 'gelu', residual: ins[3] });
    const after = cpuKernelCounters();
    if (cpuKernelInfo().wasm) {
      assert.equal(after.geluWasm - before.geluWasm, 1, 'the WASM gelu ran');
      assert.equal(after.binaryWasm - before.binaryWasm, 1, 'the WASM add of the residual ran');
    }
    // the WASM gelu is a float32 polynomial (~2e-7 relative, see cpu-wasm-ew2.test.ts)
    await expectTensor(y, reference(a, b, c, r, 'gelu'), 'float32', {
      rtol: 2e-6,
      atol: 2e-6,
      what: 'fused gelu + residual',
    });
    for (const v of [y, ...ins]) v.dispose();
  });
});
