// GPT-2 weights in the Hugging Face layout: presets, config.json translation, save -> fromPretrained
// round trips, the name variants real checkpoints use, and clear refusals (wrong shape or dtype,
// missing tensors, another architecture) that never hand back a half-loaded model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GPT,
  Generator,
  configFromHF,
  configToHF,
  fromPretrained,
  gpt2Config,
  loadGPT2Weights,
  saveGPT2,
  tensor,
  type Tensor,
} from '../../src/index.js';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { openSafetensors, saveSafetensors } from '../../src/io/safetensors-node.js';
import { forEachBackend } from '../helpers/backends.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/gpt2-tiny', import.meta.url));

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tl-gpt2-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function values(m: GPT): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const [n, p] of m.namedParameters()) out.set(n, Array.from(await p.toArray()));
  return out;
}

/** Rewrites `dir`/model.safetensors through `edit` on its tensors. */
async function editWeights(dir: string, edit: (t: Map<string, Tensor>) => void): Promise<void> {
  const { tensors, metadata } = await loadSafetensors(new Uint8Array(await readFile(join(dir, 'model.safetensors'))), {
    device: 'cpu',
  });
  edit(tensors);
  await saveSafetensors(join(dir, 'model.safetensors'), tensors, metadata);
}

test('presets: gpt2 124M, gpt2-medium, distilgpt2, tiny (the fixture shape)', async () => {
  assert.deepEqual(
    [gpt2Config('gpt2'), gpt2Config('gpt2-medium'), gpt2Config('distilgpt2')].map((c) => [
      c.nLayer,
      c.nHead,
      c.nEmbd,
      c.vocabSize,
      c.blockSize,
    ]),
    [
      [12, 12, 768, 50257, 1024],
      [24, 16, 1024, 50257, 1024],
      [6, 12, 768, 50257, 1024],
    ],
  );
  assert.equal(gpt2Config('gpt2', { dropout: 0.1 }).dropout, 0.1);
  const raw: unknown = JSON.parse(await readFile(join(FIXTURE, 'config.json'), 'utf8'));
  assert.deepEqual(configFromHF(raw, 'config.json'), gpt2Config('tiny'));
  assert.deepEqual(configFromHF(configToHF(gpt2Config('gpt2')), 'x'), gpt2Config('gpt2'));
  assert.throws(() => gpt2Config('gpt5' as 'gpt2'), /unknown GPT-2 preset 'gpt5'; known: gpt2, gpt2-medium/);
});

