// The data layer: corpora, tokenizers and batch samplers. (Node file helpers: bpefiles.ts, io/shards.ts.)
export { generateStories } from './stories.js';
export { CharTokenizer } from './chars.js';
export { WindowSampler, type HostBatch } from './batches.js';
export {
  BPETokenizer,
  GPT2_PATTERN,
  END_OF_TEXT,
  bytesToUnicode,
  preTokenize,
  toByteLevel,
  type EncodeOptions,
} from './bpe.js';
export { trainBPE, type TrainBPEOptions } from './bpetrain.js';
