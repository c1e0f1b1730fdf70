// Gradient accumulation in the training loop: two micro-batches of B windows per step must give the same
// update, logged loss and grad norm as one batch of their 2B windows (the independent check: a plain
// larger batch), with clipping active, and batches that arrive asynchronously are awaited in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uploadBatch, type HostBatch } from '../../src/data/batches.js';
import { GPT, type GPTConfig } from '../../src/models/gpt.js';
import { SGD } from '../../src/optim/index.js';
import { Generator } from '../../src/tensor/index.js';
import { trainLoop, type StepRecord } from '../../src/train/index.js';

const CONFIG: GPTConfig = { vocabSize: 13, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 8, dropout: 0, bias: true };
const T = 8;

/** A batch of `rows` random windows of T+1 ids (seeded: the same for both runs). */
function windows(rows: number, seed: number): Int32Array {
  let s = seed;
  return Int32Array.from({ length: rows * (T + 1) }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % CONFIG.vocabSize;
  });
}

function batchOf(w: Int32Array, rows: number): HostBatch {
  const x = new Int32Array(rows * T);
  const y = new Int32Array(rows * T);
  for (let b = 0; b < rows; b++) {
    x.set(w.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    y.set(w.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  return { windows: w, x, y, batchSize: rows, blockSize: T };
}

/** Trains a fresh seeded model for `steps` steps on `batches` with `accum` micro-batches per step. */
async function run(
  batches: HostBatch[],
  accum: number,
  steps: number,
): Promise<{ params: Float32Array[]; log: StepRecord[] }> {
  const model = new GPT(CONFIG, { device: 'cpu', generator: new Generator(7) });
  const optimizer = new SGD(model.parameters(), { lr: 0.5 });
  const log: StepRecord[] = [];
  let i = 0;
  await trainLoop<HostBatch>({
    params: model.parameters(),
    setTraining: (on) => model.train(on),
    // asynchronous on purpose: the loop must await each batch before it builds the step
    nextBatch: () => new Promise((resolve) => setTimeout(() => resolve(batches[i++]!), 1)),
    trainLoss: (b) => {
      const { x, y } = uploadBatch(b, 'cpu');
      return model.loss(x, y);
    },
    evalLoss: () => {
      throw new Error('no eval in this test');
    },
    tokensPerStep: 4 * T,
    gradAccum: accum,
    optimizer,
    schedule: () => 0.5,
    steps,
    gradClip: 0.5,
    evalEvery: 0,
    evalBatches: 1,
    onStep: (r) => void log.push(r),
    onEval: () => {},
  });
  assert.equal(i, batches.length, 'every batch was consumed');
  const params = await Promise.all(model.parameters().map(async (p) => Float32Array.from(await p.toArray())));
  model.dispose();
  return { params, log };
}

test('grad-accum 2 at batch B gives the same update as one batch of 2B (loss, clipped grad norm, weights)', async () => {
  const steps = 2;
  const big = Array.from({ length: steps }, (_, s) => windows(4, 100 + s));
  const halves = big.flatMap((w) => [batchOf(w.subarray(0, 2 * (T + 1)), 2), batchOf(w.subarray(2 * (T + 1)), 2)]);
  const a = await run(halves, 2, steps);
  const b = await run(
    big.map((w) => batchOf(w, 4)),
    1,
    steps,
  );
  const init = new GPT(CONFIG, { device: 'cpu', generator: new Generator(7) });
  const before = await Promise.all(init.parameters().map(async (p) => Float32Array.from(await p.toArray())));
  init.dispose();

  for (let s = 0; s < steps; s++) {
    assert.ok(
      Math.abs(a.log[s]!.loss - b.log[s]!.loss) < 1e-5,
      `step ${s} loss ${a.log[s]!.loss} vs ${b.log[s]!.loss}`,
    );
    assert.ok(
      Math.abs(a.log[s]!.gradNorm - b.log[s]!.gradNorm) < 1e-5 * b.log[s]!.gradNorm,
      `step ${s} norm ${a.log[s]!.gradNorm} vs ${b.log[s]!.gradNorm}`,
    );
  }
  assert.ok(b.log[0]!.gradNorm > 0.5, 'clipping is active in this test (the norm exceeds the clip of 0.5)');
  let moved = 0;
  a.params.forEach((pa, k) => {
    const pb = b.params[k]!;
    for (let j = 0; j < pa.length; j++) {
      assert.ok(Math.abs(pa[j]! - pb[j]!) <= 1e-5 + 1e-4 * Math.abs(pb[j]!), `param ${k}[${j}]: ${pa[j]} vs ${pb[j]}`);
      if (Math.abs(pb[j]! - before[k]![j]!) > 1e-4) moved++;
    }
  });
  assert.ok(moved > 100, `the steps changed the weights (${moved} values moved)`);
});

test('trainLoop refuses a gradAccum that is not a positive integer', async () => {
  const model = new GPT(CONFIG, { device: 'cpu', generator: new Generator(1) });
  await assert.rejects(
    trainLoop({
      params: model.parameters(),
      setTraining: () => {},
      trainLoss: () => model.parameters()[0]!.sum(),
      evalLoss: () => model.parameters()[0]!.sum(),
      tokensPerStep: 1,
      gradAccum: 0,
      optimizer: new SGD(model.parameters()),
      schedule: () => 0.1,
      steps: 1,
      gradClip: 0,
      evalEvery: 0,
      evalBatches: 1,
      onStep: () => {},
      onEval: () => {},
    }),
    /gradAccum must be a positive integer, got 0/,
  );
  model.dispose();
});
