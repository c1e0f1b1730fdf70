// What each op keeps for its backward pass: which inputs, whether its output and its auxiliary outputs.
// The autograd engine saves exactly these (each as its own storage reference), so memory held by the
// graph is minimal.
import type { OpCode } from './opcodes.js';

/** What an op's gradient rule needs from the forward pass; `null` marks a non-differentiable op. */
export interface SaveSpec {
  readonly inputs: readonly number[];
  readonly output: boolean;
  /**
   * The op writes auxiliary outputs (RunOptions.aux in tensor/engine.ts: row statistics its backward
   * reuses instead of recomputing) and the graph keeps them; they are never returned to the user.
   */
  readonly aux?: boolean;
  /** Save the output also when this says so for the op's attributes (batchNorm with its fused ReLU). */
  readonly outputIf?: (attrs: unknown) => boolean;
}

const none: SaveSpec = { inputs: [], output: false };
const x: SaveSpec = { inputs: [0], output: false };
const y: SaveSpec = { inputs: [], output: true };
const xy: SaveSpec = { inputs: [0, 1], output: false };

/** Save specs of every op (null: no gradient flows through it). */
export const SAVES: Readonly<Record<OpCode, SaveSpec | null>> = {
  neg: none, abs: x, sign: null, exp: y, log: x, sqrt: y, rsqrt: y, reciprocal: y, sin: x, cos: x,
  tanh: y, sigmoid: y, relu: x, gelu: x, floor: null, ceil: null, round: null, logicalNot: null,
  add: none, sub: none, mul: xy, div: { inputs: [1], output: true }, pow: { inputs: [0, 1], output: true },
  maximum: xy, minimum: xy, eq: null, ne: null, lt: null, le: null, gt: null, ge: null,
  logicalAnd: null, logicalOr: null, geluGrad: null,
  sum: none, max: { inputs: [0], output: true }, min: { inputs: [0], output: true }, argmax: null, argmin: null,
  // matmul keeps a and b (the bias and residual gradients need only grad) and, with an activation, its
  // aux pre-activation h = a @ b + bias (the activation's gradient); plain matmuls write no aux
  where: { inputs: [0], output: false }, cast: none, copy: none, matmul: { inputs: [0, 1], output: false, aux: true },
  softmax: y, logSoftmax: y, gather: { inputs: [1], output: false }, scatterAdd: { inputs: [1], output: false },
  indexSelect: { inputs: [1], output: false }, indexAdd: { inputs: [1], output: false }, concat: none,
  fill: null, arange: null, randUniform: null, randNormal: null,
  adamw: null, // an in-place optimizer update, never recorded
  crossEntropyRows: { inputs: [0, 1], output: false, aux: true }, layerNorm: { inputs: [0, 1], output: false, aux: true },
  // backward-only kernels: their results carry no graph (double backward is not supported)
  crossEntropyRowsBackward: null, layerNormBackward: null, layerNormParamsBackward: null,
  // conv2dBackwardInput is differentiable: it is conv_transpose2d's forward (see tensor/conv.ts)
  // conv2d with a fused ReLU (attrs.activation) also keeps its output, the gradient mask y > 0
  conv2d: { inputs: [0, 1], output: false, outputIf: (a) => (a as { activation?: string }).activation === 'relu' },
  conv2dBackwardInput: xy, conv2dBackwardWeight: null,
  // pooling: max keeps its argmax (aux), avg needs only shapes; batch norm keeps x, mean, var and weight
  maxPool2d: { inputs: [], output: false, aux: true }, avgPool2d: none, maxPool2dBackward: null, avgPool2dBackward: null,
  // a fused ReLU (attrs.relu) also keeps the output: its gradient mask is y > 0
  batchNorm: { inputs: [0, 1, 2, 3], output: false, outputIf: (a) => (a as { relu?: boolean }).relu === true },
  batchNormStats: null, batchNormParamsBackward: null,
  batchNormBackward: null,
  // fused attention keeps q, k, v (its backward recomputes the probabilities) and the row lse (aux)
  attention: { inputs: [0, 1, 2], output: false, aux: true },
  reshape: none, permute: none, slice: none, expand: none,
}; // prettier-ignore
