// Gradient rules: for each op, the vector-Jacobian product from the output gradient to each input's
// gradient, written with the same tensor ops (so every backend runs backward with its own kernels).
// The table is keyed by every op; non-differentiable ops map to null.
import type { OpCode, AttrMap } from '../ops/opcodes.js';
import { reduceShape } from '../ops/shapes.js';
import {
  Tensor,
  attentionGrads,
  binary,
  cast,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  avgPool2dBackward,
  batchNormGrads,
  crossEntropyRowsBackward,
  expand,
  gather,
  indexAdd,
  indexSelect,
  layerNormBackward,
  layerNormParamsBackward,
  matmul,
  maxPool2dBackward,
  permute,
  reshape,
  scatterAdd,
  slice,
  split,
  sum,
  transpose,
  unary,
  where,
  zeros,
  type Node,
} from '../tensor/index.js';

/** What a rule gets: the node (saved tensors, attrs, input metadata) and the output's gradient. */
export interface GradContext {
  readonly node: Node;
  readonly grad: Tensor;
  /** True when input i needs a gradient (skip work otherwise). */
  needs(i: number): boolean;
}

/**
 * A gradient that is cheaper to add into an existing buffer than to build: `zeros(shape)` with
 * `src`'s slices index-added along `dim`. The engine accumulates it straight into a leaf's `.grad`
 * (no dense temporary, no separate add) or materializes it when a tensor is needed. A plain object,
 * so that the tidy scope of a rule keeps `index` and `src` alive.
 */
export interface IndexAddGrad {
  readonly kind: 'indexAdd';
  readonly shape: readonly number[];
  readonly dim: number;
  readonly index: Tensor;
  readonly src: Tensor;
}

/**
 * A product gradient `x @ y` (2-D operands), or its transpose when `transposed` (an operand stored
 * transposed, such as a Linear's weight^T). The engine accumulates it into a leaf's `.grad` with one
 * matmul kernel whose residual is the grad itself (no (k, n) temporary, no separate add), pushing it
 * through a lone transpose view to the leaf behind; elsewhere it is materialized. `x` and `y` are views
 * that the descriptor owns: the engine disposes them once the gradient is served.
 */
export interface MatmulGrad {
  readonly kind: 'matmul';
  readonly x: Tensor;
  readonly y: Tensor;
  readonly transposed: boolean;
}

/** A gradient the engine may add into an existing buffer instead of building. */
export type DeferredGrad = IndexAddGrad | MatmulGrad;

/** What a rule returns for one input. */
export type InputGrad = Tensor | DeferredGrad | null;

/** A gradient rule: one gradient (or null) per input. */
export type GradRule = (ctx: GradContext) => InputGrad[];

/** The dense tensor of a deferred gradient. */
export function materialize(g: DeferredGrad): Tensor {
  if (g.kind === 'matmul') {
    const p = matmul(g.x, g.y);
    return g.transposed ? transpose(p) : p;
  }
  return indexAdd(zeros(g.shape, { dtype: g.src.dtype, device: g.src.device }), g.dim, g.index, g.src);
}

/** Sums `g` down to `shape` (undoing broadcasting): leading dims and stretched size-1 dims. */
export function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  return reshape(sum(g, axes, true), shape);
}

const inShape = (n: Node, i: number): readonly number[] => n.inputs[i]!.shape;

/** Gradient for both inputs of a binary op given per-input full-shape gradient functions. */
function bin(ctx: GradContext, ga: () => Tensor, gb: () => Tensor): (Tensor | null)[] {
  return [
    ctx.needs(0) ? unbroadcast(ga(), inShape(ctx.node, 0)) : null,
    ctx.needs(1) ? unbroadcast(gb(), inShape(ctx.node, 1)) : null,
  ];
}

/** Operand i of a binary op: the saved tensor, or the JS number it was called with. */
function operand(n: Node, i: number): Tensor | number {
  if (n.savedInputs[i]) return n.input(i);
  const s = n.scalars[i];
  if (s === undefined || s === null) throw new Error(`internal: ${n.op} did not save operand ${i}`);
  return s;
}

