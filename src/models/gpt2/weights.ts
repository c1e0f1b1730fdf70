// Hugging Face GPT-2 weights in and out: the HF tensor names (`transformer.h.0.attn.c_attn.weight`),
// Conv1D weights stored (in, out) where the model's Linear holds (out, in), `fromPretrained(dir)` and
// `saveGPT2(model, dir)` over config.json + model.safetensors. File access is Node-only, loaded lazily.
import { TensorloomError, fmtShape } from '../../core/errors.js';
import type { SafetensorsReader } from '../../io/safetensors.js';
import { noGrad, tidy, type DeviceLike, type Tensor } from '../../tensor/index.js';
import { GPT, type GPTConfig } from '../gpt.js';
import { configFromHF, configToHF } from './config.js';

/** Model parameters whose HF tensor is a Conv1D weight, stored transposed: (in, out). */
const CONV1D = /^h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

/** HF tensors that carry no parameter: the tied head and old checkpoints' causal-mask buffers. */
const IGNORED = /^(lm_head\.weight|h\.\d+\.attn\.(bias|masked_bias))$/;

/** The HF name of a model parameter (`h.0.ln_1.weight` -> `transformer.h.0.ln_1.weight`). */
export function hfName(name: string): string {
  return `transformer.${name}`;
}

/** True when the HF tensor of parameter `name` is stored transposed (a Conv1D weight). */
export function isConv1DWeight(name: string): boolean {
  return CONV1D.test(name);
}

/** File dtypes that load into the float32 model (F16 is widened). */
const LOADABLE = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Copies GPT-2 weights from an open safetensors file into `model`. Names may carry the `transformer.`
 * prefix (GPT2LMHeadModel) or not (GPT2Model). Every tensor's presence, shape and dtype is checked
 * from the header before any value is copied, and all problems are reported together, naming the
 * tensors; `lm_head.weight` (tied) and attention-mask buffers are skipped. Values are then read one
 * tensor at a time (a file read error mid-way leaves the model partly loaded: discard it).
 */
export async function loadGPT2Weights(model: GPT, reader: SafetensorsReader): Promise<void> {
  const file = reader.file;
  const byName = new Map<string, string>(); // model name -> file name
  const unexpected: string[] = [];
  const own = model.stateDict();
  for (const fname of reader.names()) {
    const name = fname.startsWith('transformer.') ? fname.slice('transformer.'.length) : fname;
    if (own.has(name)) byName.set(name, fname);
    else if (!IGNORED.test(name)) unexpected.push(fname);
  }
  const problems: string[] = [];
  if (byName.size === 0)
    throw new TensorloomError(
      `${file}: no GPT-2 tensors found (expected names like transformer.wte.weight, got ${reader.names().slice(0, 3).join(', ')}...): weights of a different architecture?`,
    );
  const missing = [...own.keys()].filter((k) => !byName.has(k)).map(hfName);
  if (missing.length) problems.push(`missing tensors: ${listOf(missing)}`);
  if (unexpected.length) problems.push(`unexpected tensors (another architecture or size?): ${listOf(unexpected)}`);
  for (const [name, fname] of byName) {
    const e = reader.entry(fname)!;
    const p = own.get(name)!;
    const want = isConv1DWeight(name) ? [...p.shape].reverse() : [...p.shape];
    if (e.shape.length !== want.length || e.shape.some((d, i) => d !== want[i]))
      problems.push(`${fname}: shape ${fmtShape(e.shape)} in the file, the model needs ${fmtShape(want)}`);
    else if (!LOADABLE.has(e.dtype))
      problems.push(`${fname}: dtype ${e.dtype} cannot load into a ${p.dtype} parameter (F32, F16, BF16 or F64 can)`);
  }
  const lm = reader.entry('lm_head.weight');
  const wte = own.get('wte.weight')!;
  if (lm && (lm.shape.length !== 2 || lm.shape[0] !== wte.shape[0] || lm.shape[1] !== wte.shape[1]))
    problems.push(
      `lm_head.weight: shape ${fmtShape(lm.shape)} in the file, the tied head needs ${fmtShape(wte.shape)}`,
    );
  if (problems.length) throw new TensorloomError(`${file}: cannot load GPT-2 weights: ${problems.join('; ')}`);
  for (const [name, fname] of byName) {
    const p = own.get(name)!;
    const t = await reader.read(fname, { device: p.device, float32: p.dtype === 'float32' });
    noGrad(() =>
      tidy(() => {
        const v = t.dtype === p.dtype ? t : t.cast(p.dtype);
        p.copy_(isConv1DWeight(name) ? v.transpose() : v); // (in, out) -> (out, in)
      }),
    );
    t.dispose();
  }
}

function listOf(names: string[]): string {
  return names.length > 8 ? `${names.slice(0, 8).join(', ')} and ${names.length - 8} more` : names.join(', ');
}

/** The model's parameters under HF names, Conv1D weights transposed to (in, out) (views, not copies). */
export function hfStateDict(model: GPT): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of model.namedParameters()) out.set(hfName(name), isConv1DWeight(name) ? t.transpose() : t);
  return out;
}

/** Options of `fromPretrained`. */
export interface FromPretrainedOptions {
  device?: DeviceLike;
  /** Overrides the config's dropout (`resid_pdrop`). */
  dropout?: number;
}

/**
 * Loads a GPT-2 from a Hugging Face folder: `config.json` + `model.safetensors` (Node only). The
 * config and the whole weights header are validated first; a problem throws a clear error naming the
 * file and tensor, and no model is returned.
 */
export async function fromPretrained(dir: string, opts: FromPretrainedOptions = {}): Promise<GPT> {
  const io = await import('../../io/safetensors-node.js');
  const cfgPath = `${dir}/config.json`;
  const text = await io.readTextFile(cfgPath);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TensorloomError(`${cfgPath}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const config: GPTConfig = {
    ...configFromHF(raw, cfgPath),
    ...(opts.dropout !== undefined ? { dropout: opts.dropout } : {}),
  };
  const reader = await io.openSafetensors(`${dir}/model.safetensors`);
  let model: GPT | null = null;
  try {
    model = new GPT(config, { device: opts.device });
    await loadGPT2Weights(model, reader);
    return model;
  } catch (e) {
    model?.dispose();
    throw e;
  } finally {
    await reader.close();
  }
}

/**
 * Saves `model` as a Hugging Face GPT-2 folder (`config.json` + `model.safetensors`, HF names,
 * Conv1D weights (in, out), the head tied so not stored), each file written atomically (Node only).
 */
export async function saveGPT2(model: GPT, dir: string): Promise<void> {
  const io = await import('../../io/safetensors-node.js');
  await io.makeDir(dir);
  const hf = noGrad(() => hfStateDict(model));
  try {
    await io.saveSafetensors(`${dir}/model.safetensors`, hf, { format: 'pt' });
  } finally {
    for (const [name, t] of model.namedParameters()) if (hf.get(hfName(name)) !== t) hf.get(hfName(name))?.dispose();
  }
  await io.writeFileAtomic(`${dir}/config.json`, `${JSON.stringify(configToHF(model.config), null, 2)}\n`);
}
