// Generation with a KV cache: the cached forward against the uncached one (itself checked against
// PyTorch) at every position, greedy generation against argmax of the uncached logits (including past
// the context, with the documented re-prefill), flat memory per token, streaming, stopping and seeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceName } from '../../src/backend/backend.js';
import {
  GPT,
  Generator,
  Sampler,
  getBackend,
  gpt2Config,
  liveTensors,
  noGrad,
  tensor,
  type SamplingOptions,
} from '../../src/index.js';
import { argmax } from '../../src/models/sampling.js';
import { assertClose } from '../helpers/assert.js';
import { forEachBackend } from '../helpers/backends.js';
import { testRng } from '../helpers/random.js';

/** The tiny GPT-2 preset (V 64, T 16, 2 layers, 2 heads, C 32) with weights scaled up so that the
 *  attention and the logits are far from uniform (the 0.02 init makes them nearly flat). */
function tinyModel(device: DeviceName, seed = 7): GPT {
  const model = new GPT(gpt2Config('tiny'), { device, generator: new Generator(seed) });
  noGrad(() => {
    for (const p of model.parameters()) if (p.ndim === 2) p.mul_(6);
  });
  return model.eval();
}

/** Uncached logits of `ids` (B rows of equal length) as a host array (B, T, V). */
async function fullLogits(model: GPT, ids: number[][], device: DeviceName): Promise<Float32Array> {
  const x = tensor(new Int32Array(ids.flat()), { shape: [ids.length, ids[0]!.length], device });
  const y = noGrad(() => model.forward(x));
  const out = (await y.toArray()) as Float32Array;
  x.dispose();
  y.dispose();
  return out;
}

/** Rows [t0, t1) of position range of a (B, T, V) host array. */
function positions(a: Float32Array, B: number, T: number, V: number, t0: number, t1: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) out.push(...a.subarray((b * T + t0) * V, (b * T + t1) * V));
  return out;
}

