// The data of the GPT training task: the generated stories (character tokens, or the tokenizer of the
// model being fine-tuned) sampled in memory, or a `loom prepare` folder streamed by the shard loader.
// Every check that can fail (an empty or too short corpus, a missing folder) runs before training starts.
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TensorloomError } from '../core/errors.js';
import { CharTokenizer, WindowSampler, generateStories, type HostBatch } from '../data/index.js';
import { ShardLoader, listShards, type LoaderState } from '../data/loader.js';
import { loadTokenizer, type Tokenizer } from '../data/tokenizer-files.js';

/** A stream of batches whose position a checkpoint can store and restore. */
export interface BatchSource {
  /** The next batch (a loader's may take a moment: it is awaited before the step's compute). */
  next(): HostBatch | Promise<HostBatch>;
  getState(): unknown;
  setState(s: unknown): void;
}

/** The training and held-out batches of a run, with the tokenizer that made them. */
export interface GptData {
  readonly tokenizer: Tokenizer;
  /** What the data is, for the first log line. */
  readonly summary: string;
  /** What a resumed run must share with the run it continues (the corpus, not the batch position). */
  readonly identity: Record<string, unknown>;
  readonly train: BatchSource;
  /** Undefined when the held-out split is too short for one window: evaluation is then off. */
  readonly val: BatchSource | undefined;
  /** Why there is no held-out data (set when `val` is undefined). */
  readonly noValReason?: string;
  /** Stops background readers. */
  close(): Promise<void>;
}

/** Wraps a WindowSampler (a number state) as a BatchSource. */
function samplerSource(s: WindowSampler): BatchSource {
  return {
    next: () => s.next(),
    getState: () => s.getState(),
    setState: (v) => s.setState(v as number),
  };
}

/** Wraps a ShardLoader (a LoaderState) as a BatchSource. */
function loaderSource(l: ShardLoader): BatchSource {
  return {
    next: () => l.next(),
    getState: () => l.getState(),
    setState: (v) => l.setState(v as LoaderState),
  };
}

/** The stories corpus, split 90/10, with both samplers (the sync sources `loom profile` also uses). */
export interface StoriesData extends GptData {
  readonly text: string;
  readonly trainSampler: WindowSampler;
  readonly valSampler: WindowSampler;
}

/**
 * `stories` generated stories tokenized by `tokenizer` (default: a character vocabulary of the text),
 * windows of `blockSize + 1` drawn by seeded samplers. Throws naming --block-size / --stories when a
 * split is too short for one window.
 */
export function storiesData(
  stories: number,
  seed: number,
  batchSize: number,
  blockSize: number,
  tokenizer?: Tokenizer,
): StoriesData {
  const text = generateStories(stories, seed);
  const tok = tokenizer ?? CharTokenizer.fromText(text);
  const ids = Int32Array.from(tok.encode(text));
  const split = Math.floor(ids.length * 0.9);
  const need = blockSize + 2;
  if (ids.length - split < need)
    throw new TensorloomError(
      `loom train: --stories ${stories} gives ${ids.length} tokens, too few for windows of --block-size ${blockSize} + 1 ` +
        `in both splits (the held-out 10% needs ${need}); raise --stories or lower --block-size`,
    );
  const trainSampler = new WindowSampler(ids.subarray(0, split), batchSize, blockSize, seed);
  const valSampler = new WindowSampler(ids.subarray(split), batchSize, blockSize, seed + 1);
  const chars = tok instanceof CharTokenizer;
  return {
    tokenizer: tok,
    summary:
      `${text.length.toLocaleString('en')} characters of generated stories` +
      `${chars ? '' : ` (${ids.length.toLocaleString('en')} tokens)`}, vocab ${tok.vocabSize}`,
    identity: { kind: 'stories', stories, tokenizer: chars ? 'chars' : 'bpe' },
    train: samplerSource(trainSampler),
    val: samplerSource(valSampler),
    text,
    trainSampler,
    valSampler,
    close: async () => {},
  };
}

/**
 * A `loom prepare` folder: its tokenizer and train/val shards, streamed by ShardLoader with `prefetch`
 * batches read ahead. Errors name the folder and file: missing folder or shards, an empty train split, a
 * train split shorter than one window. A val split too short for a window turns evaluation off.
 */
export async function preparedData(
  dir: string,
  seed: number,
  batchSize: number,
  blockSize: number,
  prefetch = 3,
): Promise<GptData> {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new TensorloomError(
      `loom train: --data ${dir} is not a folder (make one with: loom prepare --input FILE --out ${dir})`,
    );
  const tokenizer = loadTokenizer(dir);
  const trainFiles = listShards(dir, 'train');
  const train = await ShardLoader.open(trainFiles, { batchSize, blockSize, seed, prefetch }).catch((e: unknown) => {
    if (e instanceof TensorloomError && /too few for one window/.test(e.message))
      throw new TensorloomError(
        `loom train: --data ${dir}: the train split (${trainFiles.join(', ')}) is too short: ${e.message.replace(/^.*?: /, '')}; ` +
          'prepare more text or lower --block-size',
      );
    throw e;
  });
  let val: ShardLoader | undefined;
  let noValReason: string | undefined;
  const hasVal = existsSync(join(dir, 'val.bin'));
  if (!hasVal) noValReason = `${join(dir, 'val.bin')} does not exist`;
  else {
    try {
      val = await ShardLoader.open(listShards(dir, 'val'), { batchSize, blockSize, seed: seed + 1, prefetch: 2 });
    } catch (e) {
      if (!(e instanceof TensorloomError && /too few for one window/.test(e.message))) {
        await train.close();
        throw e;
      }
      noValReason = `the val split is shorter than one window of ${blockSize + 1} tokens`;
    }
  }
  return {
    tokenizer,
    summary: `${train.tokens.toLocaleString('en')} training tokens from ${dir}${val ? ` (+ ${val.tokens.toLocaleString('en')} held out)` : ''}, vocab ${tokenizer.vocabSize}`,
    identity: { kind: 'prepared', dir: resolve(dir), trainTokens: train.tokens, vocab: tokenizer.vocabSize },
    train: loaderSource(train),
    val: val ? loaderSource(val) : undefined,
    ...(noValReason ? { noValReason } : {}),
    close: async () => {
      await train.close();
      await val?.close();
    },
  };
}
