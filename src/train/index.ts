// The train layer: the training loop.
export { trainLoop, type LoopSpec, type StepRecord, type EvalRecord } from './loop.js';
