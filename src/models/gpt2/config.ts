// GPT-2 configurations: the named presets (gpt2, gpt2-medium, distilgpt2, ..., and a tiny one for
// tests) and the translation to and from Hugging Face's config.json keys.
import { TensorloomError } from '../../core/errors.js';
import type { GPTConfig } from '../gpt.js';

/** The GPT-2 family's shared settings: GPT-2's vocabulary and context, biases, no dropout by default. */
const BASE = { vocabSize: 50257, blockSize: 1024, dropout: 0, bias: true } as const;

/** Named GPT-2 architectures. `tiny` is the test preset (the shape of test/fixtures/gpt2-tiny). */
export const GPT2_PRESETS = {
  gpt2: { ...BASE, nLayer: 12, nHead: 12, nEmbd: 768 },
  'gpt2-medium': { ...BASE, nLayer: 24, nHead: 16, nEmbd: 1024 },
  'gpt2-large': { ...BASE, nLayer: 36, nHead: 20, nEmbd: 1280 },
  'gpt2-xl': { ...BASE, nLayer: 48, nHead: 25, nEmbd: 1600 },
  distilgpt2: { ...BASE, nLayer: 6, nHead: 12, nEmbd: 768 },
  tiny: { vocabSize: 64, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32, dropout: 0, bias: true },
} as const satisfies Record<string, GPTConfig>;

/** A preset name. */
export type GPT2Preset = keyof typeof GPT2_PRESETS;

/** The config of preset `name`, with `overrides` applied (e.g. `{ dropout: 0.1 }`). */
export function gpt2Config(name: GPT2Preset, overrides: Partial<GPTConfig> = {}): GPTConfig {
  const base = GPT2_PRESETS[name] as GPTConfig | undefined;
  if (!base)
    throw new TensorloomError(`unknown GPT-2 preset '${String(name)}'; known: ${Object.keys(GPT2_PRESETS).join(', ')}`);
  return { ...base, ...overrides };
}

/** The LayerNorm epsilon tensorloom's GPT uses (GPT-2's). */
export const GPT2_LAYER_NORM_EPS = 1e-5;

/** GELU variants equal to the tanh approximation the model computes. */
const TANH_GELU = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'];

/**
 * Reads a Hugging Face GPT-2 `config.json` object. Refuses, naming `file`, another architecture
 * (`model_type`/`architectures`), missing or non-integer sizes, and settings the model cannot honour
 * (a LayerNorm epsilon other than 1e-5, another activation, untied embeddings). Dropout comes from
 * `resid_pdrop` (0 when absent).
 */
export function configFromHF(raw: unknown, file: string): GPTConfig {
  const bad = (msg: string): never => {
    throw new TensorloomError(`${file}: ${msg}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('not a JSON object');
  const j = raw as Record<string, unknown>;
  const arch = Array.isArray(j.architectures) ? j.architectures.map(String) : [];
  if ((j.model_type !== undefined && j.model_type !== 'gpt2') || arch.some((a) => !a.startsWith('GPT2')))
    bad(
      `this is not a GPT-2 model (model_type ${JSON.stringify(j.model_type)}, architectures ${JSON.stringify(arch)}); ` +
        'tensorloom loads GPT-2 family weights (gpt2, gpt2-medium, distilgpt2, ...)',
    );
  const int = (...keys: string[]): number => {
    for (const k of keys) {
      const v = j[k];
      if (v === undefined) continue;
      if (!Number.isSafeInteger(v) || (v as number) <= 0)
        bad(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
      return v as number;
    }
    return bad(`missing key ${keys.join(' or ')}`);
  };
  const eps = j.layer_norm_epsilon ?? GPT2_LAYER_NORM_EPS;
  if (eps !== GPT2_LAYER_NORM_EPS) bad(`layer_norm_epsilon ${JSON.stringify(eps)} is not supported (only 1e-5)`);
  const act = j.activation_function ?? 'gelu_new';
  if (typeof act !== 'string' || !TANH_GELU.includes(act))
    bad(`activation_function ${JSON.stringify(act)} is not supported (only ${TANH_GELU.join(', ')})`);
  if (j.tie_word_embeddings === false) bad('untied word embeddings (tie_word_embeddings: false) are not supported');
  const dropout = j.resid_pdrop ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) bad(`resid_pdrop must be in [0, 1)`);
  return {
    vocabSize: int('vocab_size'),
    blockSize: int('n_positions', 'n_ctx'),
    nLayer: int('n_layer'),
    nHead: int('n_head'),
    nEmbd: int('n_embd'),
    dropout: dropout as number,
    bias: true,
  };
}

/** The Hugging Face `config.json` object of `c` (GPT2LMHeadModel, tied embeddings). */
export function configToHF(c: GPTConfig): Record<string, unknown> {
  if (!c.bias) throw new TensorloomError('GPT-2 checkpoints have biases; a config with bias: false cannot be saved');
  return {
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: c.dropout,
    embd_pdrop: c.dropout,
    layer_norm_epsilon: GPT2_LAYER_NORM_EPS,
    model_type: 'gpt2',
    n_ctx: c.blockSize,
    n_embd: c.nEmbd,
    n_head: c.nHead,
    n_layer: c.nLayer,
    n_positions: c.blockSize,
    resid_pdrop: c.dropout,
    tie_word_embeddings: true,
    vocab_size: c.vocabSize,
  };
}
