// No pipeline compiles in the middle of training: the run's first step enqueues one evaluation forward of
// its first batch, so the periodic evaluations compile nothing, and from the third step on nothing
// compiles at all (steps one and two meet the first gradients, the optimizer's packed gradient buffer and
// the first in-place accumulations; weight gradients already accumulate into zeros in step one). WebGPU
// counts compiles; the CPU has none. The warm evaluation changes nothing: the training losses equal a run
// without evaluations, and so do the weights (bit for bit on the CPU; see the tolerance note on WebGPU).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uploadBatch, type HostBatch } from '../../src/data/batches.js';
import { GPT, type GPTConfig } from '../../src/models/gpt.js';
import { SGD } from '../../src/optim/index.js';
import type { DeviceName } from '../../src/backend/backend.js';
import { Generator, getBackend } from '../../src/tensor/index.js';
import { trainLoop } from '../../src/train/index.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend } from '../helpers/backends.js';

// dropout on: training runs the composite attention, evaluation (dropout off) other kernels
const CONFIG: GPTConfig = { vocabSize: 13, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0.1, bias: true };
const T = 8;
const B = 3;

function batch(seed: number): HostBatch {
  let s = seed;
  const w = Int32Array.from({ length: B * (T + 1) }, () => (s = (s * 1103515245 + 12345) % 2147483648) % 13);
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    x.set(w.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    y.set(w.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  return { windows: w, x, y, batchSize: B, blockSize: T };
}

async function run(device: DeviceName, evalEvery: number) {
  const model = new GPT(CONFIG, { device, generator: new Generator(5) });
  const backend = getBackend(device);
  // SGD: an update proportional to the gradient (Adam would turn a last-bit difference in a near-zero
  // gradient into a sizeable step, see below)
  const optimizer = new SGD(model.parameters(), { lr: 1e-2, momentum: 0.9 });
  const losses: number[] = [];
  const compilesAfter: number[] = []; // compile count after each step
  const evalCompiles: number[] = []; // compiles during each evaluation
  let evals = 0;
  let n = 0;
  const lossOf = (b: HostBatch) => {
    const { x, y } = uploadBatch(b, device);
    return model.loss(x, y);
  };
  await trainLoop<HostBatch>({
    params: model.parameters(),
    setTraining: (on) => model.train(on),
    nextBatch: () => batch(100 + n++),
    nextEvalBatch: () => batch(999),
    trainLoss: lossOf,
    evalLoss: lossOf,
    tokensPerStep: B * T,
    optimizer,
    schedule: () => 1e-2,
    steps: 5,
    gradClip: 1,
    evalEvery,
    evalBatches: 1,
    onStep: (r) => {
      losses.push(r.loss);
      compilesAfter.push(backend.stats().compiles);
    },
    onEval: () => {
      evals++;
      evalCompiles.push(backend.stats().compiles - compilesAfter[compilesAfter.length - 1]!);
    },
  });
  const compilesEnd = backend.stats().compiles;
  const params = await Promise.all(model.parameters().map(async (p) => Array.from(await p.toArray())));
  model.dispose();
  return { losses, compilesAfter, compilesEnd, evals, evalCompiles, params };
}

forEachBackend((device) => {
  test('evaluations and steps from the third on compile nothing; the warm evaluation changes nothing', async () => {
    const withEval = await run(device, 2);
    assert.equal(withEval.evals, 3, 'evaluations at steps 2 and 4 and after the last step');
    assert.deepEqual(withEval.evalCompiles, [0, 0, 0], 'the evaluations compile nothing (the first step warmed them)');
    const after = withEval.compilesAfter;
    assert.equal(withEval.compilesEnd, after[1], `nothing compiles from the third step on (after each step: ${after})`);
    const plain = await run(device, 0);
    if (device === 'cpu') {
      assert.deepEqual(withEval.losses, plain.losses, 'the same training losses, bit for bit');
      assert.deepEqual(withEval.params, plain.params, 'the same weights, bit for bit');
    } else {
      // WebGPU on llvmpipe: the two runs (and the same run from process to process) may differ in the
      // last bits of a gradient; the cause is not pinned down (the order buffers are reused in is one
      // candidate). With SGD that moves a weight by ~lr x an ulp and a loss by about an ulp.
      assertClose(withEval.losses, plain.losses, { dtype: 'float32', rtol: 1e-5, atol: 0, what: 'losses' });
      withEval.params.forEach((p, i) =>
        assertClose(p, plain.params[i]!, { dtype: 'float32', rtol: 1e-5, atol: 1e-7, what: `weights ${i}` }),
      );
    }
  });
});