const mul = (a: Tensor | number, b: Tensor | number) => binary('mul', a, b);

/** Gradient of max/min reductions: split evenly among the elements equal to the result. */
function extremumGrad(ctx: GradContext): (Tensor | null)[] {
  const { node, grad } = ctx;
  const { axes, keepdim } = node.attrs as AttrMap['reduce'];
  const x = node.input(0);
  const keptShape = reduceShape(x.shape, axes, true);
  const y = keepdim ? node.output() : reshape(node.output(), keptShape);
  const g = keepdim ? grad : reshape(grad, keptShape);
  const mask = cast(binary('eq', x, y), grad.dtype);
  const count = sum(mask, axes, true);
  return [mul(mask, binary('div', g, count))];
}

/**
 * Whether a 2-D matmul operand is stored column by column (a transposed view, such as a Linear's weight^T).
 * Batched operands keep the plain rule: attention's k^T gradient feeds a permute back into the qkv
 * gradient, which costs one more copy in the other layout.
 */
function colMajor(t: Tensor): boolean {
  return t.ndim === 2 && t.strides[0] === 1 && t.strides[1] !== 1 && t.shape[0]! > 1 && t.shape[1]! > 1;
}

/** The gradient rules of every op. */
export const GRAD_RULES: Readonly<Record<OpCode, GradRule | null>> = {
  neg: ({ grad }) => [unary('neg', grad)],
  abs: ({ node, grad }) => [mul(grad, unary('sign', node.input(0)))],
  exp: ({ node, grad }) => [mul(grad, node.output())],
  log: ({ node, grad }) => [binary('div', grad, node.input(0))],
  sqrt: ({ node, grad }) => [binary('div', grad, mul(node.output(), 2))],
  rsqrt: ({ node, grad }) => {
    const y = node.output();
    return [mul(grad, mul(mul(y, mul(y, y)), -0.5))];
  },
  reciprocal: ({ node, grad }) => {
    const y = node.output();
    return [unary('neg', mul(grad, mul(y, y)))];
  },
  sin: ({ node, grad }) => [mul(grad, unary('cos', node.input(0)))],
  cos: ({ node, grad }) => [unary('neg', mul(grad, unary('sin', node.input(0))))],
  tanh: ({ node, grad }) => {
    const y = node.output();
    return [mul(grad, binary('sub', 1, mul(y, y)))];
  },
  sigmoid: ({ node, grad }) => {
    const y = node.output();
    return [mul(grad, mul(y, binary('sub', 1, y)))];
  },
  relu: ({ node, grad }) => [where(binary('gt', node.input(0), 0), grad, 0)],
  gelu: ({ node, grad }) => [binary('geluGrad', node.input(0), grad)],
  add: (ctx) => bin(ctx, () => ctx.grad, () => ctx.grad),
  sub: (ctx) => bin(ctx, () => ctx.grad, () => unary('neg', ctx.grad)),
  mul: (ctx) => bin(ctx, () => mul(ctx.grad, operand(ctx.node, 1)), () => mul(ctx.grad, operand(ctx.node, 0))),
  div: (ctx) => {
    const b = operand(ctx.node, 1);
    return bin(
      ctx,
      () => binary('div', ctx.grad, b),
      () => unary('neg', binary('div', mul(ctx.grad, ctx.node.output()), b)),
    );
  },
  pow: (ctx) => {
    const a = operand(ctx.node, 0);
    const b = operand(ctx.node, 1);
    return bin(
      ctx,
      () => mul(ctx.grad, mul(b, binary('pow', a, typeof b === 'number' ? b - 1 : binary('sub', b, 1)))),
      () => {
        // d/db a^b = a^b * log(a), taken as 0 where a <= 0 (as PyTorch does for a == 0)
        const aT = a instanceof Tensor ? a : null;
        const y = ctx.node.output();
        const logA = aT ? where(binary('gt', aT, 0), unary('log', aT), 0) : Math.log(a as number);
        return mul(ctx.grad, mul(y, logA));
      },
    );
  },
  maximum: (ctx) => extremum2(ctx, 'gt'),
  minimum: (ctx) => extremum2(ctx, 'lt'),
  sum: ({ node, grad }) => {
    const { axes, keepdim } = node.attrs as AttrMap['reduce'];
    const shape = inShape(node, 0);
    const g = keepdim ? grad : reshape(grad, reduceShape(shape, axes, true));
    return [expand(g, shape)];
  },
  max: extremumGrad,
  min: extremumGrad,
  where: (ctx) => {
    const cond = ctx.node.input(0);
    return [
      null,
      ctx.needs(1) ? unbroadcast(where(cond, ctx.grad, 0), inShape(ctx.node, 1)) : null,
      ctx.needs(2) ? unbroadcast(where(cond, 0, ctx.grad), inShape(ctx.node, 2)) : null,
    ];
  },
  cast: ({ grad }) => [grad], // the engine casts gradients back to each input's dtype
  copy: ({ grad }) => [grad],
  matmul: (ctx) => {
    const { bias, residual, activation } = ctx.node.attrs as AttrMap['matmul'];
    const a = ctx.node.input(0); // (..., m, k)
    const b = ctx.node.input(1); // (..., k, n)
    // the epilogue act(h) + residual with h = a @ b + bias: the residual's gradient is grad itself, h's
    // goes through the activation's derivative at the saved pre-activation h (aux)
    let gh = ctx.grad; // (..., m, n), at least 2-D
    if (activation === 'gelu') gh = binary('geluGrad', ctx.node.aux(0), gh);
    else if (activation === 'relu') gh = where(binary('gt', ctx.node.aux(0), 0), gh, 0);
    // float32 output over float16 operands (the autocast epilogue): the products take the operands' dtype
    const gm = gh.dtype === a.dtype ? gh : cast(gh, a.dtype);
    // Each 2-D operand's gradient is made in that operand's memory layout: a transposed view (a Linear's
    // weight^T, the tied head's wte^T) gets the transpose of a contiguous product,
    // so the gradient reaching the leaf is contiguous, never a strided add (the 50257x768 head gradient:
    // 189 -> ~15 ms on the CPU). Same products, same FLOPs. 2-D products are deferred (MatmulGrad): a
    // weight's is accumulated into its .grad by the product's own kernel (no temporary, no add). The
    // descriptor owns fresh views of its operands, which the engine frees once it served the gradient.
    const product = (x: Tensor, y: Tensor, transposed: boolean): InputGrad =>
      gm.ndim === 2
        ? { kind: 'matmul', x: permute(x, [0, 1]), y: permute(y, [0, 1]), transposed }
        : materialize({ kind: 'matmul', x, y, transposed });
    const ga = ctx.needs(0)
      ? colMajor(a)
        ? product(b, transpose(gm), true)
        : product(gm, transpose(b), false)
      : null;
    const gb = ctx.needs(1)
      ? colMajor(b)
        ? product(transpose(gm), a, true)
        : product(transpose(a), gm, false)
      : null;
    const grads: InputGrad[] = [ga, gb];
    // the bias (n) was broadcast over every row: its gradient sums h's gradient over all leading dims
    // (before any cast; the engine casts it to the bias's dtype)
    if (bias) grads.push(ctx.needs(2) ? sum(gh, [...Array(gh.ndim - 1).keys()]) : null);
    if (residual) grads.push(ctx.needs(grads.length) ? ctx.grad : null);
    return grads;
  },
  softmax: ({ node, grad }) => {
    const { axis } = node.attrs as AttrMap['softmax'];
    const y = node.output();
    return [mul(y, binary('sub', grad, sum(mul(grad, y), axis, true)))];
  },
  logSoftmax: ({ node, grad }) => {
    const { axis } = node.attrs as AttrMap['logSoftmax'];
    return [binary('sub', grad, mul(unary('exp', node.output()), sum(grad, axis, true)))];
  },
  // the fused row ops: their backward kernels reuse the row statistics the forward saved (node.aux)
  crossEntropyRows: ({ node, grad }) => [
    crossEntropyRowsBackward(node.input(0), node.input(1), node.aux(0), grad, node.attrs as AttrMap['crossEntropyRows']),
    null,
  ],
  layerNorm: (ctx) => {
    const { node, grad } = ctx;
    const x = node.input(0); // (rows, D)
    const stats = node.aux(0); // (rows, 2): mean, rstd
    const gx = ctx.needs(0) ? layerNormBackward(x, operand(node, 1), stats, grad) : null;
    if (!ctx.needs(1) && !ctx.needs(2)) return [gx, null, null];
    const p = layerNormParamsBackward(x, stats, grad); // (2, D): weight grad, bias grad
    const row = (i: number) => reshape(slice(p, 0, i, i + 1), [p.shape[1]!]); // views
    return [gx, ctx.needs(1) ? row(0) : null, ctx.needs(2) ? row(1) : null];
  },
  conv2d: (ctx) => {
    const { node } = ctx;
    const { stride, padding, dilation, groups, activation } = node.attrs as AttrMap['conv2d'];
    const attrs = { stride, padding, dilation, groups };
    const x = node.input(0); // (N, C, H, W)
    const w = node.input(1); // (O, C/groups, KH, KW)
    // a fused ReLU passes the gradient where the output is > 0
    const grad = activation === 'relu' ? where(binary('gt', node.output(), 0), ctx.grad, 0) : ctx.grad;
    return [
      ctx.needs(0) ? conv2dBackwardInput(grad, w, [x.shape[2]!, x.shape[3]!], attrs) : null,
      ctx.needs(1) ? conv2dBackwardWeight(x, grad, [w.shape[2]!, w.shape[3]!], attrs) : null,
      ctx.needs(2) ? sum(grad, [0, 2, 3]) : null,
    ];
  },
  // conv2dBackwardInput as conv_transpose2d's forward, y = convT(x, w): bilinear, so its input gradient
  // is the forward conv of the gradient and its weight gradient the conv weight gradient, roles swapped
  conv2dBackwardInput: (ctx) => {
    const { node, grad } = ctx;
    const { stride, padding, dilation, groups } = node.attrs as AttrMap['conv2dBackwardInput'];
    const attrs = { stride, padding, dilation, groups };
    const w = node.input(1); // (Cin, Cout/groups, KH, KW)
    return [
      ctx.needs(0) ? conv2d(grad, w, null, attrs) : null,
      ctx.needs(1) ? conv2dBackwardWeight(grad, node.input(0), [w.shape[2]!, w.shape[3]!], attrs) : null,
    ];
  },
  // pooling: max routes gy to the argmax the forward saved; avg spreads it over each window
  maxPool2d: ({ node, grad }) => [
    maxPool2dBackward(grad, node.aux(0), inShape(node, 0), node.attrs as AttrMap['maxPool2d']),
  ],
  avgPool2d: ({ node, grad }) => [avgPool2dBackward(grad, inShape(node, 0), node.attrs as AttrMap['avgPool2d'])],
  batchNorm: (ctx) => {
    const { node, grad } = ctx;
    const attrs = node.attrs as AttrMap['batchNorm'];
    const needs = [ctx.needs(0), ctx.needs(3), ctx.needs(4)] as const;
    const [x, mean, variance] = [node.input(0), node.input(1), node.input(2)]; // (N, C, L), (C), (C)
    // a fused ReLU passes the gradient where y > 0; a fused residual gets that masked gradient as is
    const g = attrs.relu ? where(binary('gt', node.output(), 0), grad, 0) : grad;
    const [gx, gw, gb] = batchNormGrads(x, mean, variance, operand(node, 3), g, attrs, needs);
    return attrs.residual ? [gx, null, null, gw, gb, ctx.needs(5) ? g : null] : [gx, null, null, gw, gb];
  },
  // fused attention: the backward recomputes the probabilities with the unfused ops (tensor/attention.ts)
  attention: (ctx) => {
    const { node } = ctx;
    const attrs = node.attrs as AttrMap['attention'];
    const needs = [ctx.needs(0), ctx.needs(1), ctx.needs(2)] as const;
    return attentionGrads(node.input(0), node.input(1), node.input(2), ctx.grad, attrs, needs);
  },
  gather: ({ node, grad }) => {
    const { dim } = node.attrs as AttrMap['gather'];
    return [scatterAdd(zeros(inShape(node, 0), { dtype: grad.dtype, device: grad.device }), dim, node.input(1), grad), null];
  },
  scatterAdd: (ctx) => {
    const { dim } = ctx.node.attrs as AttrMap['scatterAdd'];
    return [ctx.grad, null, ctx.needs(2) ? gather(ctx.grad, dim, ctx.node.input(1)) : null];
  },
  indexSelect: ({ node, grad }) => {
    const { dim } = node.attrs as AttrMap['indexSelect'];
    return [{ kind: 'indexAdd', shape: inShape(node, 0), dim, index: node.input(1), src: grad }, null];
  },
  indexAdd: (ctx) => {
    const { dim } = ctx.node.attrs as AttrMap['indexAdd'];
    return [ctx.grad, null, ctx.needs(2) ? indexSelect(ctx.grad, dim, ctx.node.input(1)) : null];
  },
  concat: ({ node, grad }) => {
    const { axis } = node.attrs as AttrMap['concat'];
    return split(grad, node.inputs.map((m) => m!.shape[axis]!), axis);
  },
  reshape: ({ node, grad }) => [reshape(grad, inShape(node, 0))],
  permute: ({ node, grad }) => {
    const { dims } = node.attrs as AttrMap['permute'];
    const inv = new Array<number>(dims.length);
    dims.forEach((d, i) => (inv[d] = i));
    return [permute(grad, inv)];
  },
  slice: ({ node, grad }) => {
    const { axis, start, end, step } = node.attrs as AttrMap['slice'];
    const z = zeros(inShape(node, 0), { dtype: grad.dtype, device: grad.device });
    const region = slice(z, axis, start, end, step);
    region.copy_(grad);
    region.dispose();
    return [z];
  },
  expand: ({ node, grad }) => [unbroadcast(grad, inShape(node, 0))],
  sign: null, floor: null, ceil: null, round: null, logicalNot: null, eq: null, ne: null, lt: null, le: null,
  gt: null, ge: null, logicalAnd: null, logicalOr: null, geluGrad: null, argmax: null, argmin: null,
  fill: null, arange: null, randUniform: null, randNormal: null,
  adamw: null, // an in-place optimizer update, never recorded
  // backward-only kernels; backward runs without recording, so double backward is not supported
  crossEntropyRowsBackward: null, layerNormBackward: null, layerNormParamsBackward: null,
  conv2dBackwardWeight: null,
  maxPool2dBackward: null, avgPool2dBackward: null, batchNormStats: null, batchNormParamsBackward: null,
  batchNormBackward: null,
}; // prettier-ignore

/** maximum/minimum: the gradient goes to the winning operand, split in half on ties (as PyTorch). */
function extremum2(ctx: GradContext, wins: 'gt' | 'lt'): (Tensor | null)[] {
  const a = operand(ctx.node, 0);
  const b = operand(ctx.node, 1);
  const half = mul(ctx.grad, 0.5);
  const tie = binary('eq', a, b);
  const pick = (x: Tensor | number, y: Tensor | number) => where(binary(wins, x, y), ctx.grad, where(tie, half, 0));
  return bin(
    ctx,
    () => pick(a, b),
    () => pick(b, a),
  );
}
