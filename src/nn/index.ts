// The nn layer's public surface: Module and the layers as named exports, the stateless functions as the
// `F` namespace (F.crossEntropy, F.layerNorm, ...) and the initializers as `init` (init.normal_, ...).
export { Module, parameter, isParameter, type Parameter, type BufferOptions, type LoadResult } from './module.js';
export {
  Linear,
  Embedding,
  LayerNorm,
  Dropout,
  GELU,
  ReLU,
  ModuleList,
  Sequential,
  type FactoryOptions,
  type UnaryModule,
} from './layers.js';
export { CausalSelfAttention, KVCache, type CausalSelfAttentionOptions } from './attention.js';
export {
  Conv2d,
  ConvTranspose2d,
  BatchNorm2d,
  MaxPool2d,
  AvgPool2d,
  AdaptiveAvgPool2d,
  Flatten,
  type Conv2dLayerOptions,
  type ConvTranspose2dLayerOptions,
  type BatchNorm2dOptions,
  type BatchNormFuse,
} from './conv.js';
export { autocast, autocastDType, autocastOperand } from './autocast.js';
export * as F from './functional.js';
export * as init from './init.js';
export type { Reduction, CrossEntropyOptions, AttentionOptions } from './functional.js';
