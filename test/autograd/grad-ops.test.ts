// Finite-difference check of every differentiable op: a table of cases, each a small computation
// with fresh seeded random inputs in a domain where it is smooth. For each case the library's float32
// gradient (backward with a random upstream gradient) is compared, element by element, with central
// differences of the float64 oracle (test/oracle) contracted with the same upstream; tolerance
// GRAD_TOL (rtol 1e-3, atol 1e-4; see util.ts). A coverage test fails when an op with a gradient rule
// in GRAD_RULES is exercised by no case, and each case checks that its ops really were recorded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  F,
  GRAD_RULES,
  adaptiveAvgPool2d,
  attention,
  avgPool2d,
  batchNorm,
  binary,
  cat,
  conv2d,
  embedding,
  matmul,
  maxPool2d,
  stack,
  where,
  type DType,
  type Tensor,
} from '../../src/index.js';
import type { BinaryOp, OpCode, UnaryOp } from '../../src/ops/opcodes.js';
import * as O from '../oracle/ops.js';
import * as OC from '../oracle/conv.js';
import * as OP from '../oracle/pool.js';
import * as OB from '../oracle/batchnorm.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend, needsDTypes } from '../helpers/backends.js';
import { testRng, type Rng } from '../helpers/random.js';
import { awayFromZero, distinct, fromND, grid, indices, runGradCase, uniform, type GradCase } from './util.js';

const cases: GradCase[] = [];
const add = (name: string, ops: readonly OpCode[], setup: GradCase['setup'], needs?: readonly DType[]): void => {
  cases.push({ name, ops, setup, ...(needs ? { needs } : {}) });
};
const x0 = (xs: Tensor[]): Tensor => xs[0]!;
const x1 = (xs: Tensor[]): Tensor => xs[1]!;
const n0 = (xs: O.ND[]): O.ND => xs[0]!;
const n1 = (xs: O.ND[]): O.ND => xs[1]!;

// ---------------------------------------------------------------- unary
const UNARY_DOMAIN: Partial<Record<UnaryOp, (rng: Rng, shape: number[]) => O.ND>> = {
  neg: (r, s) => uniform(r, s, -2, 2),
  abs: (r, s) => awayFromZero(r, s, 0.1, 2), // kink at 0
  exp: (r, s) => uniform(r, s, -2, 2),
  log: (r, s) => uniform(r, s, 0.3, 3), // positive
  sqrt: (r, s) => uniform(r, s, 0.3, 3),
  rsqrt: (r, s) => uniform(r, s, 0.3, 3),
  reciprocal: (r, s) => awayFromZero(r, s, 0.3, 3), // pole at 0; both signs
  sin: (r, s) => uniform(r, s, -3, 3),
  cos: (r, s) => uniform(r, s, -3, 3),
  tanh: (r, s) => uniform(r, s, -2, 2),
  sigmoid: (r, s) => uniform(r, s, -4, 4),
  relu: (r, s) => awayFromZero(r, s, 0.1, 2), // kink at 0
  gelu: (r, s) => uniform(r, s, -3, 3),
};
for (const [op, domain] of Object.entries(UNARY_DOMAIN) as [UnaryOp, (rng: Rng, shape: number[]) => O.ND][]) {
  add(`${op} [3, 4]`, [op], (rng) => ({
    inputs: [domain(rng, [3, 4])],
    forward: (xs) => x0(xs)[op as 'neg'](),
    reference: (xs) => O.unary(op, n0(xs)),
  }));
  // a non-contiguous (transposed) input, reduced to a scalar so that the implicit-gradient path runs too
  add(`${op} of a transposed view, summed`, [op, 'permute', 'sum'], (rng) => ({
    inputs: [domain(rng, [4, 3])],
    forward: (xs) => x0(xs).transpose()[op as 'neg']().sum(),
    reference: (xs) => O.sum(O.unary(op, O.transpose(n0(xs)))),
  }));
}

