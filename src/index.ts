// tensorloom's public API: tensors, autograd, nn, optim.
export * from './tensor/index.js';
export * from './autograd/index.js';
export type { DType } from './core/dtype.js';
export { TensorloomError, OpError, AutogradError } from './core/errors.js';
export type { DeviceName, Backend, BackendStats } from './backend/backend.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './data/index.js';
export * from './train/index.js';
export { GPT, GPTCache, type GPTConfig, type GenerateOptions } from './models/gpt.js';
export { BasicBlock, ResNet, ResNet50Stem, type ResNetConfig } from './models/resnet.js';
export { Sampler, type SamplingOptions } from './models/sampling.js';
export * from './models/gpt2/index.js';
