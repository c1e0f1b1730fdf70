// The data layer: corpora, tokenizers and batch samplers. Node file helpers are imported by path, not from
// here, so this stays browser safe: bpefiles.ts, tokenizer-files.ts, loader.ts, io/shards.ts.
export { generateStories } from './stories.js';
export { CharTokenizer } from './chars.js';
export { WindowSampler, uploadBatch, splitWindows, type HostBatch, type DeviceBatch } from './batches.js';
export type { LoaderState, ShardLoaderOptions } from './loader.js';
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
export {
  SHAPE_CLASSES,
  makeShapes,
  imageBatchAt,
  ImageBatchSampler,
  type ShapeClass,
  type ShapesOptions,
  type ShapesData,
  type HostImageBatch,
} from './shapes.js';