// ---------------------------------------------------------------- binary
type Domain = (rng: Rng, shape: number[]) => O.ND;
const BINARY_DOMAIN: Partial<Record<BinaryOp, { a: Domain; b: Domain; sa: number; sb: number }>> = {
  add: { a: (r, s) => uniform(r, s), b: (r, s) => uniform(r, s), sa: 1.25, sb: -0.75 },
  sub: { a: (r, s) => uniform(r, s), b: (r, s) => uniform(r, s), sa: 1.25, sb: -0.75 },
  mul: { a: (r, s) => uniform(r, s), b: (r, s) => uniform(r, s), sa: 1.25, sb: -0.75 },
  div: { a: (r, s) => uniform(r, s), b: (r, s) => awayFromZero(r, s, 0.4, 2), sa: 1.25, sb: -0.75 },
  // positive base; scalar exponent 2.5, scalar base 1.5
  pow: { a: (r, s) => uniform(r, s, 0.4, 2), b: (r, s) => uniform(r, s, -1.5, 1.5), sa: 1.5, sb: 2.5 },
  // odd vs even grid: never within 0.04 of each other (or of the even-grid scalars 0.3 / -0.2)
  maximum: { a: (r, s) => grid(r, s, 1), b: (r, s) => grid(r, s, 0), sa: 0.3, sb: -0.2 },
  minimum: { a: (r, s) => grid(r, s, 1), b: (r, s) => grid(r, s, 0), sa: 0.3, sb: -0.2 },
};
const SHAPE_PAIRS: [string, number[], number[]][] = [
  ['same shape', [3, 4], [3, 4]],
  ['broadcast both ways', [2, 1, 4], [3, 1]], // -> [2, 3, 4]; both operands are stretched
  ['left operand broadcast (fewer dims)', [4], [2, 3, 4]],
  ['right operand broadcast (size-1 dims)', [2, 3, 4], [2, 1, 1]],
  ['0-d tensor operand', [3, 4], []],
];
for (const [op, d] of Object.entries(BINARY_DOMAIN) as [BinaryOp, { a: Domain; b: Domain; sa: number; sb: number }][]) {
  for (const [label, sa, sb] of SHAPE_PAIRS) {
    add(`${op} ${label} [${sa}] , [${sb}]`, [op], (rng) => ({
      inputs: [d.a(rng, sa), d.b(rng, sb)],
      forward: (xs) => binary(op, x0(xs), x1(xs)),
      reference: (xs) => O.binary(op, n0(xs), n1(xs)),
    }));
  }
  add(`${op} tensor with scalar right operand (${d.sb})`, [op], (rng) => ({
    inputs: [d.a(rng, [3, 4])],
    forward: (xs) => binary(op, x0(xs), d.sb),
    reference: (xs) => O.binary(op, n0(xs), d.sb),
  }));
  add(`${op} scalar left operand (${d.sa}) with tensor`, [op], (rng) => ({
    inputs: [d.b(rng, [3, 4])],
    forward: (xs) => binary(op, d.sa, x0(xs)),
    reference: (xs) => O.binary(op, d.sa, n0(xs)),
  }));
}
add('pow with an integer scalar exponent (x^2)', ['pow'], (rng) => ({
  inputs: [uniform(rng, [3, 4], 0.4, 2)],
  forward: (xs) => x0(xs).pow(2),
  reference: (xs) => O.binary('pow', n0(xs), 2),
}));
add('clamp(-0.3, 0.3) (maximum and minimum with scalars)', ['maximum', 'minimum'], (rng) => ({
  inputs: [grid(rng, [4, 5], 1)],
  forward: (xs) => x0(xs).clamp(-0.3, 0.3),
  reference: (xs) => O.mapND(n0(xs), (v) => Math.min(Math.max(v, -0.3), 0.3)),
}));
add('same tensor on both sides of mul (x * x)', ['mul'], (rng) => ({
  inputs: [uniform(rng, [3, 4])],
  forward: (xs) => x0(xs).mul(x0(xs)),
  reference: (xs) => O.mul(n0(xs), n0(xs)),
}));

// ---------------------------------------------------------------- where, cast, copy
add('where, condition [3, 1], a [1, 4], b [3, 4]', ['where'], (rng) => {
  const cond = O.mapND(uniform(rng, [3, 1]), (v) => (v > 0 ? 1 : 0));
  cond.data[0] = 1; // both branches are taken
  cond.data[1] = 0;
  return {
    inputs: [uniform(rng, [1, 4]), uniform(rng, [3, 4])],
    forward: (xs, device) => where(fromND(cond, device, { dtype: 'bool' }), x0(xs), x1(xs)),
    reference: (xs) => O.where(cond, n0(xs), n1(xs)),
  };
});
add('maskedFill (where with a scalar branch)', ['where'], (rng) => {
  const mask = O.mapND(uniform(rng, [3, 4]), (v) => (v > 0 ? 1 : 0));
  return {
    inputs: [uniform(rng, [3, 4])],
    forward: (xs, device) => x0(xs).maskedFill(fromND(mask, device, { dtype: 'bool' }), -2),
    reference: (xs) => O.where(mask, -2, n0(xs)),
  };
});
add(
  'cast float32 -> float16 -> float32 round trip',
  ['cast'],
  (rng) => ({
    inputs: [uniform(rng, [3, 4], -2, 2)],
    forward: (xs) => x0(xs).cast('float16').cast('float32'),
    reference: (xs) => O.roundND(n0(xs), 'float16'),
    forwardDType: 'float16',
    // a cast is the identity in exact arithmetic; its rounding is piecewise constant and has no useful derivative
    gradReference: n0,
  }),
  ['float16'],
);
add(
  'cast of a float16 leaf to float32 (gradient comes back as float16)',
  ['cast', 'mul'],
  (rng) => {
    const w = uniform(rng, [3, 4]);
    return {
      inputs: [uniform(rng, [3, 4], -2, 2)],
      dtypes: ['float16'],
      forward: (xs, device) => x0(xs).cast('float32').mul(fromND(w, device)),
      reference: (xs) => O.mul(n0(xs), w),
      rtol: 2e-3, // the float32 gradient is rounded once to float16 (2^-11 relative)
      atol: 1e-3,
    };
  },
  ['float16'],
);
add('copy (clone)', ['copy'], (rng) => ({
  inputs: [uniform(rng, [3, 4])],
  forward: (xs) => x0(xs).clone().mul(x0(xs)),
  reference: (xs) => O.mul(n0(xs), n0(xs)),
}));
add('copy (contiguous() of a permuted view)', ['copy', 'permute'], (rng) => ({
  inputs: [uniform(rng, [2, 3, 4])],
  forward: (xs) => x0(xs).permute([2, 0, 1]).contiguous(),
  reference: (xs) => O.permute(n0(xs), [2, 0, 1]),
}));

