// The train layer: the training loop and the step profiler.
export { trainLoop, type LoopSpec, type StepRecord, type EvalRecord } from './loop.js';
export {
  profileSteps,
  trainStep,
  type PhaseContext,
  type ProfiledStep,
  type ProfileOptions,
  type ProfileReport,
  type StepProfile,
  type KernelRow,
  type PhaseRow,
  type StepCounters,
  type TrainStepSpec,
} from './profile.js';
export { formatProfile, formatStep, type ReportOptions } from './profile-report.js';
