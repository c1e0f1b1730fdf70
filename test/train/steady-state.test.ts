// Counters of a steady-state GPT training step (forward, backward, clip, AdamW, zeroGrad, one read):
// no host reads but the logged values, and on WebGPU no buffer created, no pipeline compiled and
// only a handful of submits. Deterministic, so they are tests (timings are benchmarks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdamW,
  GPT,
  Generator,
  WindowSampler,
  clipGradNorm_,
  getBackend,
  noGrad,
  stack,
  tensor,
  tidy,
  type BackendStats,
} from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';

forEachBackend((device) => {
  test('a steady-state training step reads back only the logged values and (on WebGPU) allocates and compiles nothing', async () => {
    const B = 2;
    const T = 16;
    const V = 29;
    const model = new GPT(
      { vocabSize: V, blockSize: T, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0.1, bias: true },
      { device, generator: new Generator(3) },
    );
    const opt = new AdamW(model.parameters(), { lr: 1e-3 });
    const tokens = Int32Array.from({ length: 500 }, (_, i) => (i * 7 + (i >> 3)) % V);
    const data = new WindowSampler(tokens, B, T, 5);
    const backend = getBackend(device);
    const step = async () => {
      const logged = tidy(() => {
        const { x, y } = data.next();
        const loss = model.loss(tensor(x, { shape: [B, T], device }), tensor(y, { shape: [B, T], device }));
        loss.backward();
        const norm = clipGradNorm_(model.parameters(), 1);
        opt.step();
        opt.zeroGrad();
        return noGrad(() => stack([loss, norm]));
      });
      const vals = await logged.toArray();
      logged.dispose();
      return vals;
    };
    for (let i = 0; i < 3; i++) await step(); // warm: grads, optimizer state, pipelines, pool
    const before: BackendStats = { ...backend.stats() };
    const vals = await step();
    const after = backend.stats();
    const d = (k: keyof BackendStats) => after[k] - before[k];
    assert.ok(Number.isFinite(vals[0]!) && Number.isFinite(vals[1]!), 'loss and grad norm are finite');
    assert.equal(d('bytesDownloaded'), 8, 'only the loss and the grad norm (2 float32) are read back');
    assert.equal(d('liveBuffers'), 0, 'the step leaves no buffer behind');
    // Dispatches (CPU: kernel runs) per step. Derived, not copied from a run: before matmul's fused bias
    // the step took 216 (CPU) and 223 (WebGPU); each Linear with a bias now adds its bias in the matmul's
    // epilogue instead of a separate add, one forward dispatch fewer per layer, and its backward is
    // unchanged (the bias gradient is the same one sum). This model has nLayer (2) x 4 such layers
    // (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj; the tied head has no bias): 8 fewer.
    const linearsWithBias = 2 * 4;
    // Per layer, the MLP's GELU runs in c_fc's matmul epilogue (1 forward dispatch fewer; its backward
    // keeps one geluGrad), and the causal mask is the softmax's own limit: the mask's arange x 2 + le and
    // the where are gone forward, the where's gradient backward (5 fewer). This model uses dropout 0.1,
    // so the residual adds stay unfused (they fuse only without residual dropout).
    const fusedPerLayer = 1 + 5;
    // Every weight gradient (2 layers x 4 Linears, plus the tied head's wte^T) accumulates into its .grad
    // in the matmul that computes it (grad += x @ y): the 9 separate adds are gone.
    const weightsAccumulated = 2 * 4 + 1;
    const expected = (device === 'webgpu' ? 223 : 216) - linearsWithBias - 2 * fusedPerLayer - weightsAccumulated;
    assert.equal(d('dispatches'), expected, 'dispatches per step');
    if (device === 'webgpu') {
      assert.equal(d('buffersCreated'), 0, 'steady state creates no GPU buffer (the pool serves every allocation)');
      assert.equal(d('compiles'), 0, 'steady state compiles no pipeline');
      assert.ok(
        d('submits') <= 16,
        `a handful of submits per step, got ${d('submits')} for ${d('dispatches')} dispatches`,
      );
      // the uploaded bytes are the batch's token ids (2 x B x T int32) plus uniforms, not tensors
      assert.ok(d('bytesUploaded') < 64 * 1024, `uploads stay small, got ${d('bytesUploaded')} bytes`);
    }
  });
});