// ---------------------------------------------------------------- reductions
const AXES: [number | number[] | undefined, boolean][] = [
  [undefined, false],
  [undefined, true],
  [0, false],
  [1, true],
  [-1, false],
  [[0, 2], false],
  [[0, 2], true],
  [[1, 2], true],
];
for (const [axes, keepdim] of AXES) {
  const label = `axes ${JSON.stringify(axes) ?? 'all'}, keepdim ${keepdim}`;
  add(`sum ${label}`, ['sum'], (rng) => ({
    inputs: [uniform(rng, [2, 3, 4])],
    forward: (xs) => x0(xs).sum(axes, keepdim),
    reference: (xs) => O.sum(n0(xs), axes, keepdim),
  }));
  for (const op of ['max', 'min'] as const) {
    add(`${op} ${label} (distinct values)`, [op], (rng) => ({
      inputs: [distinct(rng, [2, 3, 4])],
      forward: (xs) => x0(xs)[op](axes, keepdim),
      reference: (xs) => O[op](n0(xs), axes, keepdim),
    }));
  }
  add(`mean ${label}`, ['sum', 'mul'], (rng) => ({
    inputs: [uniform(rng, [2, 3, 4])],
    forward: (xs) => x0(xs).mean(axes, keepdim),
    reference: (xs) => O.mean(n0(xs), axes, keepdim),
  }));
  add(`logSumExp ${label}`, ['sub', 'exp', 'sum', 'log', 'add'], (rng) => ({
    inputs: [uniform(rng, [2, 3, 4], -3, 3)],
    forward: (xs) => x0(xs).logSumExp(axes, keepdim),
    reference: (xs) => logSumExpRef(n0(xs), axes, keepdim),
  }));
}
add('sum over an explicit empty axis list (reduces nothing)', ['sum'], (rng) => ({
  inputs: [uniform(rng, [2, 3])],
  forward: (xs) => x0(xs).sum([]),
  reference: (xs) => O.sum(n0(xs), []),
}));
for (const [axes, correction, keepdim] of [
  [undefined, 1, false],
  [1, 1, false],
  [[0, 2], 0, true],
  [-1, 0, false],
] as [number | number[] | undefined, number, boolean][]) {
  add(
    `var axes ${JSON.stringify(axes) ?? 'all'}, correction ${correction}, keepdim ${keepdim}`,
    ['sub', 'mul', 'sum', 'div'],
    (rng) => ({
      inputs: [uniform(rng, [2, 3, 4])],
      forward: (xs) => x0(xs).var(axes, { correction, keepdim }),
      reference: (xs) => O.variance(n0(xs), axes, { correction, keepdim }),
    }),
  );
}
/** log(sum(exp(x))) in float64, shifted by the max for stability (no oracle op exists for it). */
function logSumExpRef(x: O.ND, axes: number | number[] | undefined, keepdim: boolean): O.ND {
  const m = O.max(x, axes, true);
  const s = O.sum(O.unary('exp', O.sub(x, m)), axes, true);
  const out = O.add(O.unary('log', s), m);
  return keepdim ? out : O.reshape(out, O.reducedShape(x.shape, O.normAxes(axes, x.shape.length), false));
}
for (const op of ['softmax', 'logSoftmax'] as const) {
  for (const axis of [0, 1, -1]) {
    add(`${op} axis ${axis} of [2, 3, 4]`, [op], (rng) => ({
      inputs: [uniform(rng, [2, 3, 4], -3, 3)],
      forward: (xs) => x0(xs)[op](axis),
      reference: (xs) => O[op](n0(xs), axis),
    }));
  }
}

// ---------------------------------------------------------------- matmul
const MATMUL: [string, number[], number[]][] = [
  ['2-D', [3, 4], [4, 5]],
  ['batched, same batch', [2, 3, 4], [2, 4, 5]],
  ['batched broadcast both ways', [2, 1, 3, 4], [3, 4, 2]],
  ['batched @ 2-D', [2, 3, 4], [4, 5]],
  ['2-D @ batched', [3, 4], [2, 4, 5]],
  ['1-D @ 2-D', [4], [4, 5]],
  ['2-D @ 1-D', [3, 4], [4]],
  ['1-D @ 1-D (dot)', [4], [4]],
  ['1-D @ batched', [4], [2, 4, 3]],
  ['batched @ 1-D', [2, 3, 4], [4]],
];
for (const [label, sa, sb] of MATMUL) {
  add(`matmul ${label} [${sa}] @ [${sb}]`, ['matmul'], (rng) => ({
    inputs: [uniform(rng, sa), uniform(rng, sb)],
    forward: (xs) => x0(xs).matmul(x1(xs)),
    reference: (xs) => O.matmul(n0(xs), n1(xs)),
  }));
}
// the fused bias (matmul's optional third input): its gradient sums the output's over every leading dim
const MATMUL_BIAS: [string, number[], number[], boolean][] = [
  ['2-D', [3, 4], [4, 5], false],
  ['batched @ shared 2-D (Linear)', [2, 3, 4], [4, 5], false],
  ['batched @ batched, b transposed', [2, 3, 4], [2, 5, 4], true],
  ['1-D @ 2-D', [4], [4, 3], false],
];
for (const [label, sa, sb, tb] of MATMUL_BIAS) {
  add(`matmul with a bias, ${label} [${sa}] @ [${sb}]${tb ? '^T' : ''}`, ['matmul'], (rng) => ({
    inputs: [uniform(rng, sa), uniform(rng, sb), uniform(rng, [tb ? sb[sb.length - 2]! : sb[sb.length - 1]!])],
    forward: (xs) => matmul(x0(xs), tb ? x1(xs).transpose(-2, -1) : x1(xs), xs[2]),
    reference: (xs) => O.binary('add', O.matmul(n0(xs), tb ? O.transpose(n1(xs), -2, -1) : n1(xs)), xs[2]!),
  }));
}
add('matmul of transposed operands (a^T @ b^T)', ['matmul', 'permute'], (rng) => ({
  inputs: [uniform(rng, [4, 3]), uniform(rng, [5, 4])],
  forward: (xs) => x0(xs).transpose().matmul(x1(xs).transpose()),
  reference: (xs) => O.matmul(O.transpose(n0(xs)), O.transpose(n1(xs))),
}));
add('matmul of a transposed batch @ a transposed shared weight (the tied GPT head)', ['matmul', 'permute'], (rng) => ({
  inputs: [uniform(rng, [3, 2, 4]), uniform(rng, [5, 4])],
  forward: (xs) => x0(xs).transpose(0, 1).matmul(x1(xs).transpose()),
  reference: (xs) => O.matmul(O.transpose(n0(xs), 0, 1), O.transpose(n1(xs))),
}));
add('matmul of a 4-D batch @ a shared 2-D weight', ['matmul'], (rng) => ({
  inputs: [uniform(rng, [2, 2, 3, 4]), uniform(rng, [4, 3])],
  forward: (xs) => x0(xs).matmul(x1(xs)),
  reference: (xs) => O.matmul(n0(xs), n1(xs)),
}));
add('matmul of a batched transposed operand (q @ k^T)', ['matmul', 'permute'], (rng) => ({
  inputs: [uniform(rng, [2, 3, 4]), uniform(rng, [2, 5, 4])],
  forward: (xs) => x0(xs).matmul(x1(xs).transpose(-2, -1)),
  reference: (xs) => O.matmul(n0(xs), O.transpose(n1(xs), -2, -1)),
}));

