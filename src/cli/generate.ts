// `loom generate`: samples text from a saved model folder (config.json + model.safetensors + tokenizer
// files, as `loom train` writes and as Hugging Face GPT-2 folders hold), with a KV cache, streaming the
// decoded text as tokens come; or, for scripting, reads and prints token ids.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TensorloomError } from '../core/errors.js';
import { BPETokenizer, END_OF_TEXT } from '../data/index.js';
import { loadTokenizer, type Tokenizer } from '../data/tokenizer-files.js';
import { fromPretrained } from '../models/gpt2/index.js';
import { Sampler } from '../models/sampling.js';
import { chooseDevice, type DeviceLike } from '../tensor/index.js';
import { helpText, parseArgs, type OptionSpec, type Parsed } from './args.js';

/** Where `loom train` saves its model by default. */
export const DEFAULT_MODEL_DIR = 'runs/gpt-stories/model';

const OPTIONS = {
  model: {
    kind: 'string',
    help: `model folder: config.json, model.safetensors, tokenizer (default ${DEFAULT_MODEL_DIR})`,
  },
  prompt: {
    kind: 'string',
    help: 'text to continue (default: <|endoftext|> if the vocabulary has it, else a newline)',
  },
  'prompt-ids': { kind: 'string', help: 'token ids to continue instead, comma-separated (e.g. 1,2,3)' },
  'max-tokens': { kind: 'number', help: 'new tokens to generate (default 200)' },
  temperature: { kind: 'number', help: 'softmax temperature, > 0 (default 0.8); 0 is greedy' },
  'top-k': { kind: 'number', help: 'sample among the k most likely tokens only (default 0: all)' },
  'top-p': { kind: 'number', help: 'sample among the most likely tokens holding probability p (default 1: all)' },
  greedy: { kind: 'boolean', help: 'always take the most likely token' },
  seed: { kind: 'number', help: 'sampling seed; the same seed gives the same text (default 1337)' },
  'print-ids': { kind: 'boolean', help: 'print the generated ids on one line, comma-separated, instead of text' },
  device: {
    kind: 'string',
    choices: ['auto', 'cpu', 'webgpu'],
    help: 'device to run on (default auto: a hardware GPU if found, else cpu)',
  },
  help: { kind: 'boolean', help: 'show this help' },
} satisfies Record<string, OptionSpec>;

const DESCRIPTION =
  'Continues a prompt with a trained model, streaming the text as it is generated. The prompt is\n' +
  'prefilled once into a key/value cache, then each token costs one step. Generation stops after\n' +
  '--max-tokens or at <|endoftext|> when the vocabulary has it. A prompt may be at most the context\n' +
  'length long; past the context the model continues from the last half of it (learned positions end).';

/** An integer option in [min, max] (or its default), with an error naming the option and value. */
function intOption(a: Parsed, name: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = a[name] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new TensorloomError(
      `loom generate: --${name} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? 'inf' : max}], got ${String(v)}`,
    );
  return v;
}

/** Checks that `dir` looks like a model folder before loading anything, naming what is missing. */
function checkModelDir(dir: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new TensorloomError(
      `loom generate: model folder ${dir} does not exist (train one with 'loom train', or pass --model DIR)`,
    );
  for (const f of ['config.json', 'model.safetensors'])
    if (!existsSync(join(dir, f)))
      throw new TensorloomError(`loom generate: ${join(dir, f)} is missing; ${dir} is not a saved model folder`);
}

/** Parses `--prompt-ids` ("1,2,3") into ids in [0, vocab). */
function parseIds(text: string, vocab: number): number[] {
  if (text.trim() === '') throw new TensorloomError('loom generate: --prompt-ids is empty; give at least one id');
  return text.split(',').map((s, i) => {
    const t = s.trim();
    const id = Number(t);
    if (t === '' || !Number.isInteger(id))
      throw new TensorloomError(`loom generate: --prompt-ids entry ${i} ('${t}') is not an integer`);
    if (id < 0 || id >= vocab)
      throw new TensorloomError(
        `loom generate: --prompt-ids entry ${i} is ${id}, outside the vocabulary [0, ${vocab})`,
      );
    return id;
  });
}