test('config.json problems are named', () => {
  const base = configToHF(gpt2Config('tiny'));
  const bad = (patch: Record<string, unknown>) => () => configFromHF({ ...base, ...patch }, 'm/config.json');
  assert.throws(
    bad({ model_type: 'llama', architectures: ['LlamaForCausalLM'] }),
    /m\/config.json: this is not a GPT-2 model \(model_type "llama"/,
  );
  assert.throws(bad({ n_layer: undefined }), /missing key n_layer/);
  assert.throws(bad({ n_head: 2.5 }), /n_head must be a positive integer, got 2.5/);
  assert.throws(bad({ layer_norm_epsilon: 1e-6 }), /layer_norm_epsilon 0.000001 is not supported/);
  assert.throws(bad({ activation_function: 'relu' }), /activation_function "relu" is not supported/);
});

forEachBackend((device) => {
  test('save -> fromPretrained is exact, and saving again gives the same bytes', async () => {
    await withDir(async (dir) => {
      const m = new GPT(gpt2Config('tiny'), { device, generator: new Generator(7) });
      await saveGPT2(m, dir);
      const back = await fromPretrained(dir, { device });
      assert.deepEqual(back.config, m.config);
      assert.deepEqual(await values(back), await values(m));
      const first = await readFile(join(dir, 'model.safetensors'));
      await saveGPT2(back, join(dir, 'again'));
      assert.ok(first.equals(await readFile(join(dir, 'again', 'model.safetensors'))));
      m.dispose();
      back.dispose();
    });
  });

  test('the fixture folder loads and saves back to the same tensors (HF names, Conv1D layout)', async () => {
    await withDir(async (dir) => {
      const m = await fromPretrained(FIXTURE, { device });
      await saveGPT2(m, dir);
      const a = await openSafetensors(join(FIXTURE, 'model.safetensors'));
      const b = await openSafetensors(join(dir, 'model.safetensors'));
      assert.deepEqual(b.names().sort(), a.names().sort());
      for (const n of a.names()) assert.deepEqual(await b.readBytes(n), await a.readBytes(n), n);
      await a.close();
      await b.close();
      m.dispose();
    });
  });

  test('accepts GPT2Model names (no prefix), lm_head.weight, attention-mask buffers and F16 weights', async () => {
    await withDir(async (dir) => {
      const m = new GPT(gpt2Config('tiny'), { device, generator: new Generator(3) });
      await saveGPT2(m, dir);
      await editWeights(dir, (t) => {
        for (const [k, v] of [...t]) {
          t.delete(k);
          t.set(k.slice('transformer.'.length), k.endsWith('wpe.weight') ? v.cast('float16') : v);
        }
        t.set('lm_head.weight', t.get('wte.weight')!);
        t.set('h.0.attn.bias', tensor(new Float32Array(16 * 16), { shape: [1, 1, 16, 16] }));
      });
      const back = await fromPretrained(dir, { device });
      const [want, got] = [await values(m), await values(back)];
      for (const [k, v] of want) {
        if (k !== 'wpe.weight') assert.deepEqual(got.get(k), v, k);
        else got.get(k)!.forEach((x, i) => assert.ok(Math.abs(x - v[i]!) <= 1e-3 * Math.abs(v[i]!) + 1e-7, k));
      }
      m.dispose();
      back.dispose();
    });
  });

  test('refusals name the tensor and leave the model untouched', async () => {
    await withDir(async (dir) => {
      const m = new GPT(gpt2Config('tiny'), { device, generator: new Generator(5) });
      await saveGPT2(m, dir);
      const target = new GPT(gpt2Config('tiny'), { device, generator: new Generator(9) });
      const before = await values(target);
      const refuse = async (edit: (t: Map<string, Tensor>) => void, msg: RegExp) => {
        await saveGPT2(m, dir);
        await editWeights(dir, edit);
        await assert.rejects(fromPretrained(dir, { device }), msg);
        const r = await openSafetensors(join(dir, 'model.safetensors'));
        await assert.rejects(loadGPT2Weights(target, r), msg);
        await r.close();
        assert.deepEqual(await values(target), before, 'nothing half-loaded');
      };
      const c = 'transformer.h.1.mlp.c_fc.weight';
      await refuse(
        (t) => t.set(c, t.get(c)!.transpose().contiguous()),
        /transformer\.h\.1\.mlp\.c_fc\.weight: shape \[128, 32\] in the file, the model needs \[32, 128\]/,
      );
      await refuse(
        (t) => t.set('transformer.ln_f.bias', tensor(new Int32Array(32))),
        /transformer\.ln_f\.bias: dtype I32 cannot load into a float32 parameter/,
      );
      await refuse((t) => t.delete('transformer.h.0.ln_2.weight'), /missing tensors: transformer\.h\.0\.ln_2\.weight/);
      await refuse(
        (t) => t.set('transformer.h.2.ln_1.weight', tensor(new Float32Array(32))),
        /unexpected tensors \(another architecture or size\?\): transformer\.h\.2\.ln_1\.weight/,
      );
      await refuse((t) => {
        for (const k of [...t.keys()]) t.delete(k);
        t.set('model.layers.0.self_attn.q_proj.weight', tensor(new Float32Array(4), { shape: [2, 2] }));
      }, /no GPT-2 tensors found .*model\.layers\.0\.self_attn\.q_proj\.weight.*different architecture/);
      m.dispose();
      target.dispose();
    });
  });
});

test('a folder for another architecture, or a missing file, is refused before any weights are read', async () => {
  await withDir(async (dir) => {
    await assert.rejects(fromPretrained(dir), /cannot read .*config\.json/);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'bert', hidden_size: 768 }));
    await assert.rejects(fromPretrained(dir), /config\.json: this is not a GPT-2 model \(model_type "bert"/);
    await writeFile(join(dir, 'config.json'), JSON.stringify(configToHF(gpt2Config('tiny'))));
    await assert.rejects(fromPretrained(dir), /cannot open .*model\.safetensors/);
    await writeFile(join(dir, 'config.json'), '{"n_layer": ');
    await assert.rejects(fromPretrained(dir), /config\.json: not valid JSON/);
  });
});