// ---------------------------------------------------------------- indexing
for (const dim of [0, 1, -1]) {
  add(`gather dim ${dim} of [4, 5] (repeated indices)`, ['gather'], (rng) => {
    const d = dim < 0 ? dim + 2 : dim;
    const ishape = d === 0 ? [6, 3] : [3, 7];
    const idx = indices(rng, ishape, [4, 5][d]!);
    return {
      inputs: [uniform(rng, [4, 5])],
      forward: (xs, device) => x0(xs).gather(dim, fromND(idx, device, { dtype: 'int32' })),
      reference: (xs) => O.gather(n0(xs), dim, idx),
    };
  });
}
add('gather dim 1 of a 3-D tensor', ['gather'], (rng) => {
  const idx = indices(rng, [2, 4, 3], 3);
  return {
    inputs: [uniform(rng, [2, 3, 3])],
    forward: (xs, device) => x0(xs).gather(1, fromND(idx, device, { dtype: 'int32' })),
    reference: (xs) => O.gather(n0(xs), 1, idx),
  };
});
for (const dim of [0, 1]) {
  add(`scatterAdd dim ${dim} (gradient wrt self and src)`, ['scatterAdd'], (rng) => {
    const self = [4, 3];
    const src = dim === 0 ? [5, 3] : [4, 5];
    const idx = indices(rng, src, self[dim]!);
    return {
      inputs: [uniform(rng, self), uniform(rng, src)],
      forward: (xs, device) => x0(xs).scatterAdd(dim, fromND(idx, device, { dtype: 'int32' }), x1(xs)),
      reference: (xs) => O.scatterAdd(n0(xs), dim, idx, n1(xs)),
    };
  });
  add(`indexSelect dim ${dim} (repeated indices)`, ['indexSelect'], (rng) => {
    const idx = indices(rng, [6], [5, 3][dim]!);
    return {
      inputs: [uniform(rng, [5, 3])],
      forward: (xs, device) => x0(xs).indexSelect(dim, fromND(idx, device, { dtype: 'int32' })),
      reference: (xs) => O.indexSelect(n0(xs), dim, idx),
    };
  });
  add(`indexAdd dim ${dim} (gradient wrt self and src)`, ['indexAdd'], (rng) => {
    const self = [5, 3];
    const src = dim === 0 ? [4, 3] : [5, 4];
    const idx = indices(rng, [4], self[dim]!);
    return {
      inputs: [uniform(rng, self), uniform(rng, src)],
      forward: (xs, device) => x0(xs).indexAdd(dim, fromND(idx, device, { dtype: 'int32' }), x1(xs)),
      reference: (xs) => O.indexAdd(n0(xs), dim, idx, n1(xs)),
    };
  });
}
add('embedding (ids [2, 4] with repeats, weight [6, 3])', ['indexSelect', 'reshape'], (rng) => {
  const ids = indices(rng, [2, 4], 6);
  return {
    inputs: [uniform(rng, [6, 3])],
    forward: (xs, device) => embedding(fromND(ids, device, { dtype: 'int32' }), x0(xs)),
    reference: (xs) => O.embedding(ids, n0(xs)),
  };
});

