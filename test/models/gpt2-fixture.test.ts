// GPT-2 against the PyTorch reference in test/fixtures/gpt2-tiny (made by scripts/make-fixtures.py):
// the model loaded by fromPretrained from the HF layout gives PyTorch's logits, loss, every parameter
// gradient (by HF name) and the losses of the first 10 AdamW steps, on every backend.
//
// Tolerances: the reference is computed in float64 from the stored float32 weights and tensorloom
// computes in float32, so the gap is float32 rounding through 2 layers (measured on the CPU: logits
// within 6e-7 absolute, gradients within 1.5e-7 of entries up to 0.28). Bounds, about 10x that:
// logits and loss 1e-5 absolute + 1e-5 relative; gradients 2e-6 absolute + 1e-4 relative (entries
// near 0 get the absolute bound); the 10 AdamW losses 1e-4 relative (steps amplify the rounding).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { AdamW, fromPretrained, hfName, isConv1DWeight, noGrad, tidy, type GPT } from '../../src/index.js';
import { openSafetensors } from '../../src/io/safetensors-node.js';
import type { SafetensorsReader } from '../../src/io/safetensors.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend } from '../helpers/backends.js';

const DIR = fileURLToPath(new URL('../fixtures/gpt2-tiny', import.meta.url));

interface AdamWSettings {
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
  steps: number;
  decay: '2d';
}

let fx: SafetensorsReader;
before(async () => {
  fx = await openSafetensors(`${DIR}/fixture.safetensors`);
});
after(() => fx.close());

/** The fixture's tensor `name` as host float values. */
async function ref(name: string): Promise<Float32Array> {
  const t = await fx.read(name);
  const a = (await t.toArray()) as Float32Array;
  t.dispose();
  return a;
}

forEachBackend((device) => {
  const load = () => fromPretrained(DIR, { device });
  const batch = async (m: GPT) => {
    const [idx, targets] = [await fx.read('idx', { device }), await fx.read('targets', { device })];
    return { idx, targets, m };
  };

  test('fromPretrained loads the HF layout: logits and loss match PyTorch', async () => {
    const m = await load();
    const { idx, targets } = await batch(m);
    const logits = noGrad(() => m.forward(idx));
    assert.deepEqual(logits.shape, [2, 8, 64]);
    assertClose(await logits.toArray(), await ref('logits'), {
      dtype: 'float32',
      rtol: 1e-5,
      atol: 1e-5,
      what: `${device} logits`,
    });
    const loss = noGrad(() => m.loss(idx, targets));
    assertClose(await loss.toArray(), await ref('loss'), { dtype: 'float32', rtol: 1e-5, atol: 1e-5, what: 'loss' });
    for (const t of [logits, loss, idx, targets]) t.dispose();
    m.dispose();
  });

  test('every parameter gradient matches PyTorch (by HF name, Conv1D layout)', async () => {
    const m = await load();
    const { idx, targets } = await batch(m);
    const loss = m.loss(idx, targets);
    loss.backward();
    const names = m.namedParameters().map(([n]) => n);
    assert.equal(names.length, fx.names().filter((n) => n.startsWith('grad.')).length);
    for (const [name, p] of m.namedParameters()) {
      assert.ok(p.grad, `${name} has no gradient`);
      const g = tidy(() => (isConv1DWeight(name) ? p.grad!.transpose().contiguous() : p.grad!.clone()));
      assertClose(await g.toArray(), await ref(`grad.${hfName(name)}`), {
        dtype: 'float32',
        rtol: 1e-4,
        atol: 2e-6,
        what: `${device} grad of ${hfName(name)}`,
      });
      g.dispose();
    }
    for (const t of [loss, idx, targets]) t.dispose();
    m.dispose();
  });

  test('the first 10 AdamW losses match PyTorch (decay on 2-D weights only)', async () => {
    const s = JSON.parse(fx.header.metadata.adamw!) as AdamWSettings;
    assert.equal(s.decay, '2d');
    const m = await load();
    const { idx, targets } = await batch(m);
    const params = m.parameters();
    const opt = new AdamW(
      [
        { params: params.filter((p) => p.ndim === 2), weightDecay: s.weight_decay },
        { params: params.filter((p) => p.ndim !== 2), weightDecay: 0 },
      ],
      { lr: s.lr, betas: s.betas, eps: s.eps },
    );
    const losses: number[] = [];
    for (let i = 0; i < s.steps; i++) {
      opt.zeroGrad();
      const loss = m.loss(idx, targets);
      loss.backward();
      opt.step();
      losses.push(await loss.item());
      loss.dispose();
    }
    assertClose(losses, await ref('adamw_losses'), { dtype: 'float32', rtol: 1e-4, atol: 1e-6, what: 'AdamW losses' });
    for (const t of [idx, targets]) t.dispose();
    m.dispose();
  });
});