/** The prompt ids from the options (or the default prompt), checked against the vocabulary. */
function promptIds(a: Parsed, tok: Tokenizer, vocab: number): { ids: number[]; echo: boolean } {
  if (a.prompt !== undefined && a['prompt-ids'] !== undefined)
    throw new TensorloomError('loom generate: give --prompt or --prompt-ids, not both');
  if (a['prompt-ids'] !== undefined) return { ids: parseIds(String(a['prompt-ids']), vocab), echo: true };
  if (a.prompt !== undefined) {
    const text = String(a.prompt);
    if (text === '') throw new TensorloomError('loom generate: --prompt is empty; give some text to continue');
    let ids: number[];
    try {
      ids = Array.from(tok.encode(text));
    } catch (e) {
      throw new TensorloomError(`loom generate: cannot encode the prompt: ${(e as Error).message}`);
    }
    return { ids, echo: true };
  }
  const eot = tok instanceof BPETokenizer ? tok.specialId(END_OF_TEXT) : undefined;
  if (eot !== undefined) return { ids: [eot], echo: false };
  try {
    return { ids: Array.from(tok.encode('\n')), echo: false };
  } catch {
    throw new TensorloomError(
      'loom generate: the vocabulary has no <|endoftext|> or newline to start from; give --prompt',
    );
  }
}

/**
 * Turns ids into text one id at a time. A BPE token may end inside a UTF-8 character, so its bytes go
 * through a streaming decoder that holds back an unfinished character until the next token completes it.
 */
function streamDecoder(tok: Tokenizer): { push(id: number): string; flush(): string } {
  if (!(tok instanceof BPETokenizer)) return { push: (id) => tok.decode([id]), flush: () => '' };
  const dec = new TextDecoder('utf-8');
  return {
    push: (id) => dec.decode(tok.decodeBytes([id]), { stream: true }),
    flush: () => dec.decode(),
  };
}

/**
 * `loom generate [options]`. Text goes to `write` as it is produced (partial lines) when given, else to
 * `out` once at the end; `--print-ids` prints one line of ids through `out`.
 */
export async function generateCommand(
  argv: readonly string[],
  out: (s: string) => void,
  write: ((s: string) => void) | null = null,
): Promise<number> {
  const a = parseArgs('generate', argv, OPTIONS);
  if (a.help) {
    out(helpText('generate', DESCRIPTION, OPTIONS));
    return 0;
  }
  const maxTokens = intOption(a, 'max-tokens', 200, 1);
  const greedy = a.greedy === true;
  const sampling = {
    temperature: Number(a.temperature ?? 0.8),
    topK: intOption(a, 'top-k', 0, 0),
    topP: Number(a['top-p'] ?? 1),
    greedy,
    seed: intOption(a, 'seed', 1337, 0),
  };
  try {
    new Sampler(sampling); // checks the sampling options before the model is loaded
  } catch (e) {
    throw new TensorloomError(`loom generate: ${(e as Error).message}`);
  }
  const dir = String(a.model ?? DEFAULT_MODEL_DIR);
  checkModelDir(dir);
  const tok = loadTokenizer(dir);
  const { device } = await chooseDevice((a.device as DeviceLike | undefined) ?? 'auto');
  const model = await fromPretrained(dir, { device });
  try {
    const { vocabSize, blockSize } = model.config;
    if (tok.vocabSize > vocabSize)
      throw new TensorloomError(
        `loom generate: the tokenizer in ${dir} has ${tok.vocabSize} ids but the model only ${vocabSize}`,
      );
    const { ids, echo } = promptIds(a, tok, vocabSize);
    if (ids.length > blockSize)
      throw new TensorloomError(
        `loom generate: the prompt is ${ids.length} tokens, longer than the model's context of ${blockSize} tokens`,
      );
    const eos = tok instanceof BPETokenizer ? tok.specialId(END_OF_TEXT) : undefined;
    const printIds = a['print-ids'] === true;
    const dec = streamDecoder(tok);
    let text = '';
    const emit = (s: string): void => {
      if (!s) return;
      if (write) write(s);
      else text += s;
    };
    if (echo && !printIds) emit(tok.decode(ids));
    const all = await model.generate(ids, maxTokens, {
      ...sampling,
      ...(eos !== undefined ? { eosId: eos } : {}),
      ...(printIds ? {} : { onToken: (id: number) => emit(id === eos ? '' : dec.push(id)) }),
    });
    const fresh = all.slice(ids.length);
    if (printIds) out(fresh.join(','));
    else {
      emit(dec.flush());
      if (write) write('\n');
      else out(text);
    }
    return 0;
  } finally {
    model.dispose();
  }
}