// ---------------------------------------------------------------- joining and splitting
add('cat along dim 1 of [2, 3], [2, 1], [2, 2]', ['concat'], (rng) => ({
  inputs: [uniform(rng, [2, 3]), uniform(rng, [2, 1]), uniform(rng, [2, 2])],
  forward: (xs) => cat(xs, 1),
  reference: (xs) => O.concat(xs, 1),
}));
add('cat along dim 0 (method form, same tensor twice)', ['concat'], (rng) => ({
  inputs: [uniform(rng, [2, 3]), uniform(rng, [1, 3])],
  forward: (xs) => x0(xs).cat([x1(xs), x0(xs)], 0),
  reference: (xs) => O.concat([n0(xs), n1(xs), n0(xs)], 0),
}));
for (const axis of [0, 1, -1]) {
  add(`stack of three [2, 3] along ${axis}`, ['concat', 'reshape'], (rng) => ({
    inputs: [uniform(rng, [2, 3]), uniform(rng, [2, 3]), uniform(rng, [2, 3])],
    forward: (xs) => stack(xs, axis),
    reference: (xs) => O.stack(xs, axis),
  }));
}
add('split [2, 3, 2] along dim 1, pieces used differently and rejoined', ['slice', 'concat', 'exp', 'mul'], (rng) => ({
  inputs: [uniform(rng, [3, 7])],
  forward: (xs) => {
    const [p0, p1, p2] = x0(xs).split([2, 3, 2], 1) as [Tensor, Tensor, Tensor];
    return cat([p2.mul(2), p0.exp(), p1], 1);
  },
  reference: (xs) => {
    const [p0, p1, p2] = O.split(n0(xs), [2, 3, 2], 1) as [O.ND, O.ND, O.ND];
    return O.concat([O.mul(p2, 2), O.unary('exp', p0), p1], 1);
  },
}));
add('split by size 2 along dim 0 with an unused piece', ['slice'], (rng) => ({
  inputs: [uniform(rng, [5, 3])],
  forward: (xs) => {
    const parts = x0(xs).split(2, 0);
    return parts[0]!.mul(parts[2]!.sum());
  },
  reference: (xs) => {
    const parts = O.split(n0(xs), 2, 0);
    return O.mul(parts[0]!, O.sum(parts[2]!));
  },
}));
add('chunk into 3 along dim 1', ['slice', 'mul'], (rng) => ({
  inputs: [uniform(rng, [2, 6])],
  forward: (xs) => {
    const [a, b, c] = x0(xs).chunk(3, 1) as [Tensor, Tensor, Tensor];
    return a.mul(b).add(c);
  },
  reference: (xs) => {
    const [a, b, c] = O.split(n0(xs), 2, 1) as [O.ND, O.ND, O.ND];
    return O.add(O.mul(a, b), c);
  },
}));

// ---------------------------------------------------------------- views
add('reshape [2, 3, 4] -> [4, 6] (a view)', ['reshape'], (rng) => ({
  inputs: [uniform(rng, [2, 3, 4])],
  forward: (xs) =>
    x0(xs)
      .reshape([4, 6])
      .mul(x0(xs).reshape([4, -1])),
  reference: (xs) => O.mul(O.reshape(n0(xs), [4, 6]), O.reshape(n0(xs), [4, 6])),
}));
add('reshape of a transposed tensor (copies)', ['reshape', 'copy', 'permute'], (rng) => ({
  inputs: [uniform(rng, [3, 4])],
  forward: (xs) => x0(xs).transpose().reshape([12]),
  reference: (xs) => O.reshape(O.transpose(n0(xs)), [12]),
}));
add('view and flatten', ['reshape'], (rng) => ({
  inputs: [uniform(rng, [2, 3, 4])],
  forward: (xs) => x0(xs).view([6, 4]).flatten().reshape([2, 12]).mul(x0(xs).flatten(1)),
  reference: (xs) => O.mul(O.reshape(n0(xs), [2, 12]), O.reshape(n0(xs), [2, 12])),
}));
add('permute [2, 0, 1]', ['permute'], (rng) => ({
  inputs: [uniform(rng, [2, 3, 4])],
  forward: (xs) => x0(xs).permute([2, 0, 1]).mul(2),
  reference: (xs) => O.mul(O.permute(n0(xs), [2, 0, 1]), 2),
}));
add('transpose(0, 2) then transpose(1, 2)', ['permute'], (rng) => ({
  inputs: [uniform(rng, [2, 3, 4])],
  forward: (xs) => x0(xs).transpose(0, 2).transpose(1, 2).mul(3),
  reference: (xs) => O.mul(O.transpose(O.transpose(n0(xs), 0, 2), 1, 2), 3),
}));
add('slice with step 2 along dim 0', ['slice'], (rng) => ({
  inputs: [uniform(rng, [7, 3])],
  forward: (xs) => x0(xs).slice(0, 1, 7, 2).mul(2),
  reference: (xs) => O.mul(O.slice(n0(xs), 0, 1, 7, 2), 2),
}));
add('slice with step 3 and negative bounds along the last dim', ['slice'], (rng) => ({
  inputs: [uniform(rng, [2, 9])],
  forward: (xs) => x0(xs).slice(-1, -8, -1, 3).exp(),
  reference: (xs) => O.unary('exp', O.slice(n0(xs), -1, -8, -1, 3)),
}));
add('overlapping slices of the same tensor', ['slice', 'mul'], (rng) => ({
  inputs: [uniform(rng, [6, 2])],
  forward: (xs) =>
    x0(xs)
      .slice(0, 0, 4)
      .mul(x0(xs).slice(0, 2, 6)),
  reference: (xs) => O.mul(O.slice(n0(xs), 0, 0, 4), O.slice(n0(xs), 0, 2, 6)),
}));
add('slice of a transposed view with step', ['slice', 'permute'], (rng) => ({
  inputs: [uniform(rng, [5, 4])],
  forward: (xs) => x0(xs).transpose().slice(1, 0, 5, 2),
  reference: (xs) => O.slice(O.transpose(n0(xs)), 1, 0, 5, 2),
}));
add('narrow(1, 1, 2)', ['slice'], (rng) => ({
  inputs: [uniform(rng, [3, 4])],
  forward: (xs) =>
    x0(xs)
      .narrow(1, 1, 2)
      .mul(x0(xs).narrow(1, 0, 2)),
  reference: (xs) => O.mul(O.slice(n0(xs), 1, 1, 3), O.slice(n0(xs), 1, 0, 2)),
}));
add('select(0, 1) and select(-1, -1)', ['slice', 'reshape'], (rng) => ({
  inputs: [uniform(rng, [3, 4])],
  forward: (xs) => x0(xs).select(0, 1).mul(2).add(x0(xs).select(-1, -1).sum()),
  reference: (xs) => {
    const x = n0(xs);
    return O.add(O.mul(O.reshape(O.slice(x, 0, 1, 2), [4]), 2), O.sum(O.slice(x, 1, 3, 4)));
  },
}));
add('expand [3, 1] -> [2, 3, 4]', ['expand'], (rng) => ({
  inputs: [uniform(rng, [3, 1])],
  forward: (xs) => x0(xs).expand([2, 3, 4]),
  reference: (xs) => O.broadcastTo(n0(xs), [2, 3, 4]),
}));
add('expand [1, 4] -> [3, -1] times a [3, 4] tensor', ['expand', 'mul'], (rng) => ({
  inputs: [uniform(rng, [1, 4]), uniform(rng, [3, 4])],
  forward: (xs) => x0(xs).expand([3, -1]).mul(x1(xs)),
  reference: (xs) => O.mul(O.broadcastTo(n0(xs), [3, 4]), n1(xs)),
}));
add('unsqueeze(1) then squeeze(1), squeeze()', ['reshape'], (rng) => ({
  inputs: [uniform(rng, [3, 1, 4])],
  forward: (xs) => x0(xs).squeeze(1).unsqueeze(0).unsqueeze(-1).squeeze().mul(x0(xs).squeeze()),
  reference: (xs) => O.mul(O.reshape(n0(xs), [3, 4]), O.reshape(n0(xs), [3, 4])),
}));
for (const [dim, want] of [
  [0, [1, 3, 4]],
  [1, [3, 1, 4]],
  [2, [3, 4, 1]],
  [-1, [3, 4, 1]],
  [-2, [3, 1, 4]],
  [-3, [1, 3, 4]],
] as [number, number[]][]) {
  add(`unsqueeze(${dim}) of [3, 4] is [${want}]`, ['reshape', 'mul'], (rng) => ({
    inputs: [uniform(rng, [3, 4]), uniform(rng, want)],
    forward: (xs) => x0(xs).unsqueeze(dim).mul(x1(xs)),
    reference: (xs) => O.mul(O.reshape(n0(xs), want), n1(xs)),
  }));
}
for (const k of [0, 1, -1]) {
  add(`triu(${k}) and tril(${k}) of [4, 5]`, ['where', 'add'], (rng) => ({
    inputs: [uniform(rng, [4, 5]), uniform(rng, [4, 5])],
    forward: (xs) => x0(xs).triu(k).add(x1(xs).tril(k).mul(3)),
    reference: (xs) => O.add(O.triu(n0(xs), k), O.mul(O.tril(n1(xs), k), 3)),
  }));
}
add('triu/tril of a batched [2, 3, 3]', ['where'], (rng) => ({
  inputs: [uniform(rng, [2, 3, 3])],
  forward: (xs) => x0(xs).tril().mul(x0(xs).triu(1).add(1)),
  reference: (xs) => O.mul(O.tril(n0(xs)), O.add(O.triu(n0(xs), 1), 1)),
}));

