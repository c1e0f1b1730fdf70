// The `generate` benchmark suite of `loom bench`: tokens/s of GPT generation (16-token prompt, greedy) with
// the KV cache and without it (the whole context recomputed per token), for the small and 124M configs
// with random weights. Each timed run includes the prompt's prefill; the JSON schema is bench.ts's.
import { GPT, type GPTConfig } from '../models/gpt.js';
import { gpt2Config } from '../models/gpt2/index.js';
import { Generator, getBackend } from '../tensor/index.js';
import { counterDelta } from './benchcounters.js';
import type { BenchResult, Suite } from './benchsuites.js';
import { TRAIN_STEP_CONFIGS } from './benchtrain.js';

/** Prompt length of every case. */
const PROMPT = 16;

const round = (x: number, digits = 4): number => Number(x.toPrecision(digits));

/** The suite's models: name, config, new tokens per run, default timed runs (cached, uncached). */
function cases(quick: boolean): [string, GPTConfig, number, number, number][] {
  if (quick) return [['tiny', TRAIN_STEP_CONFIGS.tiny!.model, 8, 2, 2]];
  return [
    ['small', TRAIN_STEP_CONFIGS.small!.model, 64, 3, 3],
    ['gpt2-124m', gpt2Config('gpt2'), 32, 3, 1],
  ];
}

/** Generation tokens/s with and without the KV cache (shape: [prompt, new tokens, layers, width]). */
export const generateSuite: Suite = async (o) => {
  const backend = getBackend(o.device);
  const out: BenchResult[] = [];
  for (const [name, config, newTokens, repsCached, repsUncached] of cases(o.quick)) {
    const model = new GPT(config, { device: o.device, generator: new Generator(1234) }).eval();
    const prompt = Array.from({ length: PROMPT }, (_, i) => (i * 7919 + 11) % config.vocabSize);
    for (const cache of [true, false]) {
      const run = (n = newTokens) => model.generate(prompt, n, { greedy: true, cache });
      // warmup compiles and fills the pools; the cached run is cheap enough to warm over all its shapes,
      // the uncached one (seconds per token at 124M on a CPU) only over a few
      for (let i = 0; i < (o.warmup ?? 1); i++) await run(cache ? newTokens : Math.min(newTokens, 4));
      const reps = o.reps ?? (cache ? repsCached : repsUncached);
      const before = backend.stats();
      const samples: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        const ids = await run();
        samples.push(performance.now() - t0);
        if (ids.length !== PROMPT + newTokens) throw new Error(`generate ${name}: got ${ids.length - PROMPT} tokens`);
      }
      samples.sort((a, b) => a - b);
      const mid = samples.length >> 1;
      const median = samples.length % 2 ? samples[mid]! : (samples[mid - 1]! + samples[mid]!) / 2;
      const r: BenchResult = {
        suite: 'generate',
        name: `${name} ${cache ? 'kv-cache' : 'no-cache'}`,
        shape: [PROMPT, newTokens, config.nLayer, config.nEmbd],
        dtype: 'float32',
        median_ms: round(median, 5),
        min_ms: round(samples[0]!, 5),
        max_ms: round(samples[samples.length - 1]!, 5),
        tokens_per_s: round((newTokens / median) * 1000),
        counters: counterDelta(before, backend.stats(), reps),
      };
      o.progress?.(r);
      out.push(r);
    }
    model.dispose();
  }
  return out;
};