function argmaxOf(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

const TOL = { dtype: 'float32' as const, rtol: 1e-4, atol: 2e-5 };

forEachBackend((device) => {
  test('cached logits equal the uncached forward at every position (prefill, chunks, single steps)', async (t) => {
    const rng = testRng('kv-cache-logits', t);
    const model = tinyModel(device);
    const { vocabSize: V, blockSize: bs } = model.config;
    const B = 2;
    const seqs = Array.from({ length: B }, () => Array.from({ length: bs }, () => rng.int(0, V)));
    const ref = await fullLogits(model, seqs, device); // (B, bs, V)
    const cache = model.createCache(B);
    // prefill 5, a chunk of 3 (masked over a prefix), then one at a time up to the full context
    const steps = [5, 3, ...Array.from({ length: bs - 8 }, () => 1)];
    let at = 0;
    for (const n of steps) {
      const x = tensor(new Int32Array(seqs.flatMap((s) => s.slice(at, at + n))), { shape: [B, n], device });
      const y = model.forwardCached(x, cache);
      assert.deepEqual(y.shape, [B, n, V]);
      assertClose(await y.toArray(), positions(ref, B, bs, V, at, at + n), {
        ...TOL,
        what: `positions ${at}..${at + n}`,
      });
      x.dispose();
      y.dispose();
      at += n;
    }
    assert.equal(cache.length, bs);
    const one = tensor(new Int32Array([1, 2]), { shape: [B, 1], device });
    assert.throws(() => model.forwardCached(one, cache), /positions \[16, 17\) exceed the context length 16/);
    one.dispose();
    cache.dispose();
    model.dispose();
  });

  test('lastOnly prefill gives the last position only; the cache refuses a mismatched batch', async () => {
    const model = tinyModel(device);
    const V = model.config.vocabSize;
    const ids = [[3, 1, 4, 1, 5, 9]];
    const ref = await fullLogits(model, ids, device);
    const cache = model.createCache(1);
    const x = tensor(new Int32Array(ids[0]!), { shape: [1, 6], device });
    const y = model.forwardCached(x, cache, { lastOnly: true });
    assert.deepEqual(y.shape, [1, 1, V]);
    assertClose(await y.toArray(), positions(ref, 1, 6, V, 5, 6), { ...TOL, what: 'last row' });
    const two = tensor(new Int32Array([1, 2]), { shape: [2, 1], device });
    assert.throws(
      () => model.forwardCached(two, cache),
      /cache holds \(B, nh, hs\) = \(1, 2, 16\).*needs \(2, 2, 16\)/,
    );
    for (const z of [x, y, two]) z.dispose();
    cache.dispose();
    model.dispose();
  });

  test('greedy generation picks the argmax of the uncached logits, also past the context', async () => {
    const model = tinyModel(device, 11);
    const bs = model.config.blockSize;
    const prompt = [5, 17, 42];
    const n = 2 * bs + 3; // fills the cache twice: two re-prefills of the last bs/2 ids
    const got = await model.generate(prompt, n, { greedy: true });
    // the oracle: the documented window policy, with the uncached forward and our own argmax
    const ids = [...prompt];
    let ws = 0;
    for (let i = 0; i < n; i++) {
      if (ids.length - ws > bs) ws = ids.length - Math.ceil(bs / 2);
      const ctx = ids.slice(ws);
      const all = await fullLogits(model, [ctx], device);
      ids.push(argmaxOf(all.subarray((ctx.length - 1) * model.config.vocabSize)));
    }
    assert.deepEqual(got, ids);
    // within the context the cache makes no difference at all
    const short = await model.generate(prompt, bs - prompt.length, { greedy: true });
    assert.deepEqual(await model.generate(prompt, bs - prompt.length, { greedy: true, cache: false }), short);
    assert.deepEqual(short, ids.slice(0, bs));
    model.dispose();
  });

  test('memory stays flat per generated token (tensors, live buffers); the cache is freed at the end', async () => {
    const model = tinyModel(device);
    const backend = getBackend(device);
    await model.generate([1], 1); // creates the model's kept position ids once
    const tensors0 = liveTensors();
    const buffers0 = backend.stats().liveBuffers;
    const seen: { tensors: number; buffers: number; bytes: number; created: number }[] = [];
    await model.generate([1, 2, 3], 12, {
      temperature: 0.9,
      seed: 3,
      onToken: () => {
        const s = backend.stats();
        seen.push({ tensors: liveTensors(), buffers: s.liveBuffers, bytes: s.liveBytes, created: s.buffersCreated });
      },
    });
    const first = seen[0]!;
    for (const s of seen)
      assert.deepEqual([s.tensors, s.buffers, s.bytes], [first.tensors, first.buffers, first.bytes]);
    // WebGPU pools every buffer: keys grow by one position per token, so a size class may be crossed now
    // and then, never per token. (The CPU backend by design leaves buffers under 64 KiB to V8's heap.)
    const grown = seen[seen.length - 1]!.created - first.created;
    if (device === 'webgpu') assert.ok(grown <= 4, `${grown} buffers created over ${seen.length - 1} decoding steps`);
    assert.equal(liveTensors(), tensors0);
    assert.equal(backend.stats().liveBuffers, buffers0);
    model.dispose();
  });
});

test('streaming, end-of-text and seeds: onToken sees each new id in order; eosId stops; seeds reproduce', async () => {
  const model = tinyModel('cpu', 5);
  const streamed: number[] = [];
  const out = await model.generate([9, 8], 10, { seed: 42, onToken: (id) => void streamed.push(id) });
  assert.equal(out.length, 12);
  assert.deepEqual(streamed, out.slice(2));
  assert.deepEqual(await model.generate([9, 8], 10, { seed: 42 }), out);
  assert.deepEqual(await model.generate([9, 8], 10, { seed: 42, cache: false }), out, 'same ids without the cache');
  const other = await Promise.all([43, 44, 45].map((seed) => model.generate([9, 8], 10, { seed })));
  assert.ok(
    other.some((o) => o.join() !== out.join()),
    'other seeds give other samples',
  );
  const eos = out[4]!; // the 3rd new id: generation must stop at its first occurrence
  const stopped = await model.generate([9, 8], 10, { seed: 42, eosId: eos });
  assert.deepEqual(stopped, out.slice(0, out.indexOf(eos, 2) + 1));
  assert.deepEqual(await model.generate([9, 8], 0), [9, 8]);
  model.dispose();
});

test('generate refuses bad prompts and options with clear errors, and keeps the training mode', async () => {
  const model = tinyModel('cpu').train();
  await assert.rejects(model.generate([], 3), /at least one token/);
  await assert.rejects(model.generate([1, 64], 3), /prompt id 64 at position 1 is not in \[0, 64\)/);
  await assert.rejects(model.generate([1], -1), /maxNewTokens must be an integer >= 0, got -1/);
  await assert.rejects(model.generate([1], 2, { topP: 0 }), /topP must be in \(0, 1\], got 0/);
  await model.generate([1, 2], 2);
  assert.equal(model.training, true);
  model.dispose();
});

/** Draws `n` ids from `logits` with a fresh sampler and counts them. */
function draw(opts: SamplingOptions, logits: readonly number[], n: number): number[] {
  const s = new Sampler(opts);
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[s.sample(logits)]!++;
  return counts;
}

/** Float64 reference of the filtered distribution: softmax(logits / T), top-k, then top-p, renormalized. */
function referenceProbs(logits: readonly number[], T: number, k: number, p: number): number[] {
  const e = logits.map((l) => Math.exp(l / T));
  const z = e.reduce((a, b) => a + b, 0);
  let probs = e.map((x) => x / z);
  const order = probs.map((_, i) => i).sort((a, b) => probs[b]! - probs[a]!);
  const keep = new Set(order.slice(0, k > 0 ? k : order.length));
  const kept = order.filter((i) => keep.has(i));
  const mass = kept.reduce((a, i) => a + probs[i]!, 0);
  let acc = 0;
  const nucleus = new Set<number>();
  for (const i of kept) {
    nucleus.add(i);
    acc += probs[i]! / mass;
    if (acc >= p) break;
  }
  probs = probs.map((x, i) => (nucleus.has(i) ? x : 0));
  const s = probs.reduce((a, b) => a + b, 0);
  return probs.map((x) => x / s);
}

test('greedy (and temperature 0) is the argmax of the logits, the first one on ties', (t) => {
  const rng = testRng('sampler-greedy', t);
  for (let trial = 0; trial < 20; trial++) {
    const logits = Array.from({ length: 100 }, () => rng.uniform(-5, 5));
    const want = logits.indexOf(Math.max(...logits));
    assert.equal(new Sampler({ greedy: true, temperature: 3, topK: 2 }).sample(logits), want);
    assert.equal(new Sampler({ temperature: 0 }).sample(Float32Array.from(logits)), want);
  }
  assert.equal(argmax([1, 3, 3, -Infinity]), 1);
  assert.equal(argmax([-Infinity, -Infinity]), 0);
});

test('top-k and top-p never pick outside the allowed set', (t) => {
  const rng = testRng('sampler-support', t);
  for (let trial = 0; trial < 10; trial++) {
    const logits = Array.from({ length: 50 }, () => rng.uniform(-3, 3));
    const k = rng.int(1, 10);
    const p = rng.uniform(0.2, 0.95);
    const allowed = referenceProbs(logits, 1, k, p);
    const counts = draw({ topK: k, topP: p, seed: trial }, logits, 300);
    counts.forEach((c, i) => assert.ok(c === 0 || allowed[i]! > 0, `id ${i} drawn ${c} times outside the set`));
    const topOnly = draw({ topK: k, seed: trial }, logits, 300);
    const kth = [...logits].sort((a, b) => b - a)[k - 1]!;
    topOnly.forEach((c, i) => assert.ok(c === 0 || logits[i]! >= kth, `id ${i} is not among the top ${k}`));
  }
});

test('over many draws, frequencies match the renormalized probabilities (5 sigma per id)', () => {
  const logits = [0.4, 0.25, 0.15, 0.1, 0.06, 0.04].map(Math.log);
  const N = 20000;
  const cases: [SamplingOptions, number[]][] = [
    [{}, referenceProbs(logits, 1, 0, 1)],
    [{ topK: 4 }, referenceProbs(logits, 1, 4, 1)],
    [{ topP: 0.7 }, referenceProbs(logits, 1, 0, 0.7)], // 0.4 + 0.25 + 0.15 reaches 0.7: three ids
    [{ temperature: 2, topK: 5, topP: 0.9 }, referenceProbs(logits, 2, 5, 0.9)],
  ];
  assert.equal(cases[2]![1].filter((x) => x > 0).length, 3);
  cases.forEach(([opts, probs], c) => {
    const counts = draw({ ...opts, seed: 100 + c }, logits, N);
    probs.forEach((p, i) => {
      const bound = 5 * Math.sqrt((p * (1 - p)) / N);
      const f = counts[i]! / N;
      assert.ok(Math.abs(f - p) <= bound, `case ${c} id ${i}: frequency ${f} vs probability ${p} (bound ${bound})`);
    });
  });
});

test('the same seed gives the same ids; another seed other ids; bad options are named', () => {
  const logits = Array.from({ length: 30 }, (_, i) => Math.sin(i));
  const a = draw({ seed: 5, topP: 0.9 }, logits, 1);
  const seq = (seed: number) => {
    const s = new Sampler({ seed, temperature: 1.5 });
    return Array.from({ length: 50 }, () => s.sample(logits));
  };
  assert.deepEqual(seq(5), seq(5));
  assert.notDeepEqual(seq(5), seq(6));
  assert.equal(
    a.reduce((x, y) => x + y, 0),
    1,
  );
  assert.throws(() => new Sampler({ temperature: -1 }), /temperature must be >= 0, got -1/);
  assert.throws(() => new Sampler({ topK: 1.5 }), /topK must be an integer >= 0, got 1.5/);
  assert.throws(() => new Sampler({ topP: 1.2 }), /topP must be in \(0, 1\], got 1.2/);
  assert.throws(() => new Sampler({ seed: 0.5 }), /seed must be a safe integer, got 0.5/);
  assert.throws(() => new Sampler().sample([NaN, NaN]), /largest logit is -Infinity/);
});