// ---------------------------------------------------------------- fused row ops (F.crossEntropy, F.layerNorm)
for (const [label, shape, eps, reduction, transposed] of [
  ['mean, smoothing 0.1, [5, 4]', [5, 4], 0.1, 'mean', false],
  ['sum, no smoothing, [2, 3, 6]', [2, 3, 6], 0, 'sum', false],
  ['none, smoothing 0.3, logits a transposed view [4, 3]^T', [4, 3], 0.3, 'none', true],
] as [string, number[], number, 'mean' | 'sum' | 'none', boolean][]) {
  add(`crossEntropy ${label} with an ignored position`, ['crossEntropyRows'], (rng) => {
    const lshape = transposed ? [...shape].reverse() : shape; // the logits as the model sees them
    const C = lshape[lshape.length - 1]!;
    const idx = indices(rng, lshape.slice(0, -1), C);
    idx.data[0] = -100;
    return {
      inputs: [uniform(rng, shape, -3, 3)],
      forward: (xs, device) => {
        const z = transposed ? x0(xs).transpose() : x0(xs);
        return F.crossEntropy(z, fromND(idx, device, { dtype: 'int32' }), { labelSmoothing: eps, reduction });
      },
      reference: (xs) => {
        const z = transposed ? O.transpose(n0(xs)) : n0(xs);
        return O.crossEntropy(z, idx, { labelSmoothing: eps, reduction });
      },
    };
  });
}
add('layerNorm over [5] with weight and bias of [3, 5]', ['layerNorm'], (rng) => ({
  inputs: [uniform(rng, [3, 5], -2, 2), uniform(rng, [5], 0.5, 1.5), uniform(rng, [5])],
  forward: (xs) => F.layerNorm(x0(xs), 5, x1(xs), xs[2]),
  reference: (xs) => O.layerNorm(n0(xs), 1, { weight: n1(xs), bias: xs[2]! }),
}));
add('layerNorm over [3, 4] of [2, 3, 4] without affine, eps 1e-3', ['layerNorm'], (rng) => ({
  inputs: [uniform(rng, [2, 3, 4], -2, 2)],
  forward: (xs) => F.layerNorm(x0(xs), [3, 4], null, null, 1e-3),
  reference: (xs) => O.layerNorm(n0(xs), [3, 4], { eps: 1e-3 }),
}));
add('layerNorm of a transposed view [6, 4]^T with weight only', ['layerNorm', 'permute'], (rng) => ({
  inputs: [uniform(rng, [6, 4], -2, 2), uniform(rng, [6], 0.5, 1.5)],
  forward: (xs) => F.layerNorm(x0(xs).transpose(), 6, x1(xs)),
  reference: (xs) => O.layerNorm(O.transpose(n0(xs)), 1, { weight: n1(xs) }),
}));

