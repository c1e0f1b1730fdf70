// GPT-2: presets, Hugging Face config translation and weights in/out. The model itself is ../gpt.ts.
export { GPT2_PRESETS, GPT2_LAYER_NORM_EPS, gpt2Config, configFromHF, configToHF, type GPT2Preset } from './config.js';
export {
  fromPretrained,
  saveGPT2,
  loadGPT2Weights,
  hfStateDict,
  hfName,
  isConv1DWeight,
  type FromPretrainedOptions,
} from './weights.js';
