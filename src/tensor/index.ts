// The tensor layer's public surface. Importing it attaches the Tensor methods.
import './methods.js';
export { Tensor, liveTensors, type GradHook } from './tensor.js';
export { tidy, keep } from './scope.js';
export { noGrad, enableGrad, isGradEnabled } from './gradmode.js';
export {
  getBackend,
  getDefaultDevice,
  setDefaultDevice,
  initWebGPU,
  chooseDevice,
  type DeviceLike,
  type DeviceChoice,
  type WebGPUOptions,
} from './device.js';
export * from './creation.js';
export { unary, binary, where, cast, clamp } from './elementwise.js';
export * from './reduce.js';
export * from './views.js';
export * from './indexing.js';
export { matmul } from './linalg.js';
export {
  conv2d,
  conv2dAttrs,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  convTranspose2d,
  type Conv2dOptions,
  type ConvTranspose2dOptions,
} from './conv.js';
export { packTensors, moveInto, contiguousRuns } from './flat.js';
export { adamwUpdate_ } from './optimstep.js';
export * from './fused.js';
export * from './pool.js';
export { batchNorm, batchNormGrads, type BatchNormOptions } from './batchnorm.js';
export { attention, attentionGrads } from './attention.js';
export { toArray, item, toNested, toDevice, type HostArray } from './read.js';
export { runKernel, makeView, type Input } from './engine.js';
export { Node, SavedTensor, type Edge } from './node.js';