add('fused causal attention of q, k [2, 4, 3], v [2, 4, 5]', ['attention'], (rng) => ({
  inputs: [uniform(rng, [2, 4, 3]), uniform(rng, [2, 4, 3]), uniform(rng, [2, 4, 5])],
  forward: (xs) => attention(x0(xs), x1(xs), xs[2]!, { scale: 0.7, causal: 0 }),
  reference: (xs) => O.attention(n0(xs), n1(xs), xs[2]!, { scale: 0.7 }),
}));

// ---------------------------------------------------------------- a composite (linear -> gelu -> log-softmax -> picked loss)
add(
  'composite: linear + gelu + logSoftmax + gather + mean',
  ['matmul', 'add', 'gelu', 'logSoftmax', 'gather', 'sum'],
  (rng) => {
    const targets = indices(rng, [4, 1], 5);
    return {
      inputs: [uniform(rng, [4, 3]), uniform(rng, [5, 3]), uniform(rng, [5])],
      forward: (xs, device) => {
        const h = x0(xs).matmul(x1(xs).transpose()).add(xs[2]!).gelu().logSoftmax(-1);
        return h
          .gather(1, fromND(targets, device, { dtype: 'int32' }))
          .mean()
          .neg();
      },
      reference: (xs) => {
        const h = O.logSoftmax(O.unary('gelu', O.add(O.matmul(n0(xs), O.transpose(n1(xs))), xs[2]!)), -1);
        return O.unary('neg', O.mean(O.gather(h, 1, targets)));
      },
    };
  },
);

// ---------------------------------------------------------------- conv2d (strided, padded, dilated, grouped, with bias)
add(
  'conv2d [2, 4, 5, 6] * [6, 2, 3, 2] + bias, stride (2, 1), padding (1, 2), dilation (1, 2), groups 2',
  ['conv2d'],
  (rng) => {
    const p: OC.ConvParams = { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 };
    return {
      inputs: [uniform(rng, [2, 4, 5, 6]), uniform(rng, [6, 2, 3, 2]), uniform(rng, [6])],
      forward: (xs) => conv2d(x0(xs), x1(xs), xs[2], p),
      reference: (xs) => OC.conv2d(n0(xs), n1(xs), xs[2]!, p),
    };
  },
);

// conv_transpose2d runs as conv2d's input-gradient op, differentiable for it: the reference is the adjoint
add(
  'convTranspose2d [2, 4, 3, 2] * [4, 3, 3, 2], stride (2, 1), padding (1, 0), outputPadding (1, 0), dilation (1, 2), groups 2',
  ['conv2dBackwardInput'],
  (rng) => {
    const p: OC.ConvParams = { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 2 };
    return {
      inputs: [uniform(rng, [2, 4, 3, 2]), uniform(rng, [4, 3, 3, 2])],
      forward: (xs) => F.convTranspose2d(x0(xs), x1(xs), null, { ...p, outputPadding: [1, 0] }),
      reference: (xs) => OC.conv2dGradInput(n0(xs), n1(xs), [2, 6, 6, 4], p),
    };
  },
);

// ---------------------------------------------------------------- pooling and batch norm (tensor/pool.ts, tensor/batchnorm.ts)
add('maxPool2d [2, 2, 5, 6] kernel (3, 2), stride 2, padding 1, dilation (1, 2), ceil mode', ['maxPool2d'], (rng) => {
  const g: OP.PoolGeometry = { kernel: [3, 2], stride: [2, 2], padding: [1, 1], dilation: [1, 2], ceilMode: true };
  return {
    inputs: [distinct(rng, [2, 2, 5, 6])], // no ties: the max is differentiable
    forward: (xs) => maxPool2d(x0(xs), { kernelSize: [3, 2], stride: 2, padding: 1, dilation: [1, 2], ceilMode: true }),
    reference: (xs) => OP.maxPool2d(n0(xs), g).y,
  };
});
add('avgPool2d [2, 2, 5, 6] kernel 3, stride 2, padding 1, ceil mode, padding not counted', ['avgPool2d'], (rng) => {
  const g: OP.AvgGeometry = { kernel: [3, 3], stride: [2, 2], padding: [1, 1], ceilMode: true, countIncludePad: false };
  return {
    inputs: [uniform(rng, [2, 2, 5, 6])],
    forward: (xs) =>
      avgPool2d(x0(xs), { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false }),
    reference: (xs) => OP.avgPool2d(n0(xs), g),
  };
});
add('adaptiveAvgPool2d [1, 3, 5, 7] -> (3, 4)', ['avgPool2d'], (rng) => ({
  inputs: [uniform(rng, [1, 3, 5, 7])],
  forward: (xs) => adaptiveAvgPool2d(x0(xs), [3, 4]),
  reference: (xs) => OP.adaptiveAvgPool2d(n0(xs), 3, 4),
}));
add('batchNorm training [3, 2, 4] with weight and bias', ['batchNorm'], (rng) => ({
  inputs: [uniform(rng, [3, 2, 4], -2, 2), uniform(rng, [2], 0.5, 1.5), uniform(rng, [2])],
  forward: (xs) => batchNorm(x0(xs), null, null, x1(xs), xs[2]!, { training: true, eps: 1e-3 }),
  reference: (xs) => OB.batchNormTrain(n0(xs), n1(xs), xs[2]!, 1e-3),
}));
add('batchNorm training [3, 2, 4] fused: relu(bn(x) + residual)', ['batchNorm'], (rng) => ({
  inputs: [uniform(rng, [3, 2, 4], -2, 2), uniform(rng, [2], 0.5, 1.5), uniform(rng, [2]), uniform(rng, [3, 2, 4])],
  forward: (xs) =>
    batchNorm(x0(xs), null, null, x1(xs), xs[2]!, { training: true, eps: 1e-3, residual: xs[3]!, relu: true }),
  reference: (xs) => O.unary('relu', O.add(OB.batchNormTrain(n0(xs), n1(xs), xs[2]!, 1e-3), xs[3]!)),
}));
add('batchNorm eval [4, 3] with running statistics and weight', ['batchNorm'], (rng) => {
  const [rm, rv] = [uniform(rng, [3]), uniform(rng, [3], 0.5, 2)];
  return {
    inputs: [uniform(rng, [4, 3], -2, 2), uniform(rng, [3], 0.5, 1.5)],
    forward: (xs, device) =>
      batchNorm(x0(xs), fromND(rm, device), fromND(rv, device), x1(xs), null, { training: false }),
    reference: (xs) => OB.normalize(n0(xs), Array.from(rm.data), Array.from(rv.data), n1(xs), null, 1e-5),
  };
});

