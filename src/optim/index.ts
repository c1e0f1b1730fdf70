// The optim layer's public surface: the optimizers (SGD, Adam, AdamW), gradient clipping and
// learning-rate schedules, and the GradScaler of mixed-precision training.
export {
  Optimizer,
  type GroupOptions,
  type ParamGroup,
  type ParamGroupInput,
  type Params,
  type ParamState,
  type OptimizerStateDict,
  type ZeroGradOptions,
} from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { clipGradNorm_, clipGradValue_ } from './clip.js';
export {
  LRScheduler,
  constantLR,
  linearLR,
  cosineAnnealing,
  warmupCosine,
  type LRSchedule,
  type LRTarget,
} from './schedule.js';
export { GradScaler, type GradScalerOptions, type GradScalerState } from './gradscaler.js';
