// The data layer: corpora, tokenizers and batch samplers.
export { generateStories } from './stories.js';
export { CharTokenizer } from './chars.js';
export { WindowSampler, type HostBatch } from './batches.js';