// ---------------------------------------------------------------- tests
forEachBackend((device) => {
  for (const c of cases) {
    test(`gradient: ${c.name}`, needsDTypes(device, c.needs ?? []), async (t) => {
      await runGradCase(device, c, testRng(`grad-ops ${c.name}`, t));
    });
  }

  // Ties: the gradient of max/min is split evenly among the elements equal to the result (torch.amax).
  // Finite differences are undefined at a tie, so the expectation is built from that definition.
  for (const op of ['max', 'min'] as const) {
    for (const [axes, keepdim] of [
      [1, false],
      [[0, 1], true],
      [undefined, false],
    ] as [number | number[] | undefined, boolean][]) {
      test(`gradient: ${op} with ties over axes ${JSON.stringify(axes) ?? 'all'}, keepdim ${keepdim} splits evenly`, async (t) => {
        const rng = testRng(`grad-ops ${op} ties ${String(axes)}`, t);
        const e = op === 'max' ? 2 : -2;
        // row 0: a 2-way tie, row 1: all three tie, row 2: no tie; the extreme (+-2) also ties across rows 0 and 1
        const x = O.fromNested([
          [e, 0.5 * e, e],
          [e, e, e],
          [0.1, e, -0.3],
        ]);
        const X = fromND(x, device, { requiresGrad: true });
        const y = X[op](axes, keepdim);
        const up = uniform(rng, y.shape);
        const g = fromND(up, device);
        y.backward(g);
        const res = O[op](x, axes, true);
        const upKept = O.reshape(up, res.shape);
        // expected: upstream / (number of ties in the group) on each tied element, 0 elsewhere
        const tied = O.zipND(x, res, (a, b) => (a === b ? 1 : 0));
        const counts = O.sum(tied, axes, true);
        const expected = O.mul(tied, O.div(upKept, counts));
        assertClose(await X.grad!.toArray(), expected, { dtype: 'float32', what: `${op} tie gradient` });
        g.dispose();
        y.dispose();
        X.dispose();
      });
    }
  }

  test('gradient: maximum/minimum with ties split the gradient in half (by definition)', async (t) => {
    const rng = testRng('grad-ops maximum ties', t);
    const a = O.fromNested([1, 2, 3, 4]);
    const b = O.fromNested([1, 5, 3, 0]);
    for (const op of ['maximum', 'minimum'] as const) {
      const A = fromND(a, device, { requiresGrad: true });
      const B = fromND(b, device, { requiresGrad: true });
      const y = binary(op, A, B);
      const up = uniform(rng, [4]);
      const g = fromND(up, device);
      y.backward(g);
      const u = up.data;
      const winsA = (i: number): number =>
        a.data[i] === b.data[i] ? 0.5 : (op === 'maximum' ? a.data[i]! > b.data[i]! : a.data[i]! < b.data[i]!) ? 1 : 0;
      const ea = [0, 1, 2, 3].map((i) => u[i]! * winsA(i));
      const eb = [0, 1, 2, 3].map((i) => u[i]! * (a.data[i] === b.data[i] ? 0.5 : 1 - winsA(i)));
      // halving is exact in float32, so the comparison is exact (-0 equals 0)
      const exact = { dtype: 'float32', rtol: 0, atol: 0 } as const;
      assertClose(await A.grad!.toArray(), ea.map(Math.fround), { ...exact, what: `${op}: gradient of a` });
      assertClose(await B.grad!.toArray(), eb.map(Math.fround), { ...exact, what: `${op}: gradient of b` });
      for (const x of [A, B, y, g]) x.dispose();
    }
  });

  test('every differentiable op in GRAD_RULES is covered by the table', () => {
    const differentiable = (Object.keys(GRAD_RULES) as OpCode[]).filter((op) => GRAD_RULES[op] !== null);
    const covered = new Set(cases.flatMap((c) => c.ops));
    const missing = differentiable.filter((op) => !covered.has(op));
    assert.deepEqual(missing, [], `ops with a gradient rule but no finite-difference case: ${missing.join(', ')}`);
    // and the table names no op that lost its rule (the case would then test nothing it claims)
    const stale = [...covered].filter((op) => !differentiable.includes(op));
    assert.deepEqual(stale, [], `cases name ops that have no gradient rule: ${stale.join(', ')}`);
  });
});
