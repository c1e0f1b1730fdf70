// The WebGPU kernel table: every KernelOp's kernel, gathered from the kernel files (typed over every
// op, so a missing kernel fails to compile).
import type { WebGPUKernelTable } from '../kernel.js';
import { adamwKernels } from './adamw.js';
import { attentionKernels } from './attention.js';
import { concatKernels } from './concat.js';
import { conv2d, conv2dBackwardInput, conv2dBackwardWeight } from './conv.js';
import { crossEntropyKernels } from './crossentropy.js';
import { arange, fill, randNormal, randUniform } from './creation.js';
import { binaryKernel as bin, cast, copy, unaryKernel as un, where } from './elementwise.js';
import { indexingKernels } from './indexing.js';
import { layerNormKernels } from './layernorm.js';
import { matmulKernels } from './matmul.js';
import { poolKernels } from './pool.js';
import { batchNormKernels } from './batchnorm.js';
import { reduceKernels } from './reduce.js';
import { softmaxKernels } from './softmax.js';

/** Every kernel op's WebGPU kernel. */
export const KERNELS: WebGPUKernelTable = {
  neg: un('neg'), abs: un('abs'), sign: un('sign'), exp: un('exp'), log: un('log'), sqrt: un('sqrt'),
  rsqrt: un('rsqrt'), reciprocal: un('reciprocal'), sin: un('sin'), cos: un('cos'), tanh: un('tanh'),
  sigmoid: un('sigmoid'), relu: un('relu'), gelu: un('gelu'), floor: un('floor'), ceil: un('ceil'),
  round: un('round'), logicalNot: un('logicalNot'),
  add: bin('add'), sub: bin('sub'), mul: bin('mul'), div: bin('div'), pow: bin('pow'), maximum: bin('maximum'),
  minimum: bin('minimum'), eq: bin('eq'), ne: bin('ne'), lt: bin('lt'), le: bin('le'), gt: bin('gt'), ge: bin('ge'),
  logicalAnd: bin('logicalAnd'), logicalOr: bin('logicalOr'), geluGrad: bin('geluGrad'),
  where, cast, copy, fill, arange, randUniform, randNormal,
  conv2d, conv2dBackwardInput, conv2dBackwardWeight,
  ...reduceKernels,
  ...matmulKernels,
  ...softmaxKernels,
  ...indexingKernels,
  ...concatKernels,
  ...crossEntropyKernels,
  ...layerNormKernels,
  ...adamwKernels,
  ...poolKernels,
  ...batchNormKernels,
  ...attentionKernels,
}; // prettier-ignore
